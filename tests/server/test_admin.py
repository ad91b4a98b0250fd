"""The admin API (docs/admin.md): off (404) without an admin token, 401 with a wrong one;
keys made through it work, are listed by prefix, topped up, changed and revoked; a key's
limits (its models, its USD budget) are enforced on every route before credits move.
Real servers on loopback, calling the scripted upstream."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from moa.config import Settings
from moa.store import Store
from moa.testing import ScriptedUpstream
from moa.testing.served import ServedApp
from tests.conftest import fake_settings
from tests.server.helpers import USER, blend_body, error_of
from tests.server.processes import eventually

TOKEN = "admin-token-for-tests-0123456789"
ROUTES = [
    ("POST", "/admin/v1/keys", {"name": "x", "credits": 1}),
    ("GET", "/admin/v1/keys", None),
    ("POST", "/admin/v1/keys/key_0123456789ab/credits", {"add": 1}),
    ("PATCH", "/admin/v1/keys/key_0123456789ab", {"budget_usd": 1}),
    ("DELETE", "/admin/v1/keys/key_0123456789ab", None),
]
# 1 USD per prompt token and per completion token: any request spends dollars.
PRICES = {
    model: {"input_usd_per_mtok": 1e6, "output_usd_per_mtok": 1e6}
    for model in ("fake/alpha", "fake/beta")
}


@dataclass
class Admin:
    """A server with an admin token, a client that sends it, and the server's database."""

    served: ServedApp
    http: httpx.AsyncClient
    store: Store

    async def create(self, **body: Any) -> dict[str, Any]:
        response = await self.http.post("/admin/v1/keys", json={"credits": 100, **body})
        assert response.status_code == 201, response.text
        created: dict[str, Any] = response.json()
        return created

    async def listed(self, key_id: str) -> dict[str, Any]:
        response = await self.http.get("/admin/v1/keys")
        assert response.status_code == 200, response.text
        [entry] = [e for e in response.json()["data"] if e["id"] == key_id]
        return dict(entry)

    def client(self, key: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.served.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )


@pytest.fixture
def admin_settings(upstream: ScriptedUpstream, database_url: str) -> Settings:
    return fake_settings(
        upstream, server={"database_url": database_url, "admin_token": TOKEN}, models=PRICES
    )


@pytest.fixture
async def admin(
    admin_settings: Settings, database_url: str, serve: Callable[[Settings], ServedApp]
) -> AsyncIterator[Admin]:
    served = serve(admin_settings)
    store = await Store.open(database_url)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=served.url, headers=headers, timeout=30) as http:
        yield Admin(served, http, store)
    await store.close()


async def _call(
    http: httpx.AsyncClient, method: str, path: str, body: Any, **headers: str
) -> httpx.Response:
    return await http.request(method, path, json=body, headers=headers)


# ---- the token ------------------------------------------------------------------------


@pytest.mark.parametrize("method, path, body", ROUTES)
async def test_every_admin_route_answers_404_while_no_admin_token_is_set(
    anonymous: httpx.AsyncClient, method: str, path: str, body: Any
) -> None:
    for sent in ("", "Bearer anything-at-all-that-is-long"):
        response = await _call(anonymous, method, path, body, authorization=sent)
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "not_found"


@pytest.mark.parametrize("method, path, body", ROUTES)
async def test_a_missing_or_wrong_admin_token_is_401_and_never_logged(
    admin: Admin, method: str, path: str, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="moa")
    api_key = (await admin.create(name="not an admin"))["key"]
    wrong = ["", "Bearer", f"Bearer {TOKEN}x", f"Bearer {TOKEN[:-1]}", f"Bearer {api_key}"]
    async with httpx.AsyncClient(base_url=admin.served.url, timeout=30) as anonymous:
        for sent in [*wrong, TOKEN, f"Basic {TOKEN}"]:
            response = await _call(anonymous, method, path, body, authorization=sent)
            assert response.status_code == 401, (sent, response.text)
            assert error_of(response)["code"] == "unauthorized"
            assert TOKEN not in response.text
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("moa"))
    assert TOKEN not in logged and api_key not in logged


@pytest.mark.parametrize("with_token", [False, True], ids=["no admin token", "token not sent"])
async def test_a_malformed_body_learns_nothing_before_the_token_is_checked(
    admin: Admin, anonymous: httpx.AsyncClient, with_token: bool
) -> None:
    url = admin.served.url if with_token else str(anonymous.base_url)
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        response = await http.post(
            "/admin/v1/keys", content=b"{bad", headers={"content-type": "application/json"}
        )
    assert response.status_code == (401 if with_token else 404), response.text


async def test_the_admin_token_is_not_an_api_key(admin: Admin) -> None:
    async with admin.client(TOKEN) as as_key:
        response = await as_key.get("/api/v1/usage")
    assert response.status_code == 401


# ---- create, list, top up, revoke -----------------------------------------------------


async def test_a_key_made_through_the_api_blends_and_is_listed_by_its_prefix_only(
    admin: Admin,
) -> None:
    created = await admin.create(name="team-a", credits=10)
    assert set(created) == {"id", "key", "name", "credits", "budget_usd", "models"}
    assert (created["name"], created["credits"], created["budget_usd"]) == ("team-a", 10, None)
    before = await admin.listed(created["id"])
    assert before["last_used_at"] is None
    async with admin.client(created["key"]) as http:
        response = await http.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200, response.text
    assert response.json()["credits_remaining"] == 6

    listing = await admin.http.get("/admin/v1/keys")
    assert created["key"] not in listing.text
    entry = await eventually(lambda: _used(admin, created["id"]), message="last use recorded")
    assert entry["prefix"] == created["key"][:12]
    assert (entry["credits"], entry["revoked"], entry["name"]) == (6, False, "team-a")
    assert entry["created_at"] <= entry["last_used_at"]
    assert entry["spent_usd"] > 0  # priced at a dollar a token


async def _used(admin: Admin, key_id: str) -> dict[str, Any] | None:
    entry = await admin.listed(key_id)
    return entry if entry["last_used_at"] is not None else None


async def test_a_top_up_is_what_the_key_then_spends(admin: Admin) -> None:
    created = await admin.create(credits=0)
    async with admin.client(created["key"]) as http:
        refused = await http.post("/api/v1/blend", json=blend_body())
        assert refused.status_code == 402 and error_of(refused)["code"] == "insufficient_credits"
        topped = await admin.http.post(f"/admin/v1/keys/{created['id']}/credits", json={"add": 5})
        assert topped.status_code == 200, topped.text
        assert topped.json() == {"id": created["id"], "credits": 5}
        served = await http.post("/api/v1/blend", json=blend_body())
    assert served.status_code == 200, served.text
    assert served.json()["credits_remaining"] == 1 == await admin.store.balance(created["id"])


async def test_a_revoked_key_is_refused_and_may_still_be_topped_up(admin: Admin) -> None:
    created = await admin.create(credits=3)
    path = f"/admin/v1/keys/{created['id']}"
    assert (await admin.http.delete(path)).status_code == 204
    assert (await admin.http.delete(path)).status_code == 204  # twice is fine
    async with admin.client(created["key"]) as http:
        assert (await http.get("/api/v1/usage")).status_code == 401
    topped = await admin.http.post(path + "/credits", json={"add": 2})
    assert topped.json() == {"id": created["id"], "credits": 5}
    assert (await admin.listed(created["id"]))["revoked"] is True


# ---- limits ---------------------------------------------------------------------------


async def test_a_key_that_spent_its_budget_is_refused_without_being_charged(
    admin: Admin,
) -> None:
    created = await admin.create(credits=100, budget_usd=0.5)
    async with admin.client(created["key"]) as http:
        first = await http.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
        assert first.status_code == 200, first.text  # spent 0 < 0.5 when it started
        balance = await admin.store.balance(created["id"])
        for _ in range(2):
            refused = await http.post(
                "/api/v1/chat", json={"model": "fake/alpha", "messages": USER}
            )
            assert refused.status_code == 402
            error = error_of(refused)
            assert error["code"] == "budget_exceeded" and "0.5000" in error["message"]
        assert await admin.store.balance(created["id"]) == balance
        assert len(await admin.store.recent_usage(created["id"])) == 1

        lifted = await admin.http.patch(
            f"/admin/v1/keys/{created['id']}", json={"budget_usd": None}
        )
        assert lifted.status_code == 200 and lifted.json()["budget_usd"] is None
        again = await http.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    assert again.status_code == 200, again.text


ALLOWED = ["fake/alpha", "fake/gamma"]
REFUSED: dict[str, tuple[str, dict[str, Any], str]] = {
    "blend source": ("/api/v1/blend", blend_body(), "models[1]"),
    "synthesizer": (
        "/api/v1/blend",
        blend_body("fake/alpha", "fake/gamma", synthesizer="fake/beta"),
        "synthesizer",
    ),
    "fallback": (
        "/api/v1/chat",
        {"model": "fake/alpha", "messages": USER, "routing": {"fallback": ["fake/beta"]}},
        "routing.fallback[0]",
    ),
    "compare": (
        "/api/v1/compare",
        {"models": ["fake/alpha", "fake/beta"], "messages": USER},
        "models[1]",
    ),
    "judge": (
        "/api/v1/judge",
        {"contestants": ["fake/alpha", "fake/gamma"], "judge": "fake/beta", "messages": USER},
        "judge",
    ),
    "openai": ("/v1/chat/completions", {"model": "fake/beta", "messages": USER}, "model"),
    "openai blend": (
        "/v1/chat/completions",
        {
            "model": "moa/consensus",
            "messages": USER,
            "moa": {"models": ["fake/alpha", "fake/beta"]},
        },
        "moa.models[1]",
    ),
}


@pytest.mark.parametrize("path, body, field", REFUSED.values(), ids=REFUSED.keys())
async def test_a_key_may_name_only_the_models_it_is_allowed(
    admin: Admin, path: str, body: dict[str, Any], field: str
) -> None:
    created = await admin.create(credits=100, models=ALLOWED)
    async with admin.client(created["key"]) as http:
        refused = await http.post(path, json=body)
        allowed = await http.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    assert refused.status_code == 403, refused.text
    error = error_of(refused)
    assert error["code"] == "model_not_allowed"
    assert error["message"].startswith(field) and "fake/beta" in error["message"]
    assert allowed.status_code == 200, allowed.text
    assert await admin.store.balance(created["id"]) == 99  # only the allowed chat paid


async def test_the_anthropic_route_refuses_a_model_in_its_own_shape(admin: Admin) -> None:
    created = await admin.create(credits=10, models=["fake/alpha"])
    body = {"model": "fake/beta", "max_tokens": 50, "messages": USER}
    async with admin.client(created["key"]) as http:
        refused = await http.post("/v1/messages", json=body)
    assert refused.status_code == 403
    assert refused.json()["error"]["type"] == "permission_error"
    assert refused.json()["error"]["code"] == "model_not_allowed"


async def test_a_whole_provider_may_be_allowed_and_the_list_lifted(admin: Admin) -> None:
    created = await admin.create(credits=100, models=["spare/*"])
    path = f"/admin/v1/keys/{created['id']}"
    async with admin.client(created["key"]) as http:
        spare = await http.post("/api/v1/chat", json={"model": "spare/beta", "messages": USER})
        fake = await http.post("/api/v1/chat", json={"model": "fake/beta", "messages": USER})
        changed = await admin.http.patch(path, json={"models": ["fake/beta", "fake/beta"]})
        now_fake = await http.post("/api/v1/chat", json={"model": "fake/beta", "messages": USER})
        lifted = await admin.http.patch(path, json={"models": None})
        now_spare = await http.post("/api/v1/chat", json={"model": "spare/beta", "messages": USER})
    assert (spare.status_code, fake.status_code) == (200, 403)
    assert changed.json()["models"] == ["fake/beta"]
    assert now_fake.status_code == 200
    assert lifted.json()["models"] is None and now_spare.status_code == 200


# ---- bad input ------------------------------------------------------------------------

BAD: dict[str, tuple[str, str, Any, str]] = {
    "negative credits": ("POST", "", {"credits": -1}, "credits"),
    "credits as text": ("POST", "", {"credits": "10"}, "credits"),
    "fractional credits": ("POST", "", {"credits": 1.5}, "credits"),
    "credits too many": ("POST", "", {"credits": 10**13}, "credits"),
    "no credits": ("POST", "", {"name": "x"}, "credits"),
    "long name": ("POST", "", {"credits": 1, "name": "n" * 201}, "name"),
    "unknown field": ("POST", "", {"credits": 1, "colour": "red"}, "colour"),
    "not a model": ("POST", "", {"credits": 1, "models": ["fake/a", "nope"]}, "models[1]"),
    "empty models": ("POST", "", {"credits": 1, "models": []}, "models"),
    "negative budget": ("POST", "", {"credits": 1, "budget_usd": -1}, "budget_usd"),
    "budget as a boolean": ("POST", "", {"credits": 1, "budget_usd": True}, "budget_usd"),
    "NUL in a name": ("POST", "", {"credits": 1, "name": "a\u0000b"}, "name"),
    "newline in a name": ("PATCH", "", {"name": "a\nb"}, "name"),
    "zero add": ("POST", "/credits", {"add": 0}, "add"),
    "add too many": ("POST", "/credits", {"add": 10**13}, "add"),
    "no add": ("POST", "/credits", {}, "add"),
    "empty change": ("PATCH", "", {}, "body"),
    "null name": ("PATCH", "", {"name": None}, "name"),
    "bad change": ("PATCH", "", {"models": ["a b/c"]}, "models[0]"),
}


@pytest.mark.parametrize("method, suffix, body, field", BAD.values(), ids=BAD.keys())
async def test_bad_input_is_a_400_naming_the_field(
    admin: Admin, method: str, suffix: str, body: Any, field: str
) -> None:
    target = "" if method == "POST" and not suffix else "/" + (await admin.create())["id"]
    response = await _call(admin.http, method, f"/admin/v1/keys{target}{suffix}", body)
    assert response.status_code == 400, response.text
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}:"), error["message"]


@pytest.mark.parametrize("raw", [b'{"credits": 1, "budget_usd": NaN}', b'{"credits": Infinity}'])
async def test_numbers_json_does_not_have_are_refused(admin: Admin, raw: bytes) -> None:
    response = await admin.http.post(
        "/admin/v1/keys", content=raw, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == "invalid_request"


@pytest.mark.parametrize("method, path, body", ROUTES[2:])
async def test_an_unknown_key_id_is_a_404(admin: Admin, method: str, path: str, body: Any) -> None:
    for key_id in ("key_0123456789ab", "key_<script>", "x" * 300):
        response = await _call(admin.http, method, path.replace("key_0123456789ab", key_id), body)
        assert response.status_code == 404, response.text
        assert error_of(response)["code"] == "not_found"
        assert "<script>" not in response.text


def test_the_openapi_document_has_the_admin_routes_with_their_errors(
    admin_settings: Settings,
) -> None:
    from moa.server.app import create_app

    paths = create_app(admin_settings).openapi()["paths"]
    operations = {
        ("post", "/admin/v1/keys"): "201",
        ("get", "/admin/v1/keys"): "200",
        ("post", "/admin/v1/keys/{id}/credits"): "200",
        ("patch", "/admin/v1/keys/{id}"): "200",
        ("delete", "/admin/v1/keys/{id}"): "204",
    }
    for (method, path), success in operations.items():
        responses = paths[path][method]["responses"]
        assert {success, "400", "401", "404"} <= set(responses), (method, path)
        assert "422" not in responses
    paid = paths["/api/v1/blend"]["post"]["responses"]
    assert "budget_exceeded" in paid["402"]["description"]
    assert "model_not_allowed" in paid["403"]["description"]


async def test_the_model_lists_show_a_key_only_what_it_may_use(admin: Admin) -> None:
    limited = await admin.create(models=["fake/alpha"])
    unlimited = await admin.create()
    seen = {}
    for name, created in (("limited", limited), ("unlimited", unlimited)):
        async with admin.client(created["key"]) as http:
            openai_ids = {m["id"] for m in (await http.get("/v1/models")).json()["data"]}
            api_ids = {m["id"] for m in (await http.get("/api/v1/models")).json()["models"]}
        seen[name] = (openai_ids & set(PRICES), api_ids & set(PRICES))
    assert seen["unlimited"] == ({"fake/alpha", "fake/beta"}, {"fake/alpha", "fake/beta"})
    assert seen["limited"] == ({"fake/alpha"}, {"fake/alpha"})


async def test_the_default_blends_are_listed_only_for_a_key_that_may_use_their_models(
    admin: Admin, admin_settings: Settings
) -> None:
    defaults = admin_settings.defaults.models
    allowed = await admin.create(models=list(defaults))
    other = await admin.create(models=["fake/none-of-the-defaults"])
    listed = {}
    for name, created in (("allowed", allowed), ("other", other)):
        async with admin.client(created["key"]) as http:
            ids = [m["id"] for m in (await http.get("/v1/models")).json()["data"]]
        listed[name] = {i for i in ids if i.startswith("moa/")}
    assert "moa/consensus" in listed["allowed"]
    assert listed["other"] == set()
