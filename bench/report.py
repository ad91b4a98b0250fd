"""Render a result document as markdown: ``python -m bench.report [--write]``.

``run.py`` calls ``update_readme`` after every run, so the table in ``bench/README.md``
is always the last run's; ``--write`` regenerates it from ``results/latest.json`` alone.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from bench.peers import table
from bench.targets import AT, TARGETS

Doc = dict[str, Any]
HERE = Path(__file__).resolve().parent
README = HERE / "README.md"
PROJECT_README = HERE.parent / "README.md"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def targets_table(doc: Doc) -> str:
    rows = []
    for target in TARGETS.values():
        value = target.read(doc)
        verdict = {True: "met", False: "**missed**", None: "not measured"}[target.passed(value)]
        goal = f"{'<=' if target.at_most else '>='} {target.limit:g}{target.unit}"
        shown = None if value is None else f"{value:g}{target.unit}"
        rows.append([target.label, goal, shown, verdict])
    return _table(["target", "goal", "measured", "verdict"], rows)


def overhead_table(doc: Doc) -> str:
    data = doc["overhead"]
    rows = []
    for strategy, cells in data["cells"].items():
        for level in data["levels"]:
            cell = cells[str(level)]
            moa, direct = cell["moa"], cell["direct"]
            rows.append(
                [
                    strategy,
                    level,
                    moa["ratio"].get("p50"),
                    moa["ratio"].get("p99"),
                    direct["ratio"].get("p50"),
                    cell["moa_over_direct"].get("p50"),
                    moa["first_event_ratio"].get("p50"),
                    moa["first_chunk_ratio"].get("p50"),
                    round(moa["cpu"]["other_cores"], 2),
                    moa["errors"],
                ]
            )
    head = ["strategy", "concurrency", "moa/ideal p50", "moa/ideal p99", "direct/ideal p50"]
    head += ["moa/direct p50", "first event /ideal", "first chunk /ideal"]
    head += ["other procs (cores)", "errors"]
    return _table(head, rows)


def throughput_table(doc: Doc) -> str:
    rows = []
    for r in doc["throughput"]["rows"]:
        cpu = r["cpu"]
        per_blend = r["server_cpu_s_per_blend"]
        rows.append(
            [
                "direct script" if r["system"] == "direct" else f"moa, {r['workers']} worker(s)",
                "SSE" if r["stream"] else "JSON",
                r["blends_per_s"],
                r["latency_s"].get("p50"),
                None if not per_blend else round(per_blend * 1000, 2),
                round(r["loadgen_cpu_s_per_blend"] * 1000, 2) if r["blends"] else None,
                cpu.get("server_cores"),
                cpu.get("upstream_cores"),
                cpu.get("loadgen_cores"),
                cpu.get("other_cores"),
                r["errors"],
            ]
        )
    head = ["system", "mode", "blends/s", "latency p50 (s)", "server CPU ms/blend"]
    head += ["load-gen CPU ms/blend", "server cores", "upstream cores", "load-gen cores"]
    head += ["other procs cores", "errors"]
    return _table(head, rows)


def small_tables(doc: Doc) -> list[str]:
    parts = []
    if "memory" in doc and "failed" not in doc["memory"]:
        m = doc["memory"]
        rows = [
            ["in flight", m["inflight"]],
            ["outcomes (HTTP status: count)", m["outcomes"]],
            ["source calls open at the upstream", m["upstream_calls_open"]],
            ["seconds to open them all (waves of 100)", m["seconds_to_open_all"]],
            ["RSS idle (MiB)", round(m["rss_idle_bytes"] / 2**20, 1)],
            ["RSS loaded (MiB)", round(m["rss_loaded_bytes"] / 2**20, 1)],
            ["RSS after release (MiB)", round(m["rss_after_release_bytes"] / 2**20, 1)],
            ["KiB per in-flight blend", round(m["bytes_per_inflight_blend"] / 1024, 1)],
            ["server fds idle / loaded", f"{m['fds_idle']} / {m['fds_loaded']}"],
        ]
        parts.append("**Memory**\n\n" + _table(["", ""], rows))
    if "stragglers" in doc and "failed" not in doc["stragglers"]:
        modes = doc["stragglers"]["modes"]
        rows = [
            [
                n.replace("_", " "),
                m["ideal_s"],
                m["latency_s"].get("p50"),
                m["latency_s"].get("p99"),
            ]
            for n, m in modes.items()
        ]
        title = f"**Stragglers** (sources {doc['stragglers']['sources_ms']} ms)"
        parts.append(title + "\n\n" + _table(["mode", "ideal (s)", "p50 (s)", "p99 (s)"], rows))
    if "local" in doc and "failed" not in doc["local"]:
        lo = doc["local"]
        rows = [
            ["llama-cpp-python", lo["direct_tokens_per_s"]["mean"], lo["tokens_generated"]],
            ["moa local/smollm2", lo["moa_tokens_per_s"]["mean"], lo["tokens_generated"]],
        ]
        title = f"**Local model** (ratio {lo['ratio']}, same text: {lo['same_text']})"
        parts.append(title + "\n\n" + _table(["path", "tokens/s (mean)", "tokens"], rows))
    if "timeline" in doc and "failed" not in doc["timeline"]:
        t = doc["timeline"]
        rows = [
            [p, t["median_ms"]["moa"][p], t["median_ms"]["direct"][p], t["moa_minus_direct_ms"][p]]
            for p in t["phases"]
        ]
        head = ["phase (concurrency 1, consensus)", "moa ms", "direct ms", "moa - direct"]
        parts.append("**Where one blend's time goes**\n\n" + _table(head, rows))
    return parts


def render(doc: Doc) -> str:
    meta = doc["meta"]
    machine = meta["machine"]
    head = (
        f"Run `{meta['command']}` ({meta['plan']} plan) at {meta['started_at']}, "
        f"{meta['wall_s']} s wall, on {machine['cpus']} x {machine['cpu_model']}, "
        f"Python {machine['python']}; load average at start/end "
        f"{machine['loadavg_at_start'][0]:.2f} / {meta['loadavg_at_end'][0]:.2f} "
        f"(other processes share the machine: see the 'other' columns)."
    )
    parts = [head, targets_table(doc)]
    if "overhead" in doc and "failed" not in doc["overhead"]:
        parts.append(
            f"**Overhead** (targets are read at concurrency {AT})\n\n" + overhead_table(doc)
        )
    if "throughput" in doc and "failed" not in doc["throughput"]:
        parts.append("**Throughput**\n\n" + throughput_table(doc))
    parts += small_tables(doc)
    failed = [
        f"{k}: {v['failed']}" for k, v in doc.items() if isinstance(v, dict) and "failed" in v
    ]
    if failed:
        parts.append("Failed scenarios: " + "; ".join(failed))
    return "\n\n".join(parts)


def _replace_block(readme: Path, start: str, end: str, block: str) -> None:
    """Replace what lies between the markers, if the file has both."""
    if not readme.exists():
        return
    text = readme.read_text()
    if start not in text or end not in text:
        return
    before, rest = text.split(start, 1)
    after = rest.split(end, 1)[1]
    readme.write_text(f"{before}{start}\n{block}\n{end}{after}")


def update_readme(doc: Doc, readme: Path = README) -> None:
    """Replace the README's results block (between the markers) with this document's."""
    _replace_block(readme, START, END, render(doc))


def peers_table(doc: Doc) -> str:
    return table.render(doc)


def update_readmes_peers(doc: Doc) -> None:
    """The peers block of bench/README.md and of the project README."""
    for readme in (README, PROJECT_README):
        _replace_block(readme, table.START, table.END, table.render(doc))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.report", description=__doc__)
    parser.add_argument("path", nargs="?", type=Path, default=HERE / "results" / "latest.json")
    parser.add_argument("--write", action="store_true", help="update bench/README.md")
    parser.add_argument("--peers", action="store_true", help="render results/peers.json")
    args = parser.parse_args()
    if args.peers and args.path == HERE / "results" / "latest.json":
        args.path = HERE / "results" / "peers.json"
    doc = json.loads(args.path.read_text())
    if args.peers:
        if args.write:
            update_readmes_peers(doc)
        print(table.render(doc))
        return
    if args.write:
        update_readme(doc)
    print(render(doc))


if __name__ == "__main__":
    main()
