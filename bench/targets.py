"""The issue's targets and how each is read from a result document.

Where a target names no strategy or mode, the measured value is the worst strategy
(latency) or the best configuration (throughput): a target is met only if it holds for
every strategy, and the server may be deployed in its best configuration.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

Doc = dict[str, Any]
AT = "100"  # the concurrency the latency targets are stated at


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    limit: float
    at_most: bool  # True: measured <= limit passes; False: measured >= limit
    unit: str
    read: Callable[[Doc], float | None]

    def passed(self, value: float | None) -> bool | None:
        if value is None:
            return None
        return value <= self.limit if self.at_most else value >= self.limit


def _worst(doc: Doc, side: str, key: str, q: str) -> float | None:
    cells = doc.get("overhead", {}).get("cells", {})
    values = [c[AT][side][key].get(q) for c in cells.values() if AT in c]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _worst_vs_direct(doc: Doc) -> float | None:
    cells = doc.get("overhead", {}).get("cells", {})
    values = [c[AT]["moa_over_direct"].get("p50") for c in cells.values() if AT in c]
    values = [v for v in values if v is not None]
    return max(values) if values else None


def _best_throughput(doc: Doc) -> float | None:
    rows = [r for r in doc.get("throughput", {}).get("rows", []) if r["system"] == "moa"]
    return max((r["blends_per_s"] for r in rows), default=None)


def _added_at_1(doc: Doc, strategy: str = "consensus") -> float | None:
    """Milliseconds a streamed blend takes over its ideal at concurrency 1, p50."""
    overhead = doc.get("overhead", {})
    cell = overhead.get("cells", {}).get(strategy, {}).get("1")
    if not cell or not cell["moa"]["total_s"].get("n"):
        return None
    added_s: float = cell["moa"]["total_s"]["p50"] - overhead["ideal"][strategy]["total"]
    return round(added_s * 1000, 1)


def _cpu_per_streamed_blend(doc: Doc) -> float | None:
    """Server CPU ms per streamed blend at saturation, the best moa configuration."""
    rows = doc.get("throughput", {}).get("rows", [])
    values = [
        r["server_cpu_s_per_blend"] * 1000
        for r in rows
        if r["system"] == "moa" and r["stream"] and r["server_cpu_s_per_blend"]
    ]
    return round(min(values), 2) if values else None


def _memory(doc: Doc) -> float | None:
    value = doc.get("memory", {}).get("bytes_per_inflight_blend")
    return None if value is None else round(value / 1024, 1)


def _local(doc: Doc) -> float | None:
    value: float | None = doc.get("local", {}).get("ratio")
    return value


TARGETS: dict[str, Target] = {
    "overhead_p50": Target(
        "moa / ideal at 100 streaming blends, p50 (worst strategy)",
        1.02,
        True,
        "x",
        lambda d: _worst(d, "moa", "ratio", "p50"),
    ),
    "overhead_p99": Target(
        "moa / ideal at 100 streaming blends, p99 (worst strategy)",
        1.10,
        True,
        "x",
        lambda d: _worst(d, "moa", "ratio", "p99"),
    ),
    "moa_over_direct": Target(
        "moa / direct script at 100 streaming blends, p50 (worst strategy)",
        1.05,
        True,
        "x",
        _worst_vs_direct,
    ),
    "throughput": Target(
        "blends/s, 3 sources + synthesis, 20 ms upstream (best config)",
        400,
        False,
        "/s",
        _best_throughput,
    ),
    "added_at_1": Target(
        "streamed blend over its ideal at concurrency 1, p50 (consensus)",
        4,
        True,
        " ms",
        _added_at_1,
    ),
    "blend_cpu": Target(
        "server CPU per streamed blend at saturation (best config)",
        5,
        True,
        " ms",
        _cpu_per_streamed_blend,
    ),
    "memory": Target("server memory per in-flight streaming blend", 64, True, " KiB", _memory),
    "local": Target("local/smollm2 tokens/s, moa / llama-cpp-python", 0.9, False, "x", _local),
}
