"""judge: 2-4 contestants answer, then a judge that is not one of them scores each 0-10.

Contestants are shown to the judge by number only. Its JSON verdict is parsed robustly
(fences, prose), repaired once if needed; ranks follow the scores (ties share a rank) and
the winner is the top score, whatever the judge's own "winner" field claims.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

from pydantic import BaseModel

from moa import prompts
from moa.errors import ProviderError, RequestFailed
from moa.json_reply import extract_json_object
from moa.modes.running import each_model, run_mode
from moa.providers.base import elapsed_ms
from moa.references import Reference
from moa.runtime import Runtime
from moa.sources import Sources
from moa.strategies.base import synthesis_messages
from moa.types import (
    Event,
    JudgeAnswer,
    JudgeRequest,
    Message,
    ModelResult,
    Score,
    SourceSpec,
    Verdict,
    new_request_id,
)


def parse_verdict(text: str, contestants: Sequence[ModelResult]) -> Verdict | None:
    data = extract_json_object(text)
    if data is None or not isinstance(data.get("scores"), list):
        return None
    scored: dict[str, tuple[float, str]] = {}
    for entry in data["scores"]:
        number = _int(entry.get("contestant")) if isinstance(entry, dict) else None
        if number is None or not 1 <= number <= len(contestants):
            continue
        score = _float(entry.get("score"))
        if score is None:
            continue
        scored[contestants[number - 1].model] = (
            min(10.0, max(0.0, score)),
            str(entry.get("reason", "")),
        )
    if len(scored) != len(contestants):
        return None
    ordered = sorted(scored.items(), key=lambda kv: -kv[1][0])
    scores = [
        Score(
            model=model,
            score=score,
            reason=reason,
            rank=1 + sum(1 for _, (other, _) in ordered if other > score),
        )
        for model, (score, reason) in ordered
    ]
    return Verdict(scores=scores, winner=scores[0].model, summary=str(data.get("summary", "")))


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _float(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


async def run_judge(
    request: JudgeRequest, runtime: Runtime, *, request_id: str | None = None
) -> AsyncIterator[Event | BaseModel]:
    started = time.perf_counter()

    async def work(sources: Sources) -> JudgeAnswer:
        options = sources.options(
            request.messages, temperature=request.temperature, max_tokens=request.max_tokens
        )
        plans = each_model(request.contestants, request)
        called = await asyncio.gather(*(sources.call(plan, 0, options) for plan in plans))
        answers = [c.model_result() for c in called]
        ok = [a for a in answers if a.status == "ok"]
        if len(ok) < 2:
            raise RequestFailed(
                "fewer than two contestants answered; nothing to judge: "
                + "; ".join(f"{a.model}: {a.error}" for a in answers if a.error)
            )
        return JudgeAnswer(
            id=request_id or new_request_id(),
            answers=answers,
            verdict=await _verdict(request, sources, ok),
            judge=request.judge,
            usage=sources.usage,
            latency_ms=elapsed_ms(started),
        )

    models = [*request.contestants, request.judge]
    async for event in run_mode(work, runtime, models, request.timeout_s):
        yield event


async def _verdict(request: JudgeRequest, sources: Sources, ok: list[ModelResult]) -> Verdict:
    """The judge's verdict on the answers, numbered; one repair if it does not parse."""
    references = [Reference(f"contestant {n}", a.content or "") for n, a in enumerate(ok, 1)]
    messages: list[Message] = synthesis_messages(prompts.JUDGE, references, request.messages)
    judge = SourceSpec(model=request.judge)
    for attempt in range(2):
        options = sources.options(
            messages, synthesis=True, temperature=0.0, max_tokens=request.max_tokens
        )
        try:
            routed = await sources.runtime.router.complete(judge, options, layer=-1)
        except ProviderError as exc:
            raise RequestFailed(f"the judge failed: {exc}", code="synthesis_failed") from exc
        sources.spent(request.judge, routed.usage)
        verdict = parse_verdict(routed.text, ok)
        if verdict is not None:
            return verdict
        if attempt == 0:
            repair = prompts.JUDGE_REPAIR.format(count=len(ok)) + routed.text
            messages = [Message(role="user", content=repair)]
    raise RequestFailed(
        "the judge did not return a valid verdict, even after one repair attempt",
        code="synthesis_failed",
    )
