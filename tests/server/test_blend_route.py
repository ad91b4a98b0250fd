"""POST /api/v1/blend without streaming: the answer object of docs/api.md."""

from __future__ import annotations

import httpx

from moa.store import Store
from moa.testing import ScriptedUpstream
from tests.server.helpers import (
    ANSWER_FIELDS,
    SOURCE_FIELDS,
    SYNTHESIS_FIELDS,
    USAGE_FIELDS,
    blend_body,
)


async def test_a_blend_answer_has_every_field_of_the_contract(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200
    answer = response.json()
    assert set(answer) >= ANSWER_FIELDS
    assert all(set(source) >= SOURCE_FIELDS for source in answer["sources"])
    assert set(answer["synthesis"]) >= SYNTHESIS_FIELDS
    assert set(answer["usage"]) >= USAGE_FIELDS


async def test_a_blend_answer_is_the_synthesizers_reply(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("synth", content="Paris, say both sources.")
    response = await client.post("/api/v1/blend", json=blend_body(synthesizer="fake/synth"))
    assert response.json()["content"] == "Paris, say both sources."


async def test_every_source_reports_its_own_answer(client: httpx.AsyncClient) -> None:
    answer = (await client.post("/api/v1/blend", json=blend_body())).json()
    by_model = {s["model"]: s for s in answer["sources"]}
    assert by_model["fake/alpha"]["status"] == "ok"
    assert by_model["fake/alpha"]["content"].startswith("[alpha] answer to:")
    assert by_model["fake/beta"]["content"].startswith("[beta] answer to:")
    assert {s["layer"] for s in answer["sources"]} == {0}


async def test_models_are_named_by_the_full_id_the_request_used(
    client: httpx.AsyncClient,
) -> None:
    answer = (await client.post("/api/v1/blend", json=blend_body())).json()
    assert sorted(s["model"] for s in answer["sources"]) == ["fake/alpha", "fake/beta"]
    assert answer["synthesis"]["model"] == "fake/alpha"


async def test_the_synthesizer_defaults_to_the_first_model(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    await client.post("/api/v1/blend", json=blend_body("fake/beta", "fake/alpha"))
    assert len(upstream.calls("beta")) == 2
    assert len(upstream.calls("alpha")) == 1


async def test_usage_counts_every_upstream_call_and_its_tokens(
    client: httpx.AsyncClient,
) -> None:
    answer = (await client.post("/api/v1/blend", json=blend_body())).json()
    parts = [*(s["usage"] for s in answer["sources"]), answer["synthesis"]["usage"]]
    assert answer["usage"]["calls"] == 3
    assert answer["usage"]["prompt_tokens"] == sum(p["prompt_tokens"] for p in parts) > 0
    assert answer["usage"]["completion_tokens"] == sum(p["completion_tokens"] for p in parts) > 0


async def test_a_blend_charges_four_credits(client: httpx.AsyncClient) -> None:
    answer = (await client.post("/api/v1/blend", json=blend_body())).json()
    assert answer["credits_charged"] == 4


async def test_the_answer_reports_the_balance_after_the_charge(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    first = (await client.post("/api/v1/blend", json=blend_body())).json()
    second = (await client.post("/api/v1/blend", json=blend_body())).json()
    assert (first["credits_remaining"], second["credits_remaining"]) == (96, 92)
    assert await store.balance(key_id) == 92


async def test_a_partly_failed_blend_answers_from_the_sources_that_worked(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", status=400, error_message="beta is down")
    response = await client.post("/api/v1/blend", json=blend_body())
    assert response.status_code == 200
    beta = next(s for s in response.json()["sources"] if s["model"] == "fake/beta")
    assert beta["status"] == "error"
    assert beta["error"] == "HTTP 400: the upstream rejected the request"
    assert beta["content"] is None


async def test_a_council_blend_returns_its_structured_verdict(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script(
        "chair",
        content='{"final_answer": "Paris.", "agreement_points": ["capital"], '
        '"disagreement_points": [], "follow_up_questions": ["Population?"]}',
    )
    body = blend_body(strategy="council", synthesizer="fake/chair")
    answer = (await client.post("/api/v1/blend", json=body)).json()
    assert answer["content"] == "Paris."
    assert answer["council"]["agreement_points"] == ["capital"]
    assert answer["council"]["follow_up_questions"] == ["Population?"]


async def test_a_moa_blend_calls_each_model_once_per_layer_plus_the_synthesis(
    client: httpx.AsyncClient,
) -> None:
    body = blend_body(strategy="moa", layers=2)
    answer = (await client.post("/api/v1/blend", json=body)).json()
    assert answer["usage"]["calls"] == 2 * (2 + 1) + 1
    assert sorted({s["layer"] for s in answer["sources"]}) == [0, 1, 2]


async def test_a_vote_blend_answers_with_its_tally_and_calls_no_synthesizer(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content="ANSWER: 4")
    upstream.script("beta", content="2 + 2 = 4\nANSWER: 4.0")
    response = await client.post("/api/v1/blend", json=blend_body(strategy="vote"))
    assert response.status_code == 200
    answer = response.json()
    assert answer["vote"] == {"answer": "4", "votes": {"4": 2}, "agreement": 1.0}
    assert answer["content"] == "ANSWER: 4"
    assert answer["synthesis"]["model"] == "moa/vote"
    assert answer["usage"]["calls"] == 2 and answer["credits_charged"] == 4
    assert (answer["degraded"], answer["degraded_sources"]) == (False, [])


async def test_a_blend_with_a_failed_source_says_it_is_degraded(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("beta", status=400, error_message="beta is gone")
    answer = (await client.post("/api/v1/blend", json=blend_body())).json()
    assert answer["degraded"] is True
    (missing,) = answer["degraded_sources"]
    assert missing["model"] == "fake/beta" and missing["status"] == "failed"
    assert set(missing) == {"model", "layer", "sample", "status", "error"}
