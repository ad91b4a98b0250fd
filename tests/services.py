"""Make sure the local PostgreSQL and Redis answer, starting them if they do not.

Tests that need a real database or cache call these from a session fixture: the services
run on developers' machines and CI's, but may have been stopped.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

POSTGRES_URL = os.environ.get(
    "MOA_TEST_PG_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("MOA_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


class ServiceUnavailable(RuntimeError):
    pass


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _wait(port: int, name: str, within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if _answers(port):
            return
        time.sleep(0.2)  # polling a server that is starting; nothing to wait on instead
    raise ServiceUnavailable(f"{name} did not start on 127.0.0.1:{port}")


def ensure_postgres() -> str:
    if _answers(5432):
        return POSTGRES_URL
    ctl = shutil.which("pg_ctlcluster")
    if ctl is None or not Path("/etc/postgresql").is_dir():
        raise ServiceUnavailable("PostgreSQL is not running and pg_ctlcluster is not installed")
    for version in sorted(os.listdir("/etc/postgresql")):
        subprocess.run(
            [ctl, "--skip-systemctl-redirect", version, "main", "start"],
            check=False,
            capture_output=True,
            timeout=60,
        )
    _wait(5432, "PostgreSQL")
    return POSTGRES_URL


def ensure_redis() -> str:
    if _answers(6379):
        return REDIS_URL
    server = shutil.which("redis-server")
    if server is None:
        raise ServiceUnavailable("Redis is not running and redis-server is not installed")
    subprocess.run(
        [
            server,
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/tmp",
        ],
        check=False,
        capture_output=True,
        timeout=30,
    )
    _wait(6379, "Redis")
    return REDIS_URL
