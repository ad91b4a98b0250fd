"""``python -m bench.first_example``: the README's first example, ``moa blend "Why is the sky
blue?"``, end to end as a user runs it (a fresh ``moa`` process, no config but the
``[engine]`` keys under test, the embedded model loaded by the command itself), on an idle
machine and with both cores kept busy by two other CPU-burning processes.

It chose the defaults of ``[engine] local_threads``, ``local_pool_size``,
``local_max_tokens`` and ``local_samples``: the first example must answer within 15 s on a
2-core machine, idle or busy. The grid varies one key at a time around the defaults, plus
the settings moa had before (2 threads, 1 context, 512 tokens, 4 samples, 60 s timeouts).
Results go to ``bench/results/first_example.json``; ``--write`` puts the table into
bench/README.md between its first-example markers.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

PROMPT = "Why is the sky blue?"
MOA = str(Path(sys.executable).with_name("moa"))
RESULTS = Path(__file__).parent / "results" / "first_example.json"
README = Path(__file__).parent / "README.md"
START, END = "<!-- first-example:start -->", "<!-- first-example:end -->"
RUN_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Setting:
    """One point of the grid: the ``[engine]`` keys a run's moa.toml sets."""

    label: str
    threads: int = 1
    pool: int = 2
    max_tokens: int = 64
    samples: int = 2
    context_tokens: int = 4096
    timeout_s: float = 120.0

    def toml(self) -> str:
        return "\n".join(
            [
                "[engine]",
                f"local_threads = {self.threads}",
                f"local_pool_size = {self.pool}",
                f"local_max_tokens = {self.max_tokens}",
                f"local_samples = {self.samples}",
                f"local_context_tokens = {self.context_tokens}",
                f"local_timeout_s = {self.timeout_s}",
                "",
            ]
        )


GRID = [
    Setting("defaults"),
    Setting("2 threads", threads=2),
    Setting("1 context", pool=1),
    Setting("48 tokens", max_tokens=48),
    Setting("96 tokens", max_tokens=96),
    Setting("2 threads, 96 tokens", threads=2, max_tokens=96),
    Setting("128 tokens", max_tokens=128),
    Setting("3 samples", samples=3),
    Setting(
        "before (2 threads, 1 context, 512 tokens, 4 samples, 60 s)",
        threads=2,
        pool=1,
        max_tokens=512,
        samples=4,
        context_tokens=8192,
        timeout_s=60.0,
    ),
]


@contextlib.contextmanager
def burners(count: int) -> Iterator[list[int]]:
    """``count`` processes that each keep one core busy, stopped (by pid) at the end."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", "while True: pass"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        for _ in range(count)
    ]
    try:
        yield [p.pid for p in procs]
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def run_once(setting: Setting, workdir: Path) -> dict[str, Any]:
    """One ``moa blend`` process from start to exit, timed from outside."""
    config = workdir / "moa.toml"
    config.write_text(setting.toml(), encoding="utf-8")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("MOA_") and not k.endswith("_API_KEY")
    }
    env |= {"HOME": str(workdir), "XDG_DATA_HOME": str(workdir / "data")}
    load_before = os.getloadavg()[0]
    cpu_before = _children_cpu_s()
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [MOA, "blend", PROMPT],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
        code, out, err = done.returncode, done.stdout, done.stderr
    except subprocess.TimeoutExpired:
        code, out, err = -1, "", f"killed after {RUN_TIMEOUT_S:g} s"
    seconds = time.perf_counter() - started
    return {
        "seconds": round(seconds, 2),
        "cpu_s": round(_children_cpu_s() - cpu_before, 2),
        "exit_code": code,
        "answer_chars": len(out.strip()),
        "error": err.strip()[-300:] if code else None,
        "load_before": round(load_before, 2),
        "load_after": round(os.getloadavg()[0], 2),
    }


def _children_cpu_s() -> float:
    """CPU seconds (user + system, every thread) of the waited-for child processes: what
    a run costs whatever else the machine runs, unlike its wall-clock time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(settings: list[Setting], conditions: list[str], reps: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="moa-first-example-") as tmp:
        for condition in conditions:
            with burners(2 if condition == "busy" else 0):
                for setting in settings:
                    runs = []
                    for rep in range(reps):
                        run = run_once(setting, Path(tmp))
                        runs.append(run)
                        print(
                            f"  {condition:4} {setting.label:28.28} #{rep + 1}: "
                            f"{run['seconds']:6.1f} s cpu {run['cpu_s']:5.1f} s "
                            f"exit {run['exit_code']} "
                            f"load {run['load_before']}"
                        )
                    rows.append({"condition": condition, "setting": asdict(setting), "runs": runs})
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown: one line per setting, idle and busy side by side (every run's seconds)."""
    by_label: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for row in rows:
        by_label.setdefault(row["setting"]["label"], {})[row["condition"]] = row["runs"]

    def cell(runs: list[dict[str, Any]] | None) -> str:
        if not runs:
            return "-"
        shown = [f"{r['seconds']:.1f}" if r["exit_code"] == 0 else "failed" for r in runs]
        cpu = [f"{r['cpu_s']:.1f}" for r in runs if "cpu_s" in r]
        loads = [r["load_before"] for r in runs]
        spent = f", CPU {' / '.join(cpu)}" if cpu else ""
        return f"{' / '.join(shown)}{spent} (load {min(loads):g}-{max(loads):g})"

    lines = [
        "| setting | idle: seconds per run, CPU s | busy (2 burners): seconds per run, CPU s |",
        "|---|---|---|",
    ]
    for label, conditions in by_label.items():
        lines.append(
            f"| {label} | {cell(conditions.get('idle'))} | {cell(conditions.get('busy'))} |"
        )
    return "\n".join(lines)


def write_readme(text: str) -> None:
    readme = README.read_text(encoding="utf-8")
    block = f"{START}\n{text}\n{END}"
    if START in readme:
        readme = re.sub(f"{re.escape(START)}.*?{re.escape(END)}", block, readme, flags=re.S)
    else:
        readme = readme.rstrip("\n") + "\n\n" + block + "\n"
    README.write_text(readme, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--reps", type=int, default=2, help="runs per setting and condition")
    parser.add_argument("--conditions", nargs="+", default=["idle", "busy"])
    parser.add_argument("--only", nargs="+", help="labels of the grid to run (default: all)")
    parser.add_argument("--write", action="store_true", help="put the table into README.md")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON file to write")
    args = parser.parse_args(argv)
    settings = [s for s in GRID if not args.only or s.label in args.only]
    rows = measure(settings, args.conditions, args.reps)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "prompt": PROMPT,
                "command": f'moa blend "{PROMPT}"',
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "rows": rows,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    shown = table(rows)
    print(shown)
    if args.write:
        write_readme(shown)


if __name__ == "__main__":
    main()
