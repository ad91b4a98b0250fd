"""The systems compared, each as a process on 127.0.0.1 in front of the same upstream.

``direct`` is no system at all: the load generator asks the upstream itself, so its
latency is the floor every gateway adds to. Every server runs one process (one worker)
under ``bench/gcwatch.py``, so its garbage-collection pauses are recorded the same way:

- moa: ``moa serve`` with the bench's moa.toml; chat is ``POST /api/v1/chat`` with model
  ``fa/alpha``, the MoA scenario a ``self_moa`` blend of 3 samples.
- LiteLLM: its proxy (``litellm --config``), a model list that routes ``alpha`` to the
  upstream as an OpenAI-compatible ``api_base``, a master key, no database; its cost map
  is read from the package (``LITELLM_LOCAL_MODEL_COST_MAP``), never fetched.
- optillm: its server with ``--base-url`` at the upstream; model ``alpha`` is its plain
  pass-through (approach ``none``), ``moa-alpha`` its mixture-of-agents approach.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench.servers import GCWATCH, HOST, Child, create_key, free_port, moa_serve_args

START_TIMEOUT_S = 120.0  # LiteLLM's proxy imports for ~20 s on a busy 2-core machine
LITELLM_KEY = "sk-bench-master-key"
QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


@dataclass
class System:
    """One system under test: where its chat and MoA requests go, and its processes."""

    name: str
    url: str  # chat completions (or moa's /api/v1/chat)
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    child: Child | None = None
    gc_log: Path | None = None
    moa_url: str | None = None  # None: the system has no MoA
    moa_body: dict[str, Any] | None = None

    def chat_body(self) -> dict[str, Any]:
        return {"model": self.model, "messages": QUESTION}

    def pids(self) -> list[int]:
        return self.child.pids() if self.child else []

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop()


def gcwatch_argv(python: str, log: Path, entry: str, *args: str) -> list[str]:
    return [python, str(GCWATCH), str(log), "--", entry, *args]


def direct(upstream_url: str) -> System:
    return System("direct", f"{upstream_url}/v1/chat/completions", "alpha")


def moa(url: str, key: str, child: Child, gc_log: Path | None) -> System:
    auth = {"Authorization": f"Bearer {key}"}
    blend = {
        "models": ["fa/alpha"],
        "synthesizer": "fa/alpha",
        "strategy": "self_moa",
        "samples": 3,
        "messages": QUESTION,
    }
    return System(
        "moa",
        f"{url}/api/v1/chat",
        "fa/alpha",
        auth,
        child,
        gc_log,
        moa_url=f"{url}/api/v1/blend",
        moa_body=blend,
    )


def start_moa_at(ref: str, config: Path, workdir: Path) -> System:
    """moa as it was at git ``ref`` (``--baseline REF``): its ``src/`` exported with ``git
    archive`` and put first on ``PYTHONPATH``, in this environment, on the same config but
    a database and key of its own (made by that code: an older moa cannot open a database
    a newer one has migrated). uvloop and httptools are hidden from it when that commit's
    pyproject.toml does not ask for them, as a plain install of it would lack them, so
    the turn measures what the commit shipped. Before and after in one run, in turns."""
    root = workdir / f"moa-at-{ref.replace('/', '-')}"
    root.mkdir(parents=True, exist_ok=True)
    archive = subprocess.run(
        ["git", "archive", "--format=tar", ref, "src", "pyproject.toml"],
        capture_output=True,
        timeout=60,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(root, filter="data")
    paths = [str(root / "src")]
    if "uvloop" not in (root / "pyproject.toml").read_text():
        hidden = root / "hidden"
        hidden.mkdir(exist_ok=True)
        for name in ("uvloop", "httptools"):
            (hidden / f"{name}.py").write_text(f"raise ImportError('{name} hidden')\n")
        paths.append(str(hidden))
    env = {"PYTHONPATH": os.pathsep.join(paths)}
    own_config = root / "moa.toml"
    own_database = f'database_url = "sqlite+aiosqlite:///{root / "moa.db"}"'
    own_config.write_text(re.sub(r'database_url = ".*"', own_database, config.read_text()))
    key = create_key(own_config, [sys.executable, "-c", "from moa.cli import main; main()"], env)
    port = free_port()
    log = workdir / f"moa-at-{ref}-gc.log"
    args = moa_serve_args(own_config, port, workers=1)
    argv = gcwatch_argv(sys.executable, log, "moa.cli:main", *args)
    url = f"http://{HOST}:{port}"
    child = _start(f"moa-at-{ref}", argv, workdir, env, f"{url}/healthz")
    system = moa(url, key, child, log)
    system.name = f"moa@{ref}"
    return system


def start_litellm(python: Path, upstream_url: str, workdir: Path) -> System:
    config = workdir / "litellm.yaml"
    config.write_text(
        "model_list:\n"
        "  - model_name: alpha\n"
        "    litellm_params:\n"
        "      model: openai/alpha\n"
        f"      api_base: {upstream_url}/v1\n"
        "      api_key: x\n"
        "general_settings:\n"
        f"  master_key: {LITELLM_KEY}\n"
    )
    port = free_port()
    log = workdir / "litellm-gc.log"
    argv = gcwatch_argv(str(python), log, "litellm:run_server", "--config", str(config))
    argv += ["--host", HOST, "--port", str(port), "--num_workers", "1"]
    env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_TELEMETRY": "False"}
    url = f"http://{HOST}:{port}"
    child = _start("litellm", argv, workdir, env, f"{url}/health/liveliness")
    auth = {"Authorization": f"Bearer {LITELLM_KEY}"}
    return System("litellm", f"{url}/v1/chat/completions", "alpha", auth, child, log)


def start_optillm(python: Path, upstream_url: str, workdir: Path) -> System:
    port = free_port()
    log = workdir / "optillm-gc.log"
    argv = gcwatch_argv(str(python), log, "optillm:main", "--base-url", f"{upstream_url}/v1")
    argv += ["--host", HOST, "--port", str(port)]
    url = f"http://{HOST}:{port}"
    child = _start("optillm", argv, workdir, {"OPENAI_API_KEY": "x"}, f"{url}/health")
    auth = {"Authorization": "Bearer x"}
    body = {"model": "moa-alpha", "messages": QUESTION}
    system = System("optillm", f"{url}/v1/chat/completions", "alpha", auth, child, log)
    system.moa_url, system.moa_body = system.url, body
    return system


def _start(name: str, argv: list[str], workdir: Path, env: dict[str, str], health: str) -> Child:
    """Start a peer in its own session (cwd: the run's temporary directory, so nothing it
    writes lands in the repository) and wait, bounded, until ``health`` answers 200."""
    child = Child(name, argv, workdir, env=os.environ | env, cwd=workdir)
    try:
        _wait(child, lambda client: client.get(health).status_code == 200)
    except BaseException:
        child.stop()
        raise
    return child


def _wait(child: Child, ready: Callable[[httpx.Client], bool]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline and child.proc.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                if ready(client):
                    return
            time.sleep(0.25)
    raise RuntimeError(f"{child.name} did not become healthy; see {child.log_path}")
