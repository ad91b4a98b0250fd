"""Run every (system, task) pair through the engine with bounded concurrency, and score it.

Strategies run as blends (``moa.engine.stream_blend``); a model alone is one routed call.
Both go through the one ``Runtime`` the caller passes, so retries, breakers, provider
slots and usage work exactly as in a blend anywhere else. Pairs are taken task by task
(every system's answer to task 1, then task 2, ...), so a partial run covers every system
evenly. Each new answer is cached before it is reported; a failed call is recorded as a
wrong answer with its error, and never cached.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from itertools import product

from pydantic import BaseModel

from moa.engine import stream_blend
from moa.eval.cache import AnswerCache, Reply
from moa.eval.plan import EvalPlan, System, task_key
from moa.eval.scoring import score
from moa.eval.tasks import Task
from moa.providers.base import elapsed_ms
from moa.runtime import Runtime
from moa.sources import Sources
from moa.strategies.base import SourcePlan
from moa.types import (
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    SourceEvent,
    SourceSpec,
    Usage,
)


class AnswerRecord(Reply):
    """One system's scored answer to one task: a line of answers.jsonl."""

    task_id: str
    system: str
    expected: str
    extracted: str
    correct: bool
    cached: bool = False


class EvalRun(BaseModel):
    """Every answer, in system order then task order."""

    systems: list[str]
    task_count: int
    answers: list[AnswerRecord]


OnAnswer = Callable[[AnswerRecord], None]


async def run_eval(
    tasks: Sequence[Task],
    plan: EvalPlan,
    runtime: Runtime,
    *,
    cache: AnswerCache | None = None,
    on_answer: OnAnswer | None = None,
) -> EvalRun:
    """Answer every task with every system of ``plan``; failures are answers too."""
    plan.check()
    await runtime.prepare_models(plan.models_called())
    systems = plan.systems()
    known = {s.name: await cache.load(s.fingerprint(plan)) if cache else {} for s in systems}
    pairs: asyncio.Queue[tuple[Task, System]] = asyncio.Queue()
    for pair in product(tasks, systems):
        pairs.put_nowait(pair)
    session = _Session(plan, runtime, cache, known)

    async def worker() -> None:
        while not pairs.empty():
            record = await session.answer(*pairs.get_nowait())
            if on_answer is not None:
                on_answer(record)

    async with asyncio.TaskGroup() as group:
        for _ in range(min(plan.concurrency, pairs.qsize())):
            group.create_task(worker())
    order = {s.name: i for i, s in enumerate(systems)}
    position = {t.id: i for i, t in enumerate(tasks)}
    answers = sorted(session.answers, key=lambda a: (order[a.system], position[a.task_id]))
    return EvalRun(systems=[s.name for s in systems], task_count=len(tasks), answers=answers)


class _Session:
    """One eval run's shared state: what is cached, and the answers so far."""

    def __init__(
        self,
        plan: EvalPlan,
        runtime: Runtime,
        cache: AnswerCache | None,
        known: dict[str, dict[str, Reply]],
    ) -> None:
        self.plan, self.runtime, self.cache, self.known = plan, runtime, cache, known
        self.answers: list[AnswerRecord] = []

    async def answer(self, task: Task, system: System) -> AnswerRecord:
        key = task_key(task)
        reply = self.known[system.name].get(key)
        cached = reply is not None
        if reply is None:
            reply = await self._ask(task, system)
            if reply.error is None and self.cache is not None:
                await self.cache.put(system.fingerprint(self.plan), key, reply)
        record = _record(task, system, reply, cached)
        self.answers.append(record)
        return record

    async def _ask(self, task: Task, system: System) -> Reply:
        request = system.request(self.plan, task)
        if request is None:
            return await answer_alone(system.name, task, self.plan, self.runtime)
        return await answer_blended(request, self.runtime)


def _record(task: Task, system: System, reply: Reply, cached: bool) -> AnswerRecord:
    scored = score(task, reply.content) if reply.error is None else None
    return AnswerRecord(
        **reply.model_dump(),
        task_id=task.id,
        system=system.name,
        expected=task.answer,
        extracted=scored.extracted if scored else "",
        correct=scored.correct if scored else False,
        cached=cached,
    )


async def answer_alone(model: str, task: Task, plan: EvalPlan, runtime: Runtime) -> Reply:
    """One model, one routed call: the baseline a blend has to beat."""
    started = time.perf_counter()
    sources = Sources(runtime, emit=lambda event: None)
    options = sources.options(
        task.messages, temperature=plan.temperature, max_tokens=plan.max_tokens, seed=plan.seed
    )
    source = SourcePlan(0, SourceSpec(model=model), tuple(task.messages), plan.temperature)
    called = await sources.call(source, 0, options, report=False)
    if not called.answered:
        error = f"provider_error: {called.error}"
        return Reply(error=error, usage=sources.usage, latency_ms=elapsed_ms(started))
    return Reply(content=called.text, usage=sources.usage, latency_ms=elapsed_ms(started))


async def answer_blended(request: BlendRequest, runtime: Runtime) -> Reply:
    """One blend through the engine; its text, usage, tally and degradation. A failed
    blend reports no usage, so its calls are counted from its source events."""
    started = time.perf_counter()
    parts: list[str] = []
    calls = 0
    async for event in stream_blend(request, runtime):
        if isinstance(event, SourceEvent) and event.status != "skipped":
            calls += 1
        elif isinstance(event, ChunkEvent):
            parts.append(event.content)
        elif isinstance(event, DoneEvent):
            return Reply(
                content="".join(parts),
                usage=event.usage,
                latency_ms=elapsed_ms(started),
                vote=event.vote,
                degraded=event.degraded,
            )
        elif isinstance(event, ErrorEvent):
            error = f"{event.code}: {event.message}"
            return Reply(error=error, usage=Usage(calls=calls), latency_ms=elapsed_ms(started))
    return Reply(error="internal_error: the blend ended without an answer")
