"""One log line per request: time, request id, key id (never the key), route, status,
latency and credits charged, whether the request succeeded, was refused or failed."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest

from moa.server.request_scope import JsonLines
from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import blend_body


def request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, object]]:
    """What each ``moa.requests`` record carries in its ``moa`` extra (set by the logger)."""
    return [r.__dict__["moa"] for r in caplog.records if r.name == "moa.requests"]


async def test_every_request_leaves_one_line_whatever_its_outcome(
    deploy: Callable[..., Awaitable[Deployment]],
    upstream: ScriptedUpstream,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="moa.requests")
    moa = await deploy(credits=4)
    ok = await moa.client.post("/api/v1/blend", json=blend_body())
    poor = await moa.client.post("/api/v1/blend", json=blend_body())
    async with httpx.AsyncClient(base_url=moa.url) as anonymous:
        refused = await anonymous.get("/api/v1/usage")
    await moa.store.top_up(moa.key_id, 4)
    upstream.set_default(status=500)
    failed = await moa.client.post("/api/v1/blend", json=blend_body())
    responses = [ok, poor, refused, failed]
    assert [r.status_code for r in responses] == [200, 402, 401, 502]
    lines = request_lines(caplog)  # other servers of this process may log too: match by id
    by_id = {line["request_id"]: line for line in lines}
    for response in responses:
        assert [line["request_id"] for line in lines].count(response.headers["x-request-id"]) == 1
        line = by_id[response.headers["x-request-id"]]
        assert line["status"] == response.status_code
        assert line["route"] == response.request.url.path
        assert isinstance(line["latency_ms"], float)
    assert by_id[ok.headers["x-request-id"]]["key_id"] == moa.key_id
    assert by_id[ok.headers["x-request-id"]]["credits_charged"] == 4
    assert by_id[failed.headers["x-request-id"]]["credits_charged"] == 0
    assert by_id[refused.headers["x-request-id"]]["key_id"] is None
    assert all(moa.key not in record.getMessage() for record in caplog.records)


async def test_the_answer_id_is_the_request_id_of_the_log_line(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="moa.requests")
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.json()["id"] == response.headers["x-request-id"]
    usage = (await client.get("/api/v1/usage")).json()
    assert usage["requests"][0]["request_id"] == response.headers["x-request-id"]


def test_json_log_lines_are_one_object_each() -> None:
    record = logging.LogRecord("moa.requests", logging.INFO, __file__, 1, "x", (), None)
    record.moa = {"request_id": "req_1", "status": 200}
    assert json.loads(JsonLines().format(record)) == {"request_id": "req_1", "status": 200}
    plain = logging.LogRecord("moa.server", logging.WARNING, __file__, 1, "slow %s", ("db",), None)
    assert json.loads(JsonLines().format(plain))["message"] == "slow db"
