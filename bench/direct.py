"""The direct baseline: each strategy's fan-out and synthesis as the shortest asyncio
script, with the same HTTP client moa's OpenAI-compatible provider uses (``aiohttp``, one
connection pool per provider as moa has, plain JSON and SSE lines) straight to the upstream.

It does no auth, no credits, no SSE of its own, no events: moa / direct is what everything
moa adds costs on top of the same upstream calls.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp

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
        self._url = f"{base_url}/chat/completions"
        self._headers = {"Authorization": "Bearer x", "Content-Type": "application/json"}
        self._pools: dict[str, aiohttp.ClientSession] = {}

    def _pool(self, model: str) -> aiohttp.ClientSession:
        """One pool per provider (made on first use, inside the running loop)."""
        if model not in self._pools:
            connector = aiohttp.TCPConnector(limit=1000)
            self._pools[model] = aiohttp.ClientSession(connector=connector)
        return self._pools[model]

    async def aclose(self) -> None:
        for pool in self._pools.values():
            await pool.close()

    def _post(self, model: str, body: dict[str, Any]) -> Any:
        data = json.dumps(body).encode()
        return self._pool(model).post(self._url, data=data, headers=self._headers)

    async def _ask(self, model: str, messages: Any) -> str:
        body = {"model": model, "messages": messages, "temperature": 0.7}
        async with self._post(model, body) as response:
            reply = json.loads(await response.read())
        text: str = reply["choices"][0]["message"]["content"] or ""
        return text

    async def _layer(self, models: list[str], messages: list[Any], marks: list[float]) -> list[str]:
        async def one(i: int) -> str:
            text = await self._ask(models[i], messages[i])  # self_moa: one model, one pool
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
            draft = await self._ask(SYNTH, _with_references([draft, answer]))
        final = _with_references([draft] if plan.sequential else answers)
        first_chunk = await self._final(final, plan.final_streams, plan.first_shown_token)
        end = time.perf_counter()
        return Timing(min(marks) - started, first_chunk - started, end - started)

    async def _final(self, messages: Any, streams: bool, first_shown: int) -> float:
        """The final synthesizer call; returns when its first shown text arrived."""
        if not streams:
            await self._ask(SYNTH, messages)
            return time.perf_counter()
        first = 0.0
        tokens = 0
        body = {"model": SYNTH, "messages": messages, "temperature": 0.7, "stream": True}
        body["stream_options"] = {"include_usage": True}
        async with self._post(SYNTH, body) as response:
            async for line in response.content:  # read to the end, so the connection is reused
                if not line.startswith(b"data: {"):
                    continue
                chunk = json.loads(line[6:])
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    tokens += 1
                    if tokens > first_shown and not first:
                        first = time.perf_counter()
        return first or time.perf_counter()
