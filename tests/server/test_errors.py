"""Bad input: 400 ``invalid_request`` naming the field and what is allowed, 413
``request_too_large`` for oversized bodies and messages; never a 500, never a credit."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest

from moa.store import Store
from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment
from tests.server.helpers import PAIR, USER, blend_body, error_of

SEVEN = [f"fake/m{i}" for i in range(7)]
# (body, words the message must contain: the field, then what is allowed)
BAD_BLENDS: dict[str, tuple[dict[str, Any], list[str]]] = {
    "unknown strategy": (blend_body(strategy="nope"), ["strategy", "consensus", "self_moa"]),
    "one model for consensus": (blend_body("fake/alpha"), ["models", "2-6"]),
    "two models for self_moa": (blend_body(strategy="self_moa"), ["models", "exactly 1"]),
    "seven models": (blend_body(*SEVEN), ["models", "2-6", "7"]),
    "zero layers": (blend_body(strategy="moa", layers=0), ["layers", "1"]),
    "four layers": (blend_body(strategy="moa", layers=4), ["layers", "3"]),
    "one sample": (blend_body("fake/alpha", strategy="self_moa", samples=1), ["samples", "2"]),
    "nine samples": (blend_body("fake/alpha", strategy="self_moa", samples=9), ["samples", "8"]),
    "temperature 3": (blend_body(temperature=3), ["temperature", "2"]),
    "no messages": ({"models": PAIR, "messages": []}, ["messages", "at least 1"]),
    "a robot role": (
        {"models": PAIR, "messages": [{"role": "robot", "content": "hi"}]},
        ["role", "'system'", "'user'", "'assistant'"],
    ),
    "no user message": (
        {"models": PAIR, "messages": [{"role": "system", "content": "Be brief."}]},
        ["messages", "user"],
    ),
    "a model id without a slash": (
        blend_body("alpha", "fake/beta"),
        ["models", "'alpha'", "provider/model"],
    ),
    "an unknown provider": (blend_body("nope/alpha", "fake/beta"), ["'nope'", "fake"]),
    "an unknown synthesizer provider": (
        blend_body(synthesizer="nope/chair"),
        ["'nope'", "fake"],
    ),
    "an unknown body field": (blend_body(colour="red"), ["colour", "unknown field"]),
}
RAW_BODIES: dict[str, tuple[bytes, list[str]]] = {
    "a body that is not JSON": (b'{"models": ["fake/alpha",', ["body", "JSON"]),
    "a JSON body that is not an object": (
        b'["fake/alpha", "fake/beta"]',
        ["body", "object"],
    ),
}


@pytest.fixture
async def small_limits(deploy: Callable[..., Awaitable[Deployment]]) -> AsyncIterator[Deployment]:
    yield await deploy(server={"max_body_bytes": 2048, "max_message_chars": 1000})


@pytest.mark.parametrize("body, words", BAD_BLENDS.values(), ids=BAD_BLENDS.keys())
async def test_a_bad_blend_is_an_invalid_request_naming_the_field_and_what_is_allowed(
    client: httpx.AsyncClient, body: dict[str, Any], words: list[str]
) -> None:
    response = await client.post("/api/v1/blend", json=body)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert all(word in error["message"] for word in words), error["message"]


@pytest.mark.parametrize(
    "raw, words",
    [
        pytest.param(*RAW_BODIES["a body that is not JSON"], id="not JSON"),
        pytest.param(
            *RAW_BODIES["a JSON body that is not an object"],
            id="not an object",
        ),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_an_invalid_request_naming_the_body(
    client: httpx.AsyncClient, raw: bytes, words: list[str]
) -> None:
    response = await client.post(
        "/api/v1/blend", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert all(word in error["message"] for word in words), error["message"]


async def test_an_unknown_provider_is_reported_with_the_field_that_names_it(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body(synthesizer="nope/chair"))
    assert response.status_code == 400
    assert "synthesizer" in error_of(response)["message"]


async def test_an_unknown_provider_is_told_every_provider_it_could_use(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/blend", json=blend_body("nope/alpha", "fake/beta"))
    message = error_of(response)["message"]
    assert all(name in message for name in ("openrouter", "groq", "together", "fake"))
    assert "ollama" not in message, "keyless built-ins are not offered to clients"


async def test_no_bad_request_takes_a_credit_or_reaches_a_provider(
    client: httpx.AsyncClient, store: Store, key_id: str, upstream: ScriptedUpstream
) -> None:
    statuses = {
        (await client.post("/api/v1/blend", json=body)).status_code
        for body, _ in BAD_BLENDS.values()
    }
    for raw, _ in RAW_BODIES.values():
        response = await client.post(
            "/api/v1/blend", content=raw, headers={"Content-Type": "application/json"}
        )
        statuses.add(response.status_code)
    assert statuses == {400}
    assert await store.balance(key_id) == 100
    assert upstream.requests == []


async def test_a_body_over_max_body_bytes_is_too_large(small_limits: Deployment) -> None:
    body = {"models": PAIR, "messages": [{"role": "user", "content": "x" * 900}] * 3}
    response = await small_limits.client.post("/api/v1/blend", json=body)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert "2048" in error["message"]


async def test_a_chunked_body_over_max_body_bytes_is_too_large(small_limits: Deployment) -> None:
    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"models": ["fake/alpha", "fake/beta"], "messages": [{"role": "user", "content": "'
        for _ in range(10):
            yield b"x" * 500
        yield b'"}]}'

    response = await small_limits.client.post(
        "/api/v1/blend", content=chunked(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)["code"] == "request_too_large"


async def test_a_message_over_max_message_chars_is_too_large(small_limits: Deployment) -> None:
    body = {"models": PAIR, "messages": [{"role": "user", "content": "x" * 1001}]}
    response = await small_limits.client.post("/api/v1/blend", json=body)
    assert response.status_code == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert "messages[0]" in error["message"]
    assert "1000" in error["message"]


async def test_a_too_large_request_takes_no_credit(
    small_limits: Deployment, upstream: ScriptedUpstream
) -> None:
    over_body = {"models": PAIR, "messages": [{"role": "user", "content": "x" * 3000}]}
    over_message = {"models": PAIR, "messages": [{"role": "user", "content": "x" * 1001}]}
    for body in (over_body, over_message):
        assert (await small_limits.client.post("/api/v1/blend", json=body)).status_code == 413
    assert await small_limits.balance() == 100
    assert upstream.requests == []


async def test_a_request_within_the_limits_is_served(small_limits: Deployment) -> None:
    body = {"models": PAIR, "messages": [{"role": "user", "content": "x" * 1000}]}
    response = await small_limits.client.post("/api/v1/blend", json=body)
    assert response.status_code == 200


async def test_an_unknown_route_is_a_json_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/nothing-here")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_a_wrong_method_is_a_json_405(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/blend")
    assert response.status_code == 405
    assert error_of(response)["code"] == "method_not_allowed"


async def test_a_bad_chat_request_is_an_invalid_request_too(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/chat", json={"model": "alpha", "messages": USER})
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "model" in error["message"]
    assert "provider/model" in error["message"]
