"""PNG plots of a result document, one per question, written next to ``latest.json``.

Each plot draws its target as a dashed line, so a glance says pass or miss. Scenarios
that failed or were skipped are left out rather than plotted empty.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only
import matplotlib.pyplot as plt
from matplotlib.axes import Axes

from bench.targets import TARGETS

Doc = dict[str, Any]


def _target(ax: Axes, y: float, label: str) -> None:
    ax.axhline(y, color="grey", linestyle="--", linewidth=1)
    ax.annotate(label, (0.01, y), xycoords=("axes fraction", "data"), fontsize=8, color="grey")


def _save(fig: Any, out: Path, name: str) -> None:
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)


def overhead(doc: Doc, out: Path) -> None:
    """moa / ideal per strategy vs concurrency: p50 solid, p99 dashed; TTFE and TTFC too."""
    data = doc["overhead"]
    levels = data["levels"]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.5))
    panels = [
        ("ratio", "end to end"),
        ("first_event_ratio", "first event"),
        ("first_chunk_ratio", "first synthesis chunk"),
    ]
    for ax, (key, title) in zip(axes, panels, strict=True):
        for strategy, cells in data["cells"].items():
            p50 = [cells[str(c)]["moa"][key].get("p50") for c in levels]
            p99 = [cells[str(c)]["moa"][key].get("p99") for c in levels]
            (line,) = ax.plot(levels, p50, marker="o", label=strategy)
            ax.plot(levels, p99, linestyle=":", color=line.get_color())
        if key == "ratio":
            _target(ax, TARGETS["overhead_p50"].limit, "target p50 1.02")
            _target(ax, TARGETS["overhead_p99"].limit, "target p99 1.10")
        ax.set(title=f"moa / ideal, {title}", xlabel="concurrent streaming blends")
        ax.set_yscale("log")
    axes[0].set_ylabel("ratio (solid p50, dotted p99)")
    axes[0].legend(fontsize=8)
    _save(fig, out, "overhead_ratio.png")


def versus_direct(doc: Doc, out: Path) -> None:
    data = doc["overhead"]
    levels = data["levels"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, cells in data["cells"].items():
        ax.plot(
            levels,
            [cells[str(c)]["moa_over_direct"].get("p50") for c in levels],
            marker="o",
            label=strategy,
        )
    _target(ax, TARGETS["moa_over_direct"].limit, "target 1.05")
    ax.set(
        title="moa / direct asyncio script, p50 end-to-end latency",
        xlabel="concurrent streaming blends",
        ylabel="ratio",
    )
    ax.legend(fontsize=8)
    _save(fig, out, "moa_vs_direct.png")


def throughput(doc: Doc, out: Path) -> None:
    rows = doc["throughput"]["rows"]
    labels = [_row_label(r) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.5))
    left.bar(labels, [r["blends_per_s"] for r in rows], color="tab:blue")
    _target(left, TARGETS["throughput"].limit, "target 400/s")
    left.set(title="blends/s at saturation (20 ms upstream)", ylabel="blends/s")
    bottom = [0.0] * len(rows)
    for group in ("server", "upstream", "loadgen", "other"):
        values = [r["cpu"].get(f"{group}_cores", 0.0) for r in rows]
        right.bar(labels, values, bottom=bottom, label=group)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    _target(right, 2.0, "2 cores")
    right.set(title="who used the CPU during the window", ylabel="cores")
    right.legend(fontsize=8)
    for ax in (left, right):
        ax.tick_params(axis="x", labelsize=8, rotation=20)
    _save(fig, out, "throughput.png")


def _row_label(row: Doc) -> str:
    if row["system"] == "direct":
        return "direct script"
    return f"moa w={row['workers']} {'SSE' if row['stream'] else 'JSON'}"


def memory(doc: Doc, out: Path) -> None:
    data = doc["memory"]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    keys = ("rss_idle_bytes", "rss_loaded_bytes", "rss_after_release_bytes")
    labels = ("idle", f"{data['inflight']} in flight", "after release")
    ax.bar(labels, [data[k] / 2**20 for k in keys], color=["tab:green", "tab:red", "tab:grey"])
    per = data["bytes_per_inflight_blend"] / 1024
    ax.set(title=f"server RSS: {per:.0f} KiB per in-flight blend (target 64)", ylabel="MiB")
    _save(fig, out, "memory.png")


def stragglers(doc: Doc, out: Path) -> None:
    modes = doc["stragglers"]["modes"]
    names = list(modes)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    width = 0.27
    for i, (key, label) in enumerate((("ideal", "ideal"), ("p50", "p50"), ("p99", "p99"))):
        values = [
            modes[n]["ideal_s"] if key == "ideal" else modes[n]["latency_s"].get(key) for n in names
        ]
        ax.bar([x + (i - 1) * width for x in range(len(names))], values, width, label=label)
    ax.set_xticks(range(len(names)), [n.replace("_", " ") for n in names])
    ax.set(title="one source 5x slower: blend latency", ylabel="seconds")
    ax.legend()
    _save(fig, out, "stragglers.png")


def local(doc: Doc, out: Path) -> None:
    data = doc["local"]
    fig, ax = plt.subplots(figsize=(6, 4.5))
    sides = ("direct_tokens_per_s", "moa_tokens_per_s")
    ax.bar(["llama-cpp-python", "moa local/smollm2"], [data[s]["mean"] for s in sides])
    _target(ax, data["direct_tokens_per_s"]["mean"] * TARGETS["local"].limit, "target 0.9x")
    ax.set(title=f"embedded model tokens/s (ratio {data['ratio']})", ylabel="tokens/s")
    _save(fig, out, "local_tokens.png")


def render(doc: Doc, out: Path) -> list[str]:
    """Write every plot whose scenario produced data; returns the files written."""
    written = []
    for name, draw, needs in (
        ("overhead_ratio.png", overhead, "overhead"),
        ("moa_vs_direct.png", versus_direct, "overhead"),
        ("throughput.png", throughput, "throughput"),
        ("memory.png", memory, "memory"),
        ("stragglers.png", stragglers, "stragglers"),
        ("local_tokens.png", local, "local"),
    ):
        if needs in doc and "failed" not in doc[needs]:
            draw(doc, out)
            written.append(name)
    return written
