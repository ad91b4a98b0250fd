"""Authentication: ``Authorization: Bearer <key>`` on every /api and /v1 route, and nowhere
else; the key is never echoed back."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.server.helpers import blend_body, error_of

PUBLIC_ROUTES = ["/healthz", "/metrics", "/", "/openapi.json", "/docs"]
# The routes docs/api.md lists; the test below also picks up any route added later.
KNOWN_PRIVATE = {
    ("POST", "/api/v1/blend"),
    ("POST", "/api/v1/compare"),
    ("POST", "/api/v1/chat"),
    ("POST", "/api/v1/judge"),
    ("GET", "/api/v1/models"),
    ("GET", "/api/v1/usage"),
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/models"),
}


async def blend_with(served: ServedApp, headers: dict[str, str]) -> httpx.Response:
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as http:
        return await http.post("/api/v1/blend", json=blend_body())


async def private_routes(anonymous: httpx.AsyncClient) -> set[tuple[str, str]]:
    schema = (await anonymous.get("/openapi.json")).json()
    return {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith(("/api/", "/v1/"))
        for method in operations
    }


async def test_a_request_without_an_authorization_header_is_unauthorized(
    anonymous: httpx.AsyncClient,
) -> None:
    response = await anonymous.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


@pytest.mark.parametrize(
    "header",
    [
        pytest.param(lambda key: f"Basic {key}", id="basic"),
        pytest.param(lambda key: f"Token {key}", id="token"),
        pytest.param(lambda key: key, id="bare key"),
        pytest.param(lambda key: "Bearer", id="bearer without a key"),
    ],
)
async def test_a_key_sent_with_the_wrong_scheme_is_unauthorized(
    served: ServedApp, api_key: str, header: Callable[[str], str]
) -> None:
    response = await blend_with(served, {"Authorization": header(api_key)})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


async def test_an_unknown_key_is_unauthorized(served: ServedApp) -> None:
    response = await blend_with(served, {"Authorization": "Bearer moa_sk_not_a_real_key"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


async def test_a_revoked_key_is_unauthorized(
    served: ServedApp, store: Store, make_key: Callable[..., Any]
) -> None:
    key_id, plaintext = await make_key()
    await store.revoke(key_id)
    response = await blend_with(served, {"Authorization": f"Bearer {plaintext}"})
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"


async def test_an_unauthorized_request_never_reaches_a_provider(
    anonymous: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    await anonymous.post("/api/v1/blend", json=blend_body())
    assert upstream.requests == []


async def test_every_api_and_v1_route_needs_a_key(anonymous: httpx.AsyncClient) -> None:
    routes = await private_routes(anonymous)
    assert routes >= KNOWN_PRIVATE
    refused = {}
    for method, path in sorted(routes):
        response = await anonymous.request(method, path, json={})
        # moa's error shape, or Anthropic's on /v1/messages: both carry moa's code
        refused[(method, path)] = (response.status_code, response.json()["error"]["code"])
    assert refused == dict.fromkeys(routes, (401, "unauthorized"))


async def test_service_routes_answer_without_a_key(anonymous: httpx.AsyncClient) -> None:
    statuses = {path: (await anonymous.get(path)).status_code for path in PUBLIC_ROUTES}
    assert statuses == dict.fromkeys(PUBLIC_ROUTES, 200)


async def test_the_playground_is_an_html_page(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/")
    assert response.headers["content-type"].startswith("text/html")
    assert "<html" in response.text.lower()


async def test_the_key_never_appears_in_a_response(client: httpx.AsyncClient, api_key: str) -> None:
    responses = [
        await client.post("/api/v1/blend", json=blend_body()),
        await client.post("/api/v1/blend", json=blend_body(stream=True)),
        await client.post("/api/v1/blend", json=blend_body(strategy="nope")),
        await client.post("/api/v1/chat", json={"model": "fake/alpha", "messages": []}),
        await client.get("/api/v1/usage"),
        await client.get("/api/v1/models"),
        await client.get("/v1/models"),
        await client.post(
            "/v1/chat/completions",
            json={"model": "moa/consensus", "messages": [{"role": "user", "content": "hi"}]},
        ),
    ]
    for response in responses:
        assert api_key not in response.text, response.request.url
        assert all(api_key not in value for value in response.headers.values())


async def test_a_refused_key_is_not_echoed_in_the_error(served: ServedApp) -> None:
    presented = "moa_sk_guessed_0123456789abcdef"
    response = await blend_with(served, {"Authorization": f"Bearer {presented}"})
    assert presented not in response.text
    assert all(presented not in value for value in response.headers.values())
