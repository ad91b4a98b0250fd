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

from moa import prompts
from moa.errors import BlendFailed, ProviderError
from moa.references import Reference
from moa.routing.router import CallOptions
from moa.runtime import Runtime
from moa.strategies.base import synthesis_messages
from moa.structured import extract_json_object
from moa.tally import Tally
from moa.types import (
    JudgeAnswer,
    JudgeRequest,
    Message,
    ModelResult,
    Score,
    SourceEvent,
    SourceSpec,
    TokenUsage,
    Verdict,
    new_request_id,
)

JudgeEvent = SourceEvent | JudgeAnswer


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
) -> AsyncIterator[JudgeEvent]:
    await runtime.prepare_models([*request.contestants, request.judge])
    started = time.perf_counter()
    tally = Tally(runtime.settings)
    options = CallOptions(
        messages=request.messages,
        temperature=request.temperature,
        max_tokens=request.max_tokens,
        timeout_s=runtime.settings.engine.source_timeout_s,
    )

    async def contest(model: str) -> ModelResult:
        t0 = time.perf_counter()
        try:
            routed = await runtime.router.complete(SourceSpec(model=model), options)
        except ProviderError as exc:
            tally.add(model, TokenUsage())
            return ModelResult(
                model=model,
                status="error",
                error=str(exc),
                latency_ms=int((time.perf_counter() - t0) * 1000),
            )
        tally.add(model, routed.completion.usage)
        return ModelResult(
            model=model,
            status="ok",
            content=routed.completion.text,
            latency_ms=int((time.perf_counter() - t0) * 1000),
            usage=routed.completion.usage,
        )

    answers = await asyncio.gather(*(contest(m) for m in request.contestants))
    for result in answers:
        yield SourceEvent(
            model=result.model,
            layer=0,
            status="complete" if result.status == "ok" else "failed",
            tokens=result.usage.completion_tokens,
            latency_ms=result.latency_ms,
            error=result.error,
        )
    ok = [a for a in answers if a.status == "ok"]
    if len(ok) < 2:
        raise BlendFailed(
            "fewer than two contestants answered; nothing to judge: "
            + "; ".join(f"{a.model}: {a.error}" for a in answers if a.error)
        )
    verdict = await _verdict(request, runtime, tally, ok)
    yield JudgeAnswer(
        id=request_id or new_request_id(),
        answers=list(answers),
        verdict=verdict,
        judge=request.judge,
        usage=tally.usage,
        latency_ms=int((time.perf_counter() - started) * 1000),
    )


async def _verdict(
    request: JudgeRequest, runtime: Runtime, tally: Tally, ok: list[ModelResult]
) -> Verdict:
    references = [Reference(f"contestant {n}", a.content or "") for n, a in enumerate(ok, 1)]
    messages: list[Message] = synthesis_messages(prompts.JUDGE, references, request.messages)
    options = CallOptions(
        messages=messages,
        temperature=0.0,
        max_tokens=request.max_tokens,
        timeout_s=runtime.settings.engine.synthesis_timeout_s,
    )
    for attempt in range(2):
        try:
            routed = await runtime.router.complete(SourceSpec(model=request.judge), options)
        except ProviderError as exc:
            raise BlendFailed(f"the judge failed: {exc}", code="synthesis_failed") from exc
        tally.add(request.judge, routed.completion.usage)
        verdict = parse_verdict(routed.completion.text, ok)
        if verdict is not None:
            return verdict
        if attempt == 0:
            repair = prompts.JUDGE_REPAIR.format(count=len(ok)) + routed.completion.text
            options = CallOptions(
                messages=[Message(role="user", content=repair)],
                temperature=0.0,
                max_tokens=request.max_tokens,
                timeout_s=options.timeout_s,
            )
    raise BlendFailed(
        "the judge did not return a valid verdict, even after one repair attempt",
        code="synthesis_failed",
    )
