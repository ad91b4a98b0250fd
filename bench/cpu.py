"""Who used the 2 cores during a measurement: the server, the upstream, the load
generator (this process), and everything else on the machine.

On a 2-core box these four compete; reporting each one's share is what lets a missed
target be read as "moa is slow" or "the machine is full of something else".
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from bench import procfs


class Meter:
    """CPU-seconds per named group of processes between construction and ``read()``."""

    def __init__(self, **groups: Iterable[int]) -> None:
        self._groups = {name: list(pids) for name, pids in groups.items()}
        self._groups.setdefault("loadgen", [os.getpid()])
        self._start = self._sample()

    def _sample(self) -> dict[str, float]:
        sample = {name: procfs.cpu_seconds(pids) for name, pids in self._groups.items()}
        sample["machine"] = procfs.machine_busy_seconds()
        sample["wall"] = time.perf_counter()
        return sample

    def read(self) -> dict[str, float]:
        """Cores used per group (CPU-seconds / wall seconds), ``other`` = the rest of the
        machine's busy time, plus the raw CPU-seconds as ``<group>_cpu_s``."""
        end = self._sample()
        wall = end["wall"] - self._start["wall"]
        used = {name: end[name] - self._start[name] for name in end if name != "wall"}
        ours = sum(v for k, v in used.items() if k != "machine")
        used["other"] = max(0.0, used["machine"] - ours)
        result = {f"{k}_cores": round(v / wall, 3) for k, v in used.items()}
        result |= {f"{k}_cpu_s": round(v, 3) for k, v in used.items()}
        result["wall_s"] = round(wall, 3)
        return result
