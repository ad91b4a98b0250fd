"""Liveness and readiness are different questions: /healthz answers while the process runs;
/healthz/ready only while the database (and Redis, when configured) answer too."""

from __future__ import annotations

import socket
from collections.abc import Callable

import asyncpg
import httpx
import pytest

from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


async def test_liveness_answers_ok_without_a_key(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_when_the_database_answers_and_no_redis_is_configured(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.get("/healthz/ready")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "redis": "not configured", "local_model": "not configured"},
    }


@pytest.mark.redis
async def test_ready_checks_redis_when_it_is_configured(
    upstream: ScriptedUpstream,
    database_url: str,
    redis_url: str,
    serve: Callable[..., ServedApp],
) -> None:
    app = serve(
        fake_settings(upstream, server={"database_url": database_url, "redis_url": redis_url})
    )
    async with httpx.AsyncClient(base_url=app.url) as http:
        response = await http.get("/healthz/ready")
    assert response.status_code == 200
    assert response.json()["checks"] == {
        "database": "ok",
        "redis": "ok",
        "local_model": "not configured",
    }


async def test_not_ready_while_redis_is_down_and_still_alive(
    upstream: ScriptedUpstream, database_url: str, serve: Callable[..., ServedApp]
) -> None:
    port = closed_port()
    down = f"redis://127.0.0.1:{port}/0"
    app = serve(fake_settings(upstream, server={"database_url": database_url, "redis_url": down}))
    async with httpx.AsyncClient(base_url=app.url) as http:
        ready = await http.get("/healthz/ready")
        alive = await http.get("/healthz")
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["redis"].startswith("down: ")
    assert str(port) not in body["checks"]["redis"], "the reason never echoes the URL"
    assert alive.status_code == 200


@pytest.mark.postgres
async def test_not_ready_once_the_database_is_gone(
    upstream: ScriptedUpstream,
    postgres_database: str,
    postgres_url: str,
    serve: Callable[..., ServedApp],
) -> None:
    app = serve(fake_settings(upstream, server={"database_url": postgres_database}))
    async with httpx.AsyncClient(base_url=app.url) as http:
        assert (await http.get("/healthz/ready")).status_code == 200
        admin = await asyncpg.connect(
            postgres_url.replace("postgresql+asyncpg://", "postgresql://", 1), timeout=5
        )
        try:
            name = postgres_database.rsplit("/", 1)[1]
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        response = await http.get("/healthz/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("down: ")
