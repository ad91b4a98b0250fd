"""The peers table: moa beside LiteLLM and optillm, rendered from ``results/peers.json``.

Rendered into ``bench/README.md`` and the project README between the peers markers by
``python -m bench --peers`` (``python -m bench.report --peers --write`` re-renders it).
"""

from __future__ import annotations

from typing import Any

Doc = dict[str, Any]
START, END = "<!-- peers:start -->", "<!-- peers:end -->"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join("" if v is None else str(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _ms(seconds: float | None, digits: int = 1) -> float | None:
    return None if seconds is None else round(seconds * 1000, digits)


def _cell(doc: Doc, name: str) -> dict[str, Any]:
    systems: dict[str, Any] = doc["peers"]["cells"].get(name, {}).get("systems", {})
    return systems


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or not b else round(a / b, 2)


def chat_rows(doc: Doc) -> list[dict[str, Any]]:
    """One row per system: the issue's chat columns, as numbers."""
    at1, at32 = _cell(doc, "chat_c1"), _cell(doc, "chat_c32")
    fresh = _cell(doc, "chat_c32_new_connection")
    floor = at1.get("direct", {}).get("latency_s", {}).get("p50")
    rows = []
    for name, row in at1.items():
        p50 = row["latency_s"].get("p50")
        loaded = at32.get(name, {})
        rows.append(
            {
                "system": name,
                "added_ms": None if p50 is None or floor is None else _ms(p50 - floor, 2),
                "ratio_to_ideal": row["ratio_to_ideal"].get("p50"),
                "cpu_ms": loaded.get("server_cpu_ms"),
                "cpu_ms_new_connection": fresh.get(name, {}).get("server_cpu_ms"),
                "per_s": loaded.get("per_s"),
                "p99_ms": _ms(loaded.get("latency_s", {}).get("p99")),
                "gc_max_pause_ms": loaded.get("gc_max_pause_ms"),
                "errors": row["errors"] + loaded.get("errors", 0),
                "gc_max_pause_cpu_ms": loaded.get("gc_max_pause_cpu_ms"),
            }
        )
    return rows


def chat_table(doc: Doc) -> str:
    head = ["system", "added p50 at c=1 (ms)", "p50 / ideal at c=1"]
    head += ["server CPU ms/request (c=32)", "CPU ms/request, new connection each"]
    head += ["requests/s at c=32 (ideal 640)", "p99 at c=32 (ms)"]
    head += ["longest GC pause at c=32, wall (longest CPU) ms", "errors"]
    rows = []
    for r in chat_rows(doc):
        cells = list(r.values())[:9]
        cells[7] = _pause(r["gc_max_pause_ms"], r["gc_max_pause_cpu_ms"])
        rows.append(cells)
    return _table(head, rows)


def _pause(wall: float | None, cpu: float | None) -> str | None:
    """A pause as clients saw it, and the collection's own CPU time: on a busy machine
    the difference is the process waiting for a core, not the collector."""
    if wall is None:
        return None
    return f"{wall:g}" if cpu is None else f"{wall:g} ({cpu:g})"


def ratios_table(doc: Doc) -> str:
    """moa's ratio to each peer: below 1 is moa ahead for time and CPU, above 1 for rps."""
    rows = {r["system"]: r for r in chat_rows(doc)}
    moa = rows.get("moa")
    if moa is None:
        return ""
    body = []
    for name, peer in rows.items():
        if name in ("moa", "direct"):
            continue
        body.append(
            [
                f"moa / {name}",
                _ratio(moa["added_ms"], peer["added_ms"]),
                _ratio(moa["cpu_ms"], peer["cpu_ms"]),
                _ratio(moa["cpu_ms_new_connection"], peer["cpu_ms_new_connection"]),
                _ratio(moa["per_s"], peer["per_s"]),
                _ratio(moa["p99_ms"], peer["p99_ms"]),
            ]
        )
    head = ["chat", "added latency at c=1", "CPU/request", "CPU/request, new connection"]
    head += ["requests/s at c=32", "p99 at c=32"]
    return _table(head, body)


def targets_table(doc: Doc) -> str:
    """Issue 12's chat targets, read from this run: moa's row, and LiteLLM's for the two
    targets stated relative to it."""
    rows = {r["system"]: r for r in chat_rows(doc)}
    moa, litellm = rows.get("moa", {}), rows.get("litellm", {})
    rps_ratio = _ratio(moa.get("per_s"), litellm.get("per_s"))
    p99_ratio = _ratio(moa.get("p99_ms"), litellm.get("p99_ms"))
    checks = [
        ("chat: added p50 at c=1", "<= 2 ms", moa.get("added_ms"), 2.0, True),
        ("chat: server CPU per request (c=32)", "<= 1.5 ms", moa.get("cpu_ms"), 1.5, True),
        (
            "chat: CPU per request, a new connection each",
            "<= 2.5 ms",
            moa.get("cpu_ms_new_connection"),
            2.5,
            True,
        ),
        ("chat: requests/s at c=32, moa / LiteLLM", ">= 2x", rps_ratio, 2.0, False),
        ("chat: p99 at c=32, moa / LiteLLM", "< 1x", p99_ratio, 1.0, True),
        ("longest GC pause at c=32, wall", "<= 20 ms", moa.get("gc_max_pause_ms"), 20.0, True),
        (
            "longest GC pause at c=32, the collection's CPU",
            "<= 20 ms",
            moa.get("gc_max_pause_cpu_ms"),
            20.0,
            True,
        ),
    ]
    body = []
    for label, goal, value, limit, at_most in checks:
        verdict = "not measured" if value is None else "met"
        if value is not None and (value > limit if at_most else value < limit):
            verdict = "**missed**"
        body.append([label, goal, value, verdict])
    return _table(["target", "goal", "measured", "verdict"], body)


def moa_table(doc: Doc) -> str:
    at1, at16 = _cell(doc, "moa_c1"), _cell(doc, "moa_c16")
    ideal = doc["peers"]["ideal_s"]
    rows = []
    for name, row in at1.items():
        loaded = at16.get(name, {})
        moa = name.startswith("moa")
        rows.append(
            [
                f"{name} self_moa, 3 samples" if moa else f"{name} moa approach",
                _ms(ideal.get("moa:moa" if moa else f"moa:{name}"), 0),
                _ms(row["latency_s"].get("p50")),
                row["ratio_to_ideal"].get("p50"),
                loaded.get("per_s"),
                _ms(loaded.get("latency_s", {}).get("p99")),
                loaded.get("server_cpu_ms"),
                _pause(loaded.get("gc_max_pause_ms"), loaded.get("gc_max_pause_cpu_ms")),
                row["errors"] + loaded.get("errors", 0),
            ]
        )
    head = ["MoA (200 ms upstream)", "ideal (ms)", "p50 at c=1 (ms)", "p50 / ideal"]
    head += ["requests/s at c=16", "p99 at c=16 (ms)", "server CPU ms/request (c=16)"]
    head += ["longest GC pause, wall (longest CPU) ms", "errors"]
    return _table(head, rows)


def render(doc: Doc) -> str:
    meta, peers = doc["meta"], doc["peers"]
    if "cells" not in peers:
        return f"The peers run failed: {peers.get('failed')}"
    versions = ", ".join(f"{n} {v}" for n, v in peers["versions"].items()) or "none"
    load = meta["machine"]["loadavg_at_start"][0], meta["loadavg_at_end"][0]
    parts = [
        f"`{meta['command']}` at {meta['started_at']}, {meta['wall_s']} s wall, "
        f"{meta['machine']['cpus']} cores; peers: {versions}; {peers['reps']} turn(s) per "
        f"system per cell, order rotated; load average {load[0]:.2f} at start, "
        f"{load[1]:.2f} at end (other processes share the machine).",
        "",
        targets_table(doc),
        "",
        f"**Chat** (one model, JSON, upstream {peers['chat_upstream_ms']:g} ms; "
        "added = p50 minus the direct call's p50)",
        "",
        chat_table(doc),
        "",
        ratios_table(doc),
        "",
        f"**Mixture of agents** (upstream {peers['moa_upstream_ms']:g} ms; JSON)",
        "",
        moa_table(doc),
    ]
    for name, why in peers.get("unavailable", {}).items():
        parts += ["", f"{name} could not be run here: {why}"]
    return "\n".join(parts)
