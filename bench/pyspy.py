"""Profile moa's server under load with py-spy: ``python -m bench.pyspy [--stream]``.

Starts the upstream and a 1-worker server like the harness does, keeps it saturated with
the throughput scenario's closed loop, and samples the server with ``py-spy record --gil``
(only the thread holding the GIL, i.e. Python's own CPU time; threads blocked in SQLite
or sleeping would otherwise look busy). Prints where the time goes: by library (leaf
frame) and by moa function (inclusive). Raw collapsed stacks are kept under
``bench/results/profile/`` for flame graphs. A tool to explain a missed target, not part
of the timed run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.chatload import ChatClient
from bench.control import SYNTH, Upstream
from bench.direct import QUESTION
from bench.ideal import ANSWER, synth_content
from bench.load import Clients, closed_loop
from bench.scenarios.common import blend_call
from bench.servers import Lab

OUT = Path(__file__).resolve().parent / "results" / "profile"
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^:]*)(?::(?P<line>\d+))?\)$")


async def _load(lab: Lab, args: argparse.Namespace, spy: list[subprocess.Popen[bytes]]) -> int:
    """Warm the server up, then start py-spy and keep the load on while it samples, so
    the profile is steady state (no imports, no pool creation)."""
    up = Upstream(lab.upstream_url)
    client = Clients(args.clients + 8)
    chat = ChatClient(
        f"{lab.moa_url}/api/v1/chat",
        {"model": "fa/alpha", "messages": [{"role": "user", "content": QUESTION}]},
        {"Authorization": f"Bearer {lab.key}"},
        connections=args.clients,
    )
    try:
        await up.reset()
        await up.script_sources((args.upstream_ms,) * 3, ANSWER)
        await up.script(SYNTH, latency_ms=args.upstream_ms, content=synth_content("consensus"))
        call = chat.call if args.chat else blend_call(client, lab, "consensus", stream=args.stream)
        await closed_loop(args.clients, 3.0, call)
        spy.append(_start_py_spy(lab.moa(1).pid, args.seconds, args.raw))
        result = await closed_loop(args.clients, args.seconds + 1, call)
        return len(result.ok)
    finally:
        await asyncio.gather(up.aclose(), client.aclose(), chat.aclose())


def _start_py_spy(pid: int, seconds: float, raw: Path) -> subprocess.Popen[bytes]:
    argv = [_py_spy(), "record", "--pid", str(pid), "--duration", str(int(seconds))]
    argv += ["--format", "raw", "--rate", "200", "--gil", "--output", str(raw)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _library(path: str) -> str:
    """Which package a frame's file belongs to (py-spy prints paths relative to sys.path):
    ``moa.engine``, ``openai``, ``asyncio``, ``sqlalchemy``..."""
    if path.startswith("moa/"):
        return path.removesuffix(".py").replace("/", ".")
    return path.split("/", 1)[0].removesuffix(".py") or "?"


ACTIVITIES = (  # first match wins, so narrower activities come first
    ("credits: settle + usage record", ("Charge.settle",)),
    ("admission: auth, rate limits, reserve", ("admit (", "authenticated (")),
    ("upstream transport (aiohttp; httpx2/httpcore2)", ("(aiohttp/", "(httpcore2/", "(httpx2/")),
    ("openai SDK: parse replies", ("_process_response", "AsyncStream", "construct_type")),
    ("openai SDK: build requests", ("AsyncCompletions.create",)),
    ("SSE encoding", ("(moa/server/sse.py",)),
    ("request parsing + validation", ("solve_dependencies", "request_body_to_args")),
    ("response rendering", ("respond (", "_collect (", "JSONResponse", "(moa/server/replies")),
    ("engine, strategies, routing", ("(moa/engine", "(moa/strateg", "(moa/routing", "(moa/str")),
    ("SQLite, other", ("(aiosqlite/", "(sqlalchemy/")),
    ("HTTP server (uvicorn: httptools or h11), ASGI, event loop", ("(uvicorn/", "(h11/")),
)


def activity(stack: str) -> str:
    """What a sampled stack was doing, by the first matching marker of ``ACTIVITIES``."""
    for name, markers in ACTIVITIES:
        if any(m in stack for m in markers):
            return name
    return "event loop, other"


def by_activity(raw: Path) -> str:
    counts: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if stack:
            counts[activity(stack)] += int(count_text)
    total = sum(counts.values()) or 1
    return "\n".join(f"  {100 * c / total:5.1f}%  {name}" for name, c in counts.most_common())


def summarize(raw: Path, top: int = 25) -> str:
    """Self time by library and inclusive time by moa function, as percentages."""
    self_by_lib: collections.Counter[str] = collections.Counter()
    moa_inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack:
            continue
        count = int(count_text)
        total += count
        frames = [m for f in stack.split(";") if (m := _FRAME.match(f))]
        if frames:
            self_by_lib[_library(frames[-1]["file"])] += count
        seen = {
            f"{_library(m['file'])}:{m['func']}" for m in frames if m["file"].startswith("moa/")
        }
        for name in seen:
            moa_inclusive[name] += count
    lines = [f"{total} samples", "", "self time by library (leaf frame):"]
    lines += [f"  {100 * c / total:5.1f}%  {lib}" for lib, c in self_by_lib.most_common(top)]
    lines += ["", "inclusive time by moa function:"]
    lines += [f"  {100 * c / total:5.1f}%  {f}" for f, c in moa_inclusive.most_common(top)]
    return "\n".join(lines)


def _py_spy() -> str:
    """The py-spy binary next to this interpreter (``pip install py-spy``), else on PATH."""
    local = Path(sys.executable).with_name("py-spy")
    found = str(local) if local.exists() else shutil.which("py-spy")
    if found is None:
        raise SystemExit("py-spy is not installed: pip install py-spy")
    return found


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pyspy", description=__doc__)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--chat", action="store_true", help="/api/v1/chat instead of blends")
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--upstream-ms", type=float, default=20.0)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    kind = "chat" if args.chat else "sse" if args.stream else "json"
    args.raw = raw = OUT / f"server-{kind}.txt"
    spy: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(prefix="moa-pyspy-") as tmp:
        lab = Lab(Path(tmp))
        try:
            lab.moa(1)
            done = asyncio.run(_load(lab, args, spy))
            spy[0].wait(timeout=60)
        finally:
            for process in spy:
                if process.poll() is None:
                    process.kill()
                    process.wait(5)
            lab.close()
    what = "requests" if args.chat else "blends"
    header = f"{done} {what} in {args.seconds:g} s, {args.clients} clients; stacks in {raw.name}"
    text = f"{header}\n\nby activity:\n{by_activity(raw)}\n\n{summarize(raw)}\n"
    raw.with_name(raw.stem + "-summary.txt").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
