"""Run a Python server with its garbage collector's pauses recorded:
``python bench/gcwatch.py OUT -- module:function [args...]``.

Why a wrapper: a full (generation 2) collection stops the whole event loop, and a server's
p99 is made of those pauses; only a callback inside the server's own process can time
them. ``gc.callbacks`` gets a "start" and a "stop" call around every collection, so each
pause is measured where it happens, for moa and for any peer alike (no peer needs a code
change; the wrapper is run by the peer's own interpreter).

Standard library only, and self-contained: peers run it from their own virtualenvs, where
the bench package is not importable. Every ``FLUSH_S`` a daemon thread appends the pauses
recorded since the last flush to OUT, one line each: ``<CLOCK_MONOTONIC s> <generation>
<pause ms> <CPU ms>`` (the pause is wall time, what a client waits; the collection's own
CPU time tells it apart from the process being descheduled on a busy machine;
CLOCK_MONOTONIC is system-wide on Linux, so the bench can pick the pauses of
a measurement window by its own clock). Pauses shorter than ``KEEP_MS`` are only counted,
per generation, in a ``# counts`` line, so the file stays small at thousands of
collections a second.
"""

from __future__ import annotations

import gc
import importlib
import os
import sys
import threading
import time
from typing import Any

FLUSH_S = 0.5
KEEP_MS = 1.0


class PauseLog:
    """Collects pauses in the server's process; ``flush`` appends them to a file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._started = 0.0
        self._started_cpu = 0.0
        self._kept: list[tuple[float, int, float, float]] = []
        self._counts = [0, 0, 0]
        self._total_ms = [0.0, 0.0, 0.0]
        # Reentrant: a collection can start inside flush() (it allocates while holding the
        # lock), and its callback then takes the lock again in the same thread.
        self._lock = threading.RLock()

    def callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            self._started_cpu = time.thread_time()
            return
        pause_ms = (time.perf_counter() - self._started) * 1000
        cpu_ms = (time.thread_time() - self._started_cpu) * 1000
        generation = int(info.get("generation", 0))
        with self._lock:
            self._counts[generation] += 1
            self._total_ms[generation] += pause_ms
            if pause_ms >= KEEP_MS:
                self._kept.append((time.monotonic(), generation, pause_ms, cpu_ms))

    def flush(self) -> None:
        with self._lock:
            kept, self._kept = self._kept, []
            pairs = zip(self._counts, self._total_ms, strict=True)
            counts = " ".join(f"{count}:{ms:.3f}" for count, ms in pairs)
        lines = [f"{t:.6f} {g} {ms:.3f} {cpu:.3f}\n" for t, g, ms, cpu in kept]
        lines.append(f"# counts {time.monotonic():.6f} {counts}\n")
        with open(self.path, "a") as out:
            out.writelines(lines)

    def flush_forever(self) -> None:
        while True:
            time.sleep(FLUSH_S)
            self.flush()


def read(path: str, since: float, until: float) -> dict[str, Any]:
    """The pauses of a window (CLOCK_MONOTONIC seconds): every one of ``KEEP_MS`` or more,
    the longest, and how many collections of each generation ran (from the flushed counts,
    so to within ``FLUSH_S`` at either end)."""
    kept: list[float] = []
    kept_cpu: list[float] = []
    counts: list[tuple[float, list[int]]] = []
    try:
        with open(path) as log:
            lines = log.read().splitlines()
    except OSError:
        return {"measured": False}
    for line in lines:
        fields = line.split()
        if fields[:2] == ["#", "counts"]:
            counts.append((float(fields[2]), [int(f.split(":")[0]) for f in fields[3:]]))
        elif len(fields) >= 3 and since <= float(fields[0]) <= until:
            kept.append(float(fields[2]))
            kept_cpu.append(float(fields[3]) if len(fields) > 3 else float(fields[2]))
    before = max((c for c in counts if c[0] <= since), default=None, key=lambda c: c[0])
    after = min((c for c in counts if c[0] >= until), default=None, key=lambda c: c[0])
    collections = None
    if before and after:
        collections = [a - b for a, b in zip(after[1], before[1], strict=True)]
    return {
        "measured": True,
        "max_ms": round(max(kept), 2) if kept else 0.0,
        "max_cpu_ms": round(max(kept_cpu), 2) if kept_cpu else 0.0,
        "over_20ms": sum(1 for ms in kept if ms > 20),
        "over_1ms": len(kept),
        "collections_per_generation": collections,
    }


def main() -> None:
    argv = sys.argv[1:]
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit(__doc__)
    pauses = PauseLog(argv[0])
    gc.callbacks.append(pauses.callback)
    threading.Thread(target=pauses.flush_forever, name="gcwatch", daemon=True).start()
    if sys.path and sys.path[0] == os.path.dirname(os.path.abspath(__file__)):
        sys.path.pop(0)  # bench/ itself: its module names must not shadow the server's
    module_name, _, function_name = argv[2].partition(":")
    sys.argv = [module_name, *argv[3:]]
    entry = getattr(importlib.import_module(module_name), function_name or "main")
    try:
        entry()
    finally:
        pauses.flush()


if __name__ == "__main__":
    main()
