"""Run the whole harness: ``python -m bench [--quick]`` or ``python bench/run.py``.

Starts the scripted upstream and moa's server as their own processes, runs every scenario
(each in a fresh event loop), writes ``bench/results/latest.json``, the PNG plots and the
results block of ``bench/README.md``. Every process started is stopped in a ``finally``,
also on Ctrl-C or SIGTERM; the server and upstream logs are kept in ``results/logs/``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import datetime as dt
import functools
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from bench.plan import Plan

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("local", "timeline", "overhead", "stragglers", "memory", "throughput")
PEERS = "peers"  # ``--peers``: moa beside LiteLLM and optillm, its own result file
Work = Callable[[], Coroutine[Any, Any, dict[str, Any]]]


def _raise_fd_limit() -> int:
    """1,000 in-flight streams need ~1,000 sockets here and ~4,000 in the server, which
    inherits this limit: lift the soft limit to the hard one."""
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def _on_sigterm(signum: int, frame: object) -> NoReturn:
    raise SystemExit(f"stopped by signal {signum}")  # unwinds through every ``finally``


def _git_commit() -> str | None:
    """The commit measured (read-only ``git rev-parse``; the tree may have local edits)."""
    try:
        done = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip()


def _timed(name: str, work: Work) -> dict[str, Any]:
    """Run one scenario in its own event loop; a failure is recorded, not fatal."""
    print(f"[{time.strftime('%H:%M:%S')}] {name} ...", flush=True)
    started = time.perf_counter()
    try:
        result = asyncio.run(work())
    except Exception as exc:  # the other scenarios still run and the failure is reported
        result = {"failed": f"{type(exc).__name__}: {exc}"}
        print(f"  {name} failed: {result['failed']}", flush=True)
    result["scenario_wall_s"] = round(time.perf_counter() - started, 1)
    return result


def _http_scenarios(
    plan: Plan, only: list[str], out: Path, peer_options: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The scenarios that need the upstream and moa's server, in one Lab."""
    from bench.scenarios import memory, overhead, peers, stragglers, throughput, timeline
    from bench.servers import Lab

    modules: dict[str, ModuleType] = {
        "peers": peers,
        "timeline": timeline,
        "overhead": overhead,
        "stragglers": stragglers,
        "memory": memory,
        "throughput": throughput,
    }
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="moa-bench-") as tmp:
        lab = Lab(Path(tmp))
        try:
            for name in (n for n in (PEERS, *SCENARIOS) if n in only and n in modules):
                extra = (peer_options or {}) if name == PEERS else {}
                work = functools.partial(modules[name].run, lab, plan, **extra)
                results[name] = _timed(name, work)
        finally:
            lab.close()
            logs = out / "logs"
            logs.mkdir(parents=True, exist_ok=True)
            for log in Path(tmp).glob("*.log"):
                shutil.copy(log, logs / log.name)
    return results


def _meta(plan: Plan, argv: list[str]) -> dict[str, Any]:
    from bench import procfs

    return {
        "plan": plan.name,
        "started_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": procfs.machine_info() | {"fd_limit": _raise_fd_limit()},
        "git_commit": _git_commit(),
        "command": " ".join(["python -m bench", *argv]),
    }


def main(argv: list[str] | None = None) -> None:
    from bench import plots, report
    from bench.plan import FULL, QUICK
    from bench.scenarios import local

    args_list = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a 1-2 minute smoke run")
    parser.add_argument(
        "--peers",
        action="store_true",
        help="chat and MoA beside LiteLLM and optillm (installed under bench/.peers)",
    )
    parser.add_argument(
        "--baseline",
        metavar="REF",
        action="append",
        default=[],
        help="with --peers: also run moa as of git REF, in turns with the working tree "
        "(repeatable)",
    )
    parser.add_argument(
        "--moa-only",
        action="store_true",
        help="with --peers: leave LiteLLM and optillm out (moa, its baselines, direct)",
    )
    parser.add_argument("--only", nargs="+", choices=SCENARIOS, default=list(SCENARIOS))
    parser.add_argument("--out", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(args_list)
    plan = QUICK if args.quick else FULL
    signal.signal(signal.SIGTERM, _on_sigterm)
    started = time.perf_counter()
    meta = _meta(plan, args_list)
    only = [PEERS] if args.peers else args.only
    results: dict[str, Any] = {}
    if "local" in only:  # first, while no server shares the cores
        results["local"] = _timed("local", lambda: local.run(plan))
    peers = {"baselines": args.baseline, "with_peers": not args.moa_only}
    results |= _http_scenarios(plan, only, args.out, peers)
    meta["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    meta["wall_s"] = round(time.perf_counter() - started, 1)
    meta["loadavg_at_end"] = list(os.getloadavg())
    document = {"meta": meta, "plan": dataclasses.asdict(plan), **results}
    args.out.mkdir(parents=True, exist_ok=True)
    name = "peers.json" if args.peers else "latest.json"
    (args.out / name).write_text(json.dumps(document, indent=2) + "\n")
    if args.peers:
        if args.out == RESULTS:
            report.update_readmes_peers(document)
        print(report.peers_table(document))
        print(f"wrote {args.out / name} in {meta['wall_s']} s")
        return
    written = plots.render(document, args.out)
    if args.out == RESULTS:
        report.update_readme(document)
    print(report.targets_table(document))
    print(f"wrote {args.out / name} and {len(written)} plots in {meta['wall_s']} s")


if __name__ == "__main__":
    if not __package__:  # ``python bench/run.py``: make the repository root importable
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
