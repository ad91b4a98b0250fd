"""The modes beside the blend: compare (side by side), chat (one model with failover) and
judge (contestants scored by a judge model)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from moa.testing import ScriptedUpstream
from tests.server.conftest import Deployment, sse_events
from tests.server.helpers import PAIR, USER, error_of

SHORT, LONG = "Paris.", "Paris is the capital and largest city of France."
FENCE = re.compile(r"<<<contestant (\d+) \w+>>>\n(.*?)\n<<<end of contestant", re.S)


def compare_body(*models: str, **fields: Any) -> dict[str, Any]:
    return {"models": list(models or PAIR), "messages": USER, **fields}


def judge_body(*contestants: str, judge: str = "fake/judge", **fields: Any) -> dict[str, Any]:
    return {"contestants": list(contestants or PAIR), "judge": judge, "messages": USER, **fields}


def scores_by_answer(scores: dict[str, float], wrap: str = "{}") -> Any:
    """A judge's ``reply``: score each contestant by its answer text, found in the fenced
    references of the judge's prompt, so the verdict does not depend on numbering."""

    def reply(body: dict[str, Any]) -> str:
        prompt = "\n".join(str(m["content"]) for m in body["messages"])
        numbered = {text: int(n) for n, text in FENCE.findall(prompt)}
        entries = [
            {"contestant": numbered[text], "score": score, "reason": f"{len(text)} chars"}
            for text, score in scores.items()
        ]
        verdict = json.dumps({"scores": entries, "winner": 1, "summary": "the longer is better"})
        return wrap.format(verdict)

    return reply


@pytest.fixture
def contestants(upstream: ScriptedUpstream) -> None:
    upstream.script("alpha", latency_ms=20, content=SHORT)
    upstream.script("beta", latency_ms=120, content=LONG)


# ---- compare ----------------------------------------------------------------------------


@pytest.mark.usefixtures("contestants")
async def test_compare_streams_each_models_answer_as_deltas(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/compare", json=compare_body(stream=True))
    deltas = [e for e in sse_events(response.text) if e.get("event") == "delta"]
    joined = {m: "".join(d["content"] for d in deltas if d["model"] == m) for m in PAIR}
    assert joined == {"fake/alpha": SHORT, "fake/beta": LONG}


@pytest.mark.usefixtures("contestants")
async def test_compare_names_the_fastest_and_the_longest_answer(
    client: httpx.AsyncClient,
) -> None:
    response = await client.post("/api/v1/compare", json=compare_body())
    assert response.status_code == 200
    summary = response.json()
    assert (summary["fastest"], summary["longest"]) == ("fake/alpha", "fake/beta")


@pytest.mark.usefixtures("contestants")
async def test_compare_streams_end_with_the_summary(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/compare", json=compare_body(stream=True))
    *_, done, end = sse_events(response.text)
    assert end == {"done": True}
    assert (done["event"], done["fastest"], done["longest"]) == ("done", "fake/alpha", "fake/beta")
    assert [r["content"] for r in done["results"]] == [SHORT, LONG]


@pytest.mark.parametrize("count", [1, 10])
async def test_compare_takes_two_to_nine_models(client: httpx.AsyncClient, count: int) -> None:
    models = [f"fake/m{i}" for i in range(count)]
    response = await client.post("/api/v1/compare", json=compare_body(*models))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "models" in error["message"]
    assert "2-9" in error["message"]


# ---- chat -------------------------------------------------------------------------------


async def test_chat_answers_with_one_model(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", content=LONG)
    response = await client.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    answer = response.json()
    assert (answer["model"], answer["content"]) == ("fake/alpha", LONG)
    assert [r.model for r in upstream.requests] == ["alpha"]


async def test_chat_falls_back_when_the_primary_model_fails(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("gamma", content=LONG)
    body = {"model": "fake/alpha", "routing": {"fallback": ["fake/gamma"]}, "messages": USER}
    response = await client.post("/api/v1/chat", json=body)
    assert response.status_code == 200
    assert (response.json()["model"], response.json()["content"]) == ("fake/gamma", LONG)


async def test_a_chat_stream_shows_the_failover_route(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    body = {
        "model": "fake/alpha",
        "routing": {"fallback": ["fake/gamma"]},
        "messages": USER,
        "stream": True,
    }
    events = sse_events((await client.post("/api/v1/chat", json=body)).text)
    routes = [(e["model"], e["status"]) for e in events if e.get("event") == "route"]
    assert routes == [
        ("fake/alpha", "trying"),
        ("fake/alpha", "failed"),
        ("fake/gamma", "trying"),
        ("fake/gamma", "success"),
    ]
    assert events[-2]["model"] == "fake/gamma"


async def test_a_chat_whose_every_route_fails_is_a_502(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=400)
    upstream.script("gamma", status=400)
    body = {"model": "fake/alpha", "routing": {"fallback": ["fake/gamma"]}, "messages": USER}
    response = await client.post("/api/v1/chat", json=body)
    assert response.status_code == 502
    assert error_of(response)["code"] == "all_sources_failed"


# ---- judge ------------------------------------------------------------------------------


@pytest.mark.usefixtures("contestants")
async def test_the_judges_verdict_scores_ranks_and_names_a_winner(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("judge", reply=scores_by_answer({SHORT: 4, LONG: 9}))
    response = await client.post("/api/v1/judge", json=judge_body())
    assert response.status_code == 200
    verdict = response.json()["verdict"]
    assert [(s["model"], s["score"], s["rank"]) for s in verdict["scores"]] == [
        ("fake/beta", 9, 1),
        ("fake/alpha", 4, 2),
    ]
    assert verdict["winner"] == "fake/beta"


@pytest.mark.usefixtures("contestants")
async def test_the_judge_answer_includes_every_contestants_answer(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("judge", reply=scores_by_answer({SHORT: 4, LONG: 9}))
    answer = (await client.post("/api/v1/judge", json=judge_body())).json()
    assert [(a["model"], a["content"]) for a in answer["answers"]] == [
        ("fake/alpha", SHORT),
        ("fake/beta", LONG),
    ]
    assert answer["judge"] == "fake/judge"


@pytest.mark.usefixtures("contestants")
async def test_a_verdict_in_a_code_fence_among_prose_still_parses(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    chatty = "Having read both carefully:\n```json\n{}\n```\nI hope this helps!"
    upstream.script("judge", reply=scores_by_answer({SHORT: 8, LONG: 2}, wrap=chatty))
    response = await client.post("/api/v1/judge", json=judge_body())
    assert response.status_code == 200
    assert response.json()["verdict"]["winner"] == "fake/alpha"


@pytest.mark.usefixtures("contestants")
async def test_the_winner_is_the_top_score_whatever_the_judge_claims(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    # the scripted verdict always claims contestant 1 (alpha) won
    upstream.script("judge", reply=scores_by_answer({SHORT: 1, LONG: 10}))
    response = await client.post("/api/v1/judge", json=judge_body())
    assert response.json()["verdict"]["winner"] == "fake/beta"


async def test_a_judge_that_is_also_a_contestant_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/v1/judge", json=judge_body(judge="fake/alpha"))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "judge" in error["message"]
    assert "fake/alpha" in error["message"]


@pytest.mark.parametrize("count", [1, 5])
async def test_a_judge_takes_two_to_four_contestants(client: httpx.AsyncClient, count: int) -> None:
    contestants = [f"fake/m{i}" for i in range(count)]
    response = await client.post("/api/v1/judge", json=judge_body(*contestants))
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert "contestants" in error["message"]
    assert "2-4" in error["message"]


async def test_a_json_chat_asks_the_upstream_for_a_whole_answer_and_a_stream_streams(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    body = {"model": "fake/alpha", "messages": USER}
    await client.post("/api/v1/chat", json=body)
    await client.post("/api/v1/chat", json={**body, "stream": True})
    assert [call.stream for call in upstream.calls("alpha")] == [False, True]


@pytest.mark.parametrize("route", ["/api/v1/chat", "/api/v1/compare", "/api/v1/judge"])
async def test_a_mode_timeout_below_the_floor_is_refused(
    deploy: Callable[..., Awaitable[Deployment]], upstream: ScriptedUpstream, route: str
) -> None:
    moa = await deploy(engine={"min_timeout_s": 1.0})
    bodies: dict[str, dict[str, Any]] = {
        "/api/v1/chat": {"model": "fake/alpha"},
        "/api/v1/compare": {"models": PAIR},
        "/api/v1/judge": {"contestants": PAIR, "judge": "fake/judge"},
    }
    response = await moa.client.post(
        route, json={**bodies[route], "messages": USER, "timeout_s": 0.01}
    )
    assert response.status_code == 400
    assert error_of(response)["message"].startswith("timeout_s: must be at least 1 s")
    assert upstream.requests == []


async def test_a_mode_past_its_deadline_is_504_timeout(
    client: httpx.AsyncClient, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", stall=True)
    response = await client.post(
        "/api/v1/chat", json={"model": "fake/alpha", "messages": USER, "timeout_s": 0.3}
    )
    assert response.status_code == 504
    assert error_of(response)["code"] == "timeout"
