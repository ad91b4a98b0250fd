"""Percentiles and summaries, small enough to read in one glance.

Linear interpolation between closest ranks (numpy's default), so a p99 over 100 samples
is close to, but not exactly, the maximum; every summary carries its sample count.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def quantile(values: Sequence[float], q: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def summary(values: Sequence[float], digits: int = 4) -> dict[str, float]:
    """n, p50, p90, p99, mean and max of ``values``."""
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50": round(quantile(values, 0.50), digits),
        "p90": round(quantile(values, 0.90), digits),
        "p99": round(quantile(values, 0.99), digits),
        "mean": round(sum(values) / len(values), digits),
        "max": round(max(values), digits),
    }
