"""The direct baseline: each strategy's fan-out and synthesis as the shortest asyncio
script, with the same HTTP client moa uses (``openai.AsyncOpenAI``, ``max_retries=0``,
one client per provider as moa has) straight to the upstream.

It does no auth, no credits, no SSE, no events: moa / direct is what everything moa adds
costs on top of the same upstream calls.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import openai

from bench.control import SOURCES, SYNTH
from bench.ideal import shape
from bench.load import Timing

QUESTION = "What is the capital of France?"


def _user() -> list[dict[str, str]]:
    return [{"role": "user", "content": QUESTION}]


def _with_references(answers: list[str]) -> list[dict[str, str]]:
    fenced = "\n\n".join(f"<answer {n}>\n{a}\n</answer {n}>" for n, a in enumerate(answers, 1))
    return [{"role": "system", "content": f"Combine these answers.\n\n{fenced}"}, *_user()]


class Direct:
    def __init__(self, base_url: str) -> None:
        self._sources = [
            openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0) for _ in SOURCES
        ]
        self._synth = openai.AsyncOpenAI(base_url=base_url, api_key="x", max_retries=0)

    async def aclose(self) -> None:
        for client in (*self._sources, self._synth):
            await client.close()

    async def _ask(self, client: openai.AsyncOpenAI, model: str, messages: Any) -> str:
        reply = await client.chat.completions.create(
            model=model, messages=messages, temperature=0.7
        )
        return reply.choices[0].message.content or ""

    async def _layer(self, models: list[str], messages: list[Any], marks: list[float]) -> list[str]:
        async def one(i: int) -> str:
            client = self._sources[SOURCES.index(models[i])]  # self_moa: one model, one pool
            text = await self._ask(client, models[i], messages[i])
            marks.append(time.perf_counter())
            return text

        return list(await asyncio.gather(*(one(i) for i in range(len(models)))))

    async def blend(self, strategy: str) -> Timing:
        """One blend of ``strategy``; times measured as the moa client measures them."""
        started = time.perf_counter()
        marks: list[float] = []
        models = [SOURCES[0]] * 3 if strategy == "self_moa" else list(SOURCES)
        plan = shape(strategy, len(models))
        answers = await self._layer(models, [_user()] * len(models), marks)
        for _ in range(plan.layers - 1):
            refs = [_with_references(answers[:i] + answers[i + 1 :]) for i in range(len(models))]
            answers = await self._layer(models, refs, marks)
        draft = answers[0]
        for answer in answers[1 : plan.sequential + 1]:
            draft = await self._ask(self._synth, SYNTH, _with_references([draft, answer]))
        final = _with_references([draft] if plan.sequential else answers)
        first_chunk = await self._final(final, plan.final_streams, plan.first_shown_token)
        end = time.perf_counter()
        return Timing(min(marks) - started, first_chunk - started, end - started)

    async def _final(self, messages: Any, streams: bool, first_shown: int) -> float:
        """The final synthesizer call; returns when its first shown text arrived."""
        if not streams:
            await self._ask(self._synth, SYNTH, messages)
            return time.perf_counter()
        first = 0.0
        stream = await self._synth.chat.completions.create(
            model=SYNTH,
            messages=messages,
            temperature=0.7,
            stream=True,
            stream_options={"include_usage": True},
        )
        tokens = 0
        async with stream:
            async for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    tokens += 1
                    if tokens > first_shown and not first:
                        first = time.perf_counter()
        return first or time.perf_counter()
