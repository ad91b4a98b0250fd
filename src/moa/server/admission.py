"""What every paid route does before work starts: size checks, model checks, then the
credit reservation. Bad input is rejected here, before a single credit moves."""

from __future__ import annotations

from collections.abc import Sequence

from moa.errors import MoaError
from moa.server.billing import Charge
from moa.server.errors import ApiError
from moa.server.state import AppState
from moa.store import ApiKey
from moa.types import Message


def check_message_sizes(messages: Sequence[Message], limit: int) -> None:
    for index, message in enumerate(messages):
        if len(message.content) > limit:
            raise ApiError(
                413,
                "request_too_large",
                f"messages[{index}].content has {len(message.content)} characters; "
                f"the limit is {limit}",
            )


def check_models(state: AppState, models: Sequence[str]) -> None:
    try:
        state.runtime.check_models(list(models))
    except MoaError as exc:
        raise ApiError(400, exc.code, exc.message) from exc


async def admit(
    state: AppState,
    key: ApiKey,
    *,
    route: str,
    cost: int,
    messages: Sequence[Message],
    models: Sequence[str],
    planned_calls: int,
    strategy: str | None = None,
) -> Charge:
    """Check the request, then reserve its credits; the Charge settles them later."""
    check_message_sizes(messages, state.settings.server.max_message_chars)
    check_models(state, models)
    charge = Charge(
        store=state.store,
        metrics=state.metrics,
        key=key,
        route=route,
        cost=cost,
        planned_calls=planned_calls,
        strategy=strategy,
        models=list(dict.fromkeys(models)),
    )
    await charge.reserve()
    return charge
