"""Question 6: tokens/s of the embedded model (``local/smollm2``) through moa versus
llama-cpp-python called directly, in this process and with no server running.

Same GGUF (found as moa finds it), same n_ctx and threads, same prompt and max_tokens,
temperature 0 so both generate the same tokens. Each side is loaded and warmed once, then
the two alternate, so drift in the machine's load hits both alike. Tokens are counted the
same way on both sides: one streamed chunk per token.
"""

from __future__ import annotations

import gc
import time
from typing import Any

from bench.plan import Plan
from bench.stats import summary
from moa.config import EngineConfig, settings_from_dict
from moa.modes.chat import run_chat
from moa.providers.local import smollm2_path
from moa.runtime import Runtime
from moa.types import ChatAnswer, ChatRequest

PROMPT = "Explain in a few paragraphs how a bicycle stays upright while it moves."


def _direct_once(llama: Any, max_tokens: int) -> tuple[int, float, str]:
    started = time.perf_counter()
    parts: list[str] = []
    for chunk in llama.create_chat_completion(
        messages=[{"role": "user", "content": PROMPT}],
        temperature=0.0,
        max_tokens=max_tokens,
        stream=True,
    ):
        delta = chunk["choices"][0].get("delta", {}).get("content")
        if delta:
            parts.append(delta)
    return len(parts), time.perf_counter() - started, "".join(parts)


async def _moa_once(runtime: Runtime, max_tokens: int) -> tuple[int, float, str]:
    request = ChatRequest.model_validate(
        {
            "model": "local/smollm2",
            "messages": [{"role": "user", "content": PROMPT}],
            "temperature": 0.0,
            "max_tokens": max_tokens,
        }
    )
    started = time.perf_counter()
    async for event in run_chat(request, runtime):
        if isinstance(event, ChatAnswer):
            elapsed = time.perf_counter() - started
            return event.usage.completion_tokens, elapsed, event.content
    raise RuntimeError("run_chat ended without an answer")


async def run(plan: Plan) -> dict[str, Any]:
    from llama_cpp import Llama

    path = smollm2_path()
    engine = EngineConfig()  # moa's defaults: the direct side runs as moa's contexts do
    llama = Llama(
        model_path=str(path),
        n_ctx=engine.local_context_tokens,
        n_threads=engine.local_threads,
        n_threads_batch=engine.local_threads,
        verbose=False,
    )
    runtime = Runtime(settings_from_dict({}))
    rates: dict[str, list[float]] = {"moa": [], "direct": []}
    texts: dict[str, str] = {}
    tokens: dict[str, int] = {}
    try:
        _direct_once(llama, plan.local_max_tokens)  # warm: first call pays allocation
        await _moa_once(runtime, plan.local_max_tokens)  # warm: loads moa's own Llama
        for _ in range(plan.local_reps):
            for side in ("moa", "direct"):
                if side == "moa":
                    count, seconds, text = await _moa_once(runtime, plan.local_max_tokens)
                else:
                    count, seconds, text = _direct_once(llama, plan.local_max_tokens)
                rates[side].append(count / seconds)
                texts[side], tokens[side] = text, count
    finally:
        await runtime.aclose()
        del llama
        gc.collect()
    moa, direct = summary(rates["moa"], 2), summary(rates["direct"], 2)
    ratio = round(moa["mean"] / direct["mean"], 4)
    print(f"  local: moa {moa['mean']} tok/s, direct {direct['mean']} tok/s, ratio {ratio}")
    return {
        "model_path": str(path),
        "max_tokens": plan.local_max_tokens,
        "tokens_generated": tokens,
        "same_text": texts.get("moa") == texts.get("direct"),
        "moa_tokens_per_s": moa,
        "direct_tokens_per_s": direct,
        "ratio": ratio,
    }
