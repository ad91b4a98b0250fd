"""What every paid route does before work starts: size checks, model checks, the key's
own limits (its allowed models, its USD budget), then the credit reservation. Bad input
and a key over its limits are rejected here, before a single credit moves."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from fastapi import Request

from moa.catalogue import CatalogueEntry, catalogue
from moa.config import CreditCosts, Settings
from moa.errors import MoaError
from moa.routing.tenant import TENANT
from moa.server.billing import Charge
from moa.server.errors import ApiError
from moa.server.request_scope import request_context
from moa.server.state import AppState, app_state
from moa.store import ApiKey
from moa.store.key_limits import allows
from moa.strategies import get_strategy
from moa.types import (
    BlendRequest,
    ChatRequest,
    CompareRequest,
    Conversation,
    JudgeRequest,
    Message,
)


def check_message_sizes(messages: Sequence[Message], limit: int) -> None:
    for index, message in enumerate(messages):
        if len(message.content) > limit:
            raise ApiError(
                413,
                "request_too_large",
                f"messages[{index}].content has {len(message.content)} characters; "
                f"the limit is {limit}",
            )


NamedModels = Sequence[tuple[str, str]]


def blend_models(body: BlendRequest, prefix: str = "") -> list[tuple[str, str]]:
    """Every model id of a blend, with the field that names it."""
    named: list[tuple[str, str]] = []
    fields = [(f"models[{i}]", spec) for i, spec in enumerate(body.sources)]
    fields.append(("synthesizer", body.synthesizer_spec))
    for field, spec in fields:
        named.append((prefix + field, spec.model))
        named += [(f"{prefix}{field}.fallback[{j}]", m) for j, m in enumerate(spec.fallback)]
    return named


def listed(field: str, models: Sequence[str]) -> list[tuple[str, str]]:
    return [(f"{field}[{i}]", model) for i, model in enumerate(models)]


def check_models(state: AppState, models: NamedModels) -> None:
    """Each id must name a usable provider; the error says which field held it."""
    for field, model in models:
        try:
            state.runtime.check_models([model])
        except MoaError as exc:
            raise ApiError(400, exc.code, f"{field}: {exc.message}") from exc


def check_allowed(key: ApiKey, models: NamedModels) -> None:
    """A key with an allow-list may name only those models: sources, synthesizer, judge and
    every fallback alike."""
    for field, model in models:
        if not allows(key.models, model):
            raise ApiError(
                403,
                "model_not_allowed",
                f"{field}: this key may not use {model!r}; it may use "
                + ", ".join(key.models or ()),
            )


@dataclass(frozen=True)
class Usable:
    """What the model lists show a key: a list shows nothing a request would refuse."""

    models: list[CatalogueEntry]
    presets: list[str]
    strategies: bool  # ``moa/<strategy>`` blends ``[defaults] models``: all allowed?


def usable(key: ApiKey, settings: Settings) -> Usable:
    """The catalogue's models, the presets (all of their models) and the default blends
    this key may name."""

    def allowed(models: Sequence[str | None]) -> bool:
        return all(allows(key.models, m) for m in models if m is not None)

    return Usable(
        models=[e for e in catalogue(settings) if allows(key.models, e.id)],
        presets=[n for n, p in settings.presets.items() if allowed([*p.models, p.synthesizer])],
        strategies=allowed(settings.defaults.models),
    )


def check_budget(key: ApiKey) -> None:
    """A key with a USD budget is refused once its usage records add up to it (the sum is
    kept on the key's row, read when it authenticated: no query here)."""
    if key.budget_usd is not None and key.spent_usd >= key.budget_usd:
        raise ApiError(
            402,
            "budget_exceeded",
            f"this key has spent ${key.spent_usd:.4f} of its ${key.budget_usd:.4f} budget; "
            "ask an administrator to raise it",
        )


async def admit(
    request: Request,
    key: ApiKey,
    body: Conversation | BlendRequest,
    *,
    route: str,
    cost: int,
    models: NamedModels,
    planned_calls: int,
    strategy: str | None = None,
    field_prefix: str = "",
) -> Charge:
    """Check the request (message sizes, timeouts against the floor, models, the key's
    limits), take one of the key's in-flight slots, then reserve its credits. The Charge
    settles them later; the request's scope releases the slot and settles whatever the
    response did not (a client gone before the stream began, say)."""
    state = app_state(request)
    context = request_context(request)
    check_message_sizes(body.messages, state.settings.server.max_message_chars)
    state.runtime.check_timeouts(body, field_prefix)
    check_models(state, models)
    check_allowed(key, models)
    check_budget(key)
    context.cleanups.append(state.inflight.acquire(key.id))
    TENANT.set(key.id)  # the router shares slots and judges breakers per key
    charge = Charge(
        store=state.store,
        metrics=state.metrics,
        key=key,
        route=route,
        cost=cost,
        planned_calls=planned_calls,
        strategy=strategy,
        models=list(dict.fromkeys(model for _, model in models)),
        drain=state.drain,
        spent=state.keys.forget,
        request_id=context.id,
    )
    await charge.reserve()

    async def settle_unfinished() -> None:
        if not charge.settled:
            await charge.settle(charge.partial_charge(), "cancelled")
        context.credits_charged = charge.charged

    context.cleanups.append(settle_unfinished)
    return charge


def _price(request: Request) -> CreditCosts:
    return app_state(request).settings.server.credits


async def admit_blend(
    request: Request, key: ApiKey, body: BlendRequest, *, route: str, field_prefix: str = ""
) -> Charge:
    """``admit`` for a blend, from /api/v1/blend or a compatible endpoint (fields in
    ``moa``)."""
    return await admit(
        request,
        key,
        body,
        route=route,
        cost=_price(request).blend,
        models=blend_models(body, prefix=field_prefix),
        planned_calls=get_strategy(body.strategy).planned_calls(
            app_state(request).runtime.local_defaults(body)
        ),
        strategy=body.strategy,
        field_prefix=field_prefix,
    )


async def admit_chat(
    request: Request,
    key: ApiKey,
    body: ChatRequest,
    *,
    route: str,
    fallback_field: str = "routing.fallback",
) -> Charge:
    """``admit`` for one model with its failover route (chat, or a compatible endpoint's
    plain ``provider/model``)."""
    models = [("model", body.model), *listed(fallback_field, body.routing.fallback)]
    return await admit(
        request, key, body, route=route, cost=_price(request).chat, models=models, planned_calls=1
    )


async def admit_compare(
    request: Request, key: ApiKey, body: CompareRequest, *, route: str
) -> Charge:
    models = listed("models", body.models)
    cost, planned = _price(request).compare, len(body.models)
    return await admit(
        request, key, body, route=route, cost=cost, models=models, planned_calls=planned
    )


async def admit_judge(request: Request, key: ApiKey, body: JudgeRequest, *, route: str) -> Charge:
    models = [*listed("contestants", body.contestants), ("judge", body.judge)]
    cost, planned = _price(request).judge, len(body.contestants) + 1
    return await admit(
        request, key, body, route=route, cost=cost, models=models, planned_calls=planned
    )
