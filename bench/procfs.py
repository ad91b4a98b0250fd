"""Process and machine facts read straight from /proc.

Why /proc and not psutil: it is always there on Linux, needs no install, and gives exactly
the kernel's numbers (utime+stime ticks per process, VmRSS, the machine's busy ticks), which
is what "CPU-seconds per blend" and "bytes per in-flight blend" are defined on.
"""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Iterable
from pathlib import Path

CLK_TCK = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/<pid>/stat after the command name (which may contain spaces)."""
    try:
        raw = (_PROC / str(pid) / "stat").read_text()
    except OSError:  # the process is gone
        return None
    return raw[raw.rindex(")") + 2 :].split()


def parent_of(pid: int) -> int | None:
    fields = _stat_fields(pid)
    return int(fields[1]) if fields else None


def tree(root: int) -> list[int]:
    """``root`` and all its live descendants (uvicorn's workers are children of the master)."""
    parents: dict[int, list[int]] = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (ppid := parent_of(int(entry.name))) is not None:
            parents.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [root], [root]
    while frontier:
        children = parents.get(frontier.pop(), [])
        found.extend(children)
        frontier.extend(children)
    return found


def cpu_seconds(pids: Iterable[int]) -> float:
    """utime + stime of live processes, all their threads included."""
    ticks = 0
    for pid in pids:
        fields = _stat_fields(pid)
        if fields:
            ticks += int(fields[11]) + int(fields[12])  # stat fields 14 and 15
    return ticks / CLK_TCK


def rss_bytes(pids: Iterable[int]) -> int:
    """Resident set size (VmRSS) summed over ``pids``."""
    total = 0
    for pid in pids:
        try:
            status = (_PROC / str(pid) / "status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
    return total


def open_fds(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            total += len(os.listdir(_PROC / str(pid) / "fd"))
        except OSError:
            continue
    return total


def machine_busy_seconds() -> float:
    """CPU-seconds the whole machine spent busy (all cores; idle and iowait excluded)."""
    first = (_PROC / "stat").read_text().splitlines()[0].split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in first[1:9])
    return (user + nice + system + irq + softirq + steal) / CLK_TCK


def machine_info() -> dict[str, object]:
    """What a reader needs to judge the numbers: cores, CPU model, memory, load, versions."""
    model = "unknown"
    for line in (_PROC / "cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    mem_kib = 0
    for line in (_PROC / "meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            mem_kib = int(line.split()[1])
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "kernel": platform.release(),
        "python": sys.version.split()[0],
        "loadavg_at_start": list(os.getloadavg()),
    }
