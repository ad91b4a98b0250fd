"""`moa serve` as a real child process, for what only a process can show: SIGKILL, SIGTERM
and several replicas on one database. Its moa.toml points at the test's scripted upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx

from moa.testing import ScriptedUpstream

MOA = str(Path(sys.executable).with_name("moa"))
_ANNOUNCEMENT = "moa serving on "


def write_config(
    path: Path,
    upstream: ScriptedUpstream,
    database_url: str,
    *,
    engine: Mapping[str, float] | None = None,
    **server: float | str,
) -> Path:
    """A moa.toml with provider ``fake`` on ``upstream``, these ``[engine]`` numbers (fast
    retries by default) and these ``[server]`` settings."""
    numbers = {"retry_backoff_s": 0.01, "retry_backoff_max_s": 0.05, **(engine or {})}
    lines = [
        "[providers.fake]",
        'kind = "openai"',
        f'base_url = "{upstream.base_url}"',
        'api_key = "sk-fake"',
        "",
        "[engine]",
        *(f"{name} = {value}" for name, value in numbers.items()),
        "",
        "[server]",
        f'database_url = "{database_url}"',
        *(f"{name} = {_toml(value)}" for name, value in server.items()),
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _toml(value: float | str) -> str:
    return json.dumps(value) if isinstance(value, str) else str(value)


class MoaProcess:
    """``async with MoaProcess(config) as moa: moa.url``; killed at the end if still alive."""

    def __init__(
        self,
        config: Path,
        *,
        workers: int = 1,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.config = config
        self.workers = workers
        self.cwd = cwd
        self.extra_env = env or {}
        self.log = config.with_suffix(f".{id(self)}.log")
        self.url = ""
        self._process: subprocess.Popen[str] | None = None

    @property
    def process(self) -> subprocess.Popen[str]:
        assert self._process is not None, "not started"
        return self._process

    async def __aenter__(self) -> Self:
        self._process = await asyncio.to_thread(self._spawn)
        async with asyncio.timeout(60):
            line = await asyncio.to_thread(self._announcement)
        self.url = line.removeprefix(_ANNOUNCEMENT).split()[0]
        async with httpx.AsyncClient(base_url=self.url, timeout=5) as http:
            await eventually(lambda: self._ready(http), within=60, message="moa serve is ready")
        return self

    async def _ready(self, http: httpx.AsyncClient) -> bool:
        """The socket is bound before the app has started; wait until it answers."""
        try:
            return (await http.get("/healthz")).status_code == 200
        except httpx.TransportError:
            assert self.process.poll() is None, f"moa serve died:\n{self.log.read_text()}"
            return False

    def _spawn(self) -> subprocess.Popen[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MOA_")}
        argv = [MOA, "serve", "--config", str(self.config), "--port", "0"]
        with self.log.open("w") as log:
            return subprocess.Popen(
                [*argv, "--workers", str(self.workers)],
                stdout=subprocess.PIPE,
                stderr=log,
                text=True,
                cwd=self.cwd,
                env={**env, **self.extra_env},
            )

    def _announcement(self) -> str:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(_ANNOUNCEMENT):
                return line
        raise AssertionError(f"moa serve exited before serving:\n{self.log.read_text()}")

    def signal(self, number: signal.Signals) -> None:
        self.process.send_signal(number)

    async def exited(self, within: float = 60) -> int:
        """The exit status, waiting up to ``within`` seconds for it."""
        return await asyncio.to_thread(self.process.wait, within)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            await self.exited()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()


async def eventually(
    check: Callable[[], Awaitable[Any]], within: float = 30, message: str = ""
) -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``within`` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within):
            while True:
                if result := await check():
                    return result
                await asyncio.sleep(0.05)
    raise AssertionError(f"not within {within} s: {message}")


async def refusal(http: httpx.AsyncClient, path: str) -> httpx.Response:
    """The first answer to ``GET path`` that is not a 200: how a test waits out
    ``[server] auth_cache_s`` on another process."""

    async def refused() -> httpx.Response | None:
        response = await http.get(path)
        return None if response.status_code == 200 else response

    answer: httpx.Response = await eventually(refused, within=10, message=f"{path} refused")
    return answer
