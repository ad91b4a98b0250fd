"""Routing: how one logical call reaches a model that answers.

For each model on a source's route (the model, then its fallbacks): skip it if its breaker
is open; otherwise call it under a concurrency slot with a deadline that covers the wait
for the slot and every retry; retry retryable failures with exponential backoff and full
jitter, honouring Retry-After, while the retry budget allows. Route events report every
model tried. Streams are retried and failed over only before their first delta, so a user
never sees text twice. Whole calls and streams share one attempt loop (``_attempts``).

A breaker hears one verdict per routed call (not per attempt), and only when the upstream
caused the failure: a request's own short timeout, a wait for a local slot, or a 400 says
nothing about the model's health, and must not let one key take a model away from others.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from dataclasses import replace
from typing import Literal

from moa.config import EngineConfig
from moa.errors import CircuitOpen, ProviderError
from moa.providers.base import CallOptions, ChatCall, Completion, Provider
from moa.providers.registry import ProviderRegistry
from moa.routing.breaker import Breakers, MemoryBreakers
from moa.routing.budget import RetryBudget
from moa.routing.slots import NoSlot, Slots
from moa.routing.tenant import current_tenant
from moa.types import RouteEvent, SourceSpec

# The provider's own timeout is set this much past the router's deadline, so the router's
# deadline always fires first and the router alone decides whose fault a timeout was.
_PROVIDER_TIMEOUT_SLACK_S = 1.0


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
            config.breaker_failures, config.breaker_cooldown_s, keys=config.breaker_keys
        )
        self._budget = RetryBudget(config.retry_budget_ratio)
        self._slots = Slots(
            config.max_inflight,
            config.provider_inflight,
            provider_caps or {},
            config.key_provider_share,
        )

    async def complete(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> Completion:
        """The whole answer of the first model on the route that gives one."""
        async with aclosing(self._routed(spec, options, on_route, layer, whole=True)) as pieces:
            async for piece in pieces:
                if isinstance(piece, Completion):
                    return piece
        raise AssertionError("a route ends with an answer or an error")

    def stream(
        self,
        spec: SourceSpec,
        options: CallOptions,
        *,
        on_route: RouteListener | None = None,
        layer: int = 0,
    ) -> AsyncGenerator[str | Completion, None]:
        """Text deltas as they arrive, then the ``Completion`` (its ``model`` the id, as
        the request named it, of the model on the route that answered)."""
        return self._routed(spec, options, on_route, layer, whole=False)

    async def _routed(
        self,
        spec: SourceSpec,
        options: CallOptions,
        on_route: RouteListener | None,
        layer: int,
        *,
        whole: bool,
    ) -> AsyncGenerator[str | Completion, None]:
        errors: list[ProviderError] = []
        for model in (spec.model, *spec.fallback):
            if not await self.breakers.allow(model):
                errors.append(CircuitOpen(model))
                _emit(on_route, spec, model, len(errors), "skipped", layer, "circuit_open")
                continue
            _emit(on_route, spec, model, len(errors) + 1, "trying", layer)
            started = False
            try:
                async with aclosing(self._attempts(model, options, whole=whole)) as pieces:
                    async for piece in pieces:
                        if isinstance(piece, Completion):
                            _emit(on_route, spec, model, len(errors) + 1, "success", layer)
                            yield replace(piece, model=model)
                            return
                        started = True
                        yield piece
            except ProviderError as exc:
                errors.append(exc)
                if started:  # text reached the user: failing over would repeat it
                    raise
                _emit(on_route, spec, model, len(errors), "failed", layer, str(exc))
        raise _route_failed(spec, errors)

    async def _attempts(
        self, model: str, options: CallOptions, *, whole: bool
    ) -> AsyncGenerator[str | Completion, None]:
        """One model: attempts until one answers, retrying only before the first delta.
        The breaker hears the outcome once."""
        provider, name = self._registry.resolve(model)
        if provider.runs_locally and not options.requested:
            # This machine's CPU, shared with whatever else runs on it: a remote API's
            # timeout would cut the embedded model's calls on a busy machine.
            options = replace(options, timeout_s=self._config.local_timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + options.timeout_s
        self._budget.on_attempt()
        last: ProviderError | None = None
        for attempt in range(self._config.max_retries + 1):
            if last is not None and not await self._backoff(last, attempt, deadline):
                break
            started = False
            try:
                attempt_pieces = self._attempt(provider, name, model, options, deadline, whole)
                async with aclosing(attempt_pieces) as pieces:
                    async for piece in pieces:
                        if isinstance(piece, Completion):
                            await self.breakers.record_success(model)
                            yield piece
                            return
                        started = True
                        yield piece
                raise ProviderError("the reply ended without an answer", model=model)
            except ProviderError as exc:
                last = exc
                if started or not exc.retryable:
                    break
            except BaseException:
                await self.breakers.release(model)  # cancelled: no verdict on the upstream
                raise
        assert last is not None
        await self._judge(model, last)
        raise last

    async def _attempt(
        self,
        provider: Provider,
        name: str,
        model: str,
        options: CallOptions,
        deadline: float,
        whole: bool,
    ) -> AsyncGenerator[str | Completion, None]:
        """One call under a slot. The deadline bounds each wait inside this generator (the
        slot, the call, each delta), never the consumer's own work between deltas."""
        final: Completion | None = None
        async with self._slot(provider, model, options, deadline):
            loop = asyncio.get_running_loop()
            call = options.to(name, deadline - loop.time() + _PROVIDER_TIMEOUT_SLACK_S)
            calling = _whole(provider, call) if whole else _closable(provider.stream(call))
            async with aclosing(calling) as pieces:
                while final is None:
                    try:
                        async with asyncio.timeout_at(deadline):
                            piece = await anext(pieces)
                    except StopAsyncIteration:
                        return
                    except TimeoutError as exc:
                        raise _timed_out(model, options) from exc
                    if isinstance(piece, Completion):
                        final = piece
                    else:
                        yield piece
        yield final  # after the slot is free: the caller may never resume this generator

    @asynccontextmanager
    async def _slot(
        self, provider: Provider, model: str, options: CallOptions, deadline: float
    ) -> AsyncIterator[None]:
        """The slots the call needs (see ``moa.routing.slots``). The wait counts against
        the call's deadline and is never the upstream's fault."""
        try:
            async with self._slots.hold(provider.name, current_tenant(), deadline):
                yield
        except NoSlot as exc:
            raise ProviderError(
                f"no free slot for provider {provider.name!r} within {options.timeout_s:g} s "
                + (
                    "(every context of the local model is busy, or this key holds its share "
                    "of them: [engine] local_pool_size, key_provider_share)"
                    if provider.runs_locally
                    else "(moa is at its in-flight cap, or this key at its share of the provider)"
                ),
                model=model,
                retryable=False,
                upstream_fault=False,
            ) from exc

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

    async def _judge(self, model: str, error: ProviderError) -> None:
        """Tell the breaker about a failed routed call, if the upstream caused it."""
        if error.upstream_fault:
            await self.breakers.record_failure(model, current_tenant())
        else:
            await self.breakers.release(model)


async def _whole(provider: Provider, call: ChatCall) -> AsyncGenerator[str | Completion, None]:
    yield await provider.complete(call)


async def _closable(
    pieces: AsyncIterator[str | Completion],
) -> AsyncGenerator[str | Completion, None]:
    """A provider's stream as a generator whose closing closes the stream (and its HTTP
    response) at once, not whenever the garbage collector gets to it."""
    try:
        async for piece in pieces:
            yield piece
    finally:
        close = getattr(pieces, "aclose", None)
        if close is not None:
            await close()


def _timed_out(model: str, options: CallOptions) -> ProviderError:
    return ProviderError(
        f"timed out after {options.timeout_s:g} s",
        model=model,
        retryable=False,
        upstream_fault=not options.shortened,
    )


def _route_failed(spec: SourceSpec, errors: list[ProviderError]) -> ProviderError:
    if len(errors) == 1:
        return errors[0]
    tried = "; ".join(f"{e.model}: {e}" for e in errors)
    last = errors[-1]
    return ProviderError(
        f"every route failed ({tried})",
        model=spec.model,
        status=last.status,
        upstream_fault=last.upstream_fault,
    )


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


def with_timeout(options: CallOptions, timeout_s: float | None, configured_s: float) -> CallOptions:
    """``options`` with a request's own timeout (or the configured one when it set none)."""
    chosen = configured_s if timeout_s is None else timeout_s
    return replace(
        options, timeout_s=chosen, shortened=chosen < configured_s, requested=timeout_s is not None
    )
