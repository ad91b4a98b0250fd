"""Start and stop the processes a run needs: the scripted upstream and moa's server.

Each runs in its own process (and its own session, so a signal to the group also reaches
uvicorn's workers): on a 2-core machine the upstream, the server and the load generator
must be separate schedulable processes, or one would silently steal the others' time.
Every process started here is stopped by ``Lab.close()``, which ``run.py`` calls from a
``finally``; every wait below is bounded in time.
"""

from __future__ import annotations

import contextlib
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO

import httpx

from bench import procfs

HOST = "127.0.0.1"
SOURCE_PROVIDERS = ("fa", "fb", "fc")  # one provider (one HTTP pool) per source, as in real use
SYNTH_PROVIDER = "fs"
START_TIMEOUT_S = 30.0
GCWATCH = Path(__file__).resolve().parent / "gcwatch.py"
STOP_TIMEOUT_S = 10.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


class Child:
    """One child process: stdout lines are drained by a thread (so the pipe never fills and
    blocks the child), stderr goes to a log file for post-mortems."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log: IO[str] = self.log_path.open("w")
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=self._log,
            stdin=subprocess.DEVNULL,
            text=True,
            start_new_session=True,
            env=env,
            cwd=cwd,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def pids(self) -> list[int]:
        """The process and its workers, for CPU and memory accounting."""
        return procfs.tree(self.pid)

    def wait_line(self, prefix: str, timeout_s: float = START_TIMEOUT_S) -> str:
        deadline = time.monotonic() + timeout_s
        while (left := deadline - time.monotonic()) > 0:
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(queue.Empty):
                line = self.lines.get(timeout=min(left, 0.2))
                if line.startswith(prefix):
                    return line
        raise RuntimeError(f"{self.name} did not print {prefix!r}; see {self.log_path}")

    def stop(self) -> None:
        """SIGTERM the whole session, wait, then SIGKILL whatever is left of it (a worker
        that outlived its supervisor included)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(STOP_TIMEOUT_S)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(5.0)
        self._log.close()


def start_upstream(log_dir: Path) -> tuple[Child, str]:
    """``python -m moa.testing.upstream``; returns the process and its root URL."""
    port = free_port()
    argv = [sys.executable, "-m", "moa.testing.upstream", "--host", HOST, "--port", str(port)]
    child = Child("upstream", argv, log_dir)
    try:
        base_url = child.wait_line("http://")
    except BaseException:
        child.stop()
        raise
    return child, base_url.removesuffix("/v1")


def write_config(path: Path, upstream_root: str, database: Path) -> None:
    """moa.toml for the bench: one provider per source (each gets its own connection pool,
    as distinct vendors would), limits far above the load, and a fresh SQLite database.

    The engine's in-flight caps (defaults 512 total, 128 per provider) and the per-key cap
    on concurrent requests (``key_inflight``, default 16) are raised because
    the bench measures overhead, not deliberate back-pressure; the call timeouts too, so the
    memory scenario's deliberately stalled calls outlive the time it takes to open them all.
    README says so."""
    providers = "".join(
        f'[providers.{name}]\nkind = "openai"\nbase_url = "{upstream_root}/v1"\napi_key = "x"\n\n'
        for name in (*SOURCE_PROVIDERS, SYNTH_PROVIDER)
    )
    huge = 1_000_000_000
    path.write_text(
        providers
        + "[server]\n"
        + f'database_url = "sqlite+aiosqlite:///{database}"\n'
        + f"rate_limit_per_minute = {huge}\nrate_limit_burst = {huge}\n"
        + f"ip_rate_limit_per_minute = {huge}\nkey_inflight = 100000\n\n"
        + "[engine]\nmax_inflight = 16384\nprovider_inflight = 8192\n"
        + "source_timeout_s = 600\nsynthesis_timeout_s = 600\n"
    )


def moa_argv(*args: str) -> list[str]:
    """The ``moa`` console script of this interpreter's environment."""
    script = Path(sys.executable).with_name("moa")
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "moa.cli", *args]


def create_key(
    config: Path, moa: Sequence[str] | None = None, env: Mapping[str, str] | None = None
) -> str:
    """A funded key in ``config``'s database, made by ``moa`` (this environment's
    console script unless a baseline passes its own command and environment)."""
    done = subprocess.run(
        [*(moa or moa_argv()), "keys", "create", "--credits", "100000000", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        env=None if env is None else {**os.environ, **env},
    )
    return done.stdout.strip().splitlines()[-1]


def moa_serve_args(config: Path, port: int, workers: int) -> list[str]:
    where = ["--host", HOST, "--port", str(port), "--workers", str(workers)]
    return ["serve", "--config", str(config), *where]


def start_moa(
    config: Path, workers: int, log_dir: Path, gc_log: Path | None = None
) -> tuple[Child, str]:
    """``moa serve``; returns once /healthz answers and every worker process exists.
    With ``gc_log`` (one worker only: it watches the process it runs in), the server runs
    under ``bench/gcwatch.py``, which records its garbage-collection pauses there."""
    port = free_port()
    args = moa_serve_args(config, port, workers)
    argv = moa_argv(*args)
    if gc_log is not None and workers == 1:
        argv = [sys.executable, str(GCWATCH), str(gc_log), "--", "moa.cli:main", *args]
    child = Child(f"moa-w{workers}", argv, log_dir)
    url = f"http://{HOST}:{port}"
    try:
        _wait_healthy(child, url, workers)
    except BaseException:
        child.stop()
        raise
    return child, url


def _wait_healthy(child: Child, url: str, workers: int) -> None:
    expected = 1 if workers == 1 else workers + 1  # uvicorn's supervisor plus its workers
    deadline = time.monotonic() + START_TIMEOUT_S
    with httpx.Client(timeout=2.0) as client:
        while time.monotonic() < deadline:
            if child.proc.poll() is not None:
                break
            with contextlib.suppress(httpx.HTTPError):
                healthy = client.get(f"{url}/healthz").status_code == 200
                if healthy and len(child.pids()) >= expected:
                    return
            time.sleep(0.1)
    raise RuntimeError(f"{child.name} did not become healthy; see {child.log_path}")


class Lab:
    """The run's processes: one upstream for the whole run and one moa server at a time
    (restarted when a scenario asks for another worker count). ``close()`` stops all."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._moa: Child | None = None
        self._moa_workers = 0
        self.moa_url = ""
        self.moa_gc_log = workdir / "moa-gc.log"  # pauses of the 1-worker server
        self.upstream, self.upstream_url = start_upstream(workdir)
        try:
            self.config = workdir / "moa.toml"
            write_config(self.config, self.upstream_url, workdir / "moa.db")
            self.key = create_key(self.config)
        except BaseException:
            self.upstream.stop()
            raise

    def moa(self, workers: int = 1, *, fresh: bool = False) -> Child:
        """The running moa server with ``workers`` processes, (re)started if needed or
        if ``fresh`` (so no scenario inherits another's heap or connections)."""
        current = self._moa
        if (
            current is None
            or fresh
            or current.proc.poll() is not None
            or self._moa_workers != workers
        ):
            self.stop_moa()
            current, self.moa_url = start_moa(
                self.config, workers, self.workdir, gc_log=self.moa_gc_log
            )
            self._moa, self._moa_workers = current, workers
        return current

    def stop_moa(self) -> None:
        if self._moa is not None:
            self._moa.stop()
            self._moa = None

    def close(self) -> None:
        try:
            self.stop_moa()
        finally:
            self.upstream.stop()
