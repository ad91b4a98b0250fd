"""Routing: how one logical call reaches a model that answers.

For each model on a source's route (the model, then its fallbacks): skip it if its breaker
is open; otherwise call it under a concurrency slot with a deadline covering its retries;
retry retryable failures with exponential backoff and full jitter, honouring Retry-After,
while the retry budget allows. Route events report every attempt. Streams are retried and
failed over only before their first delta, so a user never sees text twice.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal

from moa.config import EngineConfig
from moa.errors import RETRYABLE_STATUSES, CircuitOpen, ProviderError
from moa.providers.base import ChatCall, Completion, Provider
from moa.providers.registry import ProviderRegistry
from moa.routing.breaker import Breakers, MemoryBreakers
from moa.routing.budget import RetryBudget
from moa.types import Message, RouteEvent, SourceSpec


@dataclass(frozen=True, slots=True)
class CallOptions:
    messages: Sequence[Message]
    temperature: float | None
    max_tokens: int | None
    timeout_s: float
    response_format: dict[str, Any] | None = None  # OpenAI's shape; see ChatCall
    seed: int | None = None


@dataclass(frozen=True, slots=True)
class Routed:
    """A finished call and the model id (as the request named it) that produced it."""

    model: str
    completion: Completion


RouteListener = Callable[[RouteEvent], None]
RouteStatus = Literal["trying", "failed", "skipped", "success"]


class Router:
    def __init__(
        self,
        registry: ProviderRegistry,
        config: EngineConfig,
        breakers: Breakers | None = None,
        provider_caps: dict[str, int] | None = None,
    ) -> None:
        self._registry = registry
        self._config = config
        self.breakers: Breakers = breakers or MemoryBreakers(
            config.breaker_failures, config.breaker_cooldown_s
        )
        self._budget = RetryBudget(config.retry_budget_ratio)
        self._inflight = asyncio.Semaphore(config.max_inflight)
        self._provider_caps = provider_caps or {}
        self._provider_slots: dict[str, asyncio.Semaphore] = {}

    @asynccontextmanager
    async def _slot(self, provider: Provider) -> AsyncIterator[None]:
        """Hold one global and one per-provider slot: bursts queue instead of piling up."""
        slots = self._provider_slots.get(provider.name)
        if slots is None:
            cap = self._provider_caps.get(provider.name, self._config.provider_inflight)
            slots = self._provider_slots[provider.name] = asyncio.Semaphore(cap)
        async with self._inflight, slots:
            yield

    async def complete(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> Routed:
        errors: list[ProviderError] = []
        async for model in self._route(spec, errors, on_route, layer):
            try:
                completion = await self._with_retries(model, options)
            except ProviderError as exc:
                errors.append(exc)
                _emit(on_route, spec, model, len(errors), "failed", layer, str(exc))
                continue
            _emit(on_route, spec, model, len(errors) + 1, "success", layer)
            return Routed(model, completion)
        raise _route_failed(spec, errors)

    async def stream(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> AsyncIterator[str | Routed]:
        errors: list[ProviderError] = []
        async for model in self._route(spec, errors, on_route, layer):
            provider, name = self._registry.resolve(model)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + options.timeout_s
            self._budget.on_attempt()
            for attempt in range(self._config.max_retries + 1):
                started = False
                try:
                    if attempt and not await self._backoff(errors[-1], attempt, deadline):
                        break
                    async with AsyncExitStack() as stack:
                        await stack.enter_async_context(self._slot(provider))
                        await stack.enter_async_context(asyncio.timeout_at(deadline))
                        call = _call(name, options, deadline - loop.time())
                        async for piece in provider.stream(call):
                            if isinstance(piece, Completion):
                                await self.breakers.record_success(model)
                                _emit(on_route, spec, model, len(errors) + 1, "success", layer)
                                yield Routed(model, piece)
                                return
                            started = True
                            yield piece
                except (ProviderError, TimeoutError) as exc:
                    error = _as_provider_error(exc, model, options.timeout_s)
                    errors.append(error)
                    await self._record_failure(model, error)
                    if started or not error.retryable:
                        break
            if started:
                raise errors[-1]
            _emit(on_route, spec, model, len(errors), "failed", layer, str(errors[-1]))
        raise _route_failed(spec, errors)

    async def _route(
        self,
        spec: SourceSpec,
        errors: list[ProviderError],
        on_route: RouteListener | None,
        layer: int,
    ) -> AsyncIterator[str]:
        """The models to try in order, skipping (and reporting) those whose breaker is open."""
        for model in (spec.model, *spec.fallback):
            if not await self.breakers.allow(model):
                errors.append(CircuitOpen(model))
                _emit(on_route, spec, model, len(errors), "skipped", layer, "circuit_open")
                continue
            _emit(on_route, spec, model, len(errors) + 1, "trying", layer)
            yield model

    async def _with_retries(self, model: str, options: CallOptions) -> Completion:
        provider, name = self._registry.resolve(model)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.timeout_s
        last: ProviderError | None = None
        self._budget.on_attempt()
        for attempt in range(self._config.max_retries + 1):
            if last is not None and not await self._backoff(last, attempt, deadline):
                break
            try:
                async with self._slot(provider), asyncio.timeout_at(deadline):
                    completion = await provider.complete(
                        _call(name, options, deadline - loop.time())
                    )
            except (ProviderError, TimeoutError) as exc:
                last = _as_provider_error(exc, model, options.timeout_s)
                await self._record_failure(model, last)
                if not last.retryable:
                    break
                continue
            await self.breakers.record_success(model)
            return completion
        assert last is not None
        raise last

    async def _backoff(self, error: ProviderError, attempt: int, deadline: float) -> bool:
        """Sleep before retry ``attempt``; False when the budget or the deadline forbids it."""
        if not error.retryable or not self._budget.try_spend():
            return False
        base = self._config.retry_backoff_s * 2 ** (attempt - 1)
        delay = random.uniform(0, min(self._config.retry_backoff_max_s, base))
        if error.retry_after is not None:
            delay = max(delay, error.retry_after)
        if asyncio.get_running_loop().time() + delay >= deadline:
            return False
        await asyncio.sleep(delay)
        return True

    async def _record_failure(self, model: str, error: ProviderError) -> None:
        """Only availability failures trip a breaker; a 400 or 401 is the caller's problem."""
        if error.status is None or error.status in RETRYABLE_STATUSES:
            await self.breakers.record_failure(model)


def _call(name: str, options: CallOptions, remaining_s: float) -> ChatCall:
    return ChatCall(
        model=name,
        messages=options.messages,
        temperature=options.temperature,
        max_tokens=options.max_tokens,
        timeout_s=max(0.001, remaining_s),
        response_format=options.response_format,
        seed=options.seed,
    )


def _as_provider_error(exc: Exception, model: str, timeout_s: float) -> ProviderError:
    if isinstance(exc, ProviderError):
        exc.model = exc.model or model
        return exc
    return ProviderError(f"timed out after {timeout_s:g} s", model=model, retryable=False)


def _route_failed(spec: SourceSpec, errors: list[ProviderError]) -> ProviderError:
    if len(errors) == 1:
        return errors[0]
    tried = "; ".join(f"{e.model}: {e}" for e in errors)
    last = errors[-1]
    return ProviderError(f"every route failed ({tried})", model=spec.model, status=last.status)


def _emit(
    listener: RouteListener | None,
    spec: SourceSpec,
    model: str,
    attempt: int,
    status: RouteStatus,
    layer: int,
    error: str | None = None,
) -> None:
    if listener is not None and spec.fallback:
        listener(
            RouteEvent(
                model=model,
                source=spec.model,
                layer=layer,
                attempt=attempt,
                status=status,
                error=error,
            )
        )
