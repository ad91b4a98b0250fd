"""A key's optional limits: the models it may name and the USD it may spend.

The allow-list holds model ids (``openai/gpt-4o``) or a whole provider (``openai/*``); a
key without one may name any model the server serves. The budget is compared with the
key's ``spent_usd`` (its usage records' cost, summed on its row as each is written) before
each request: a request that starts under the budget may end above it, and the next one
is refused.

The admin API (its request bodies) and ``moa keys`` (its options) both check their input
here, so both refuse the same things with the same words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

#: A model id or ``provider/*``: a provider name, a slash, then no whitespace.
MODEL_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}/(\*|\S{1,235})")
MAX_MODELS = 100
MAX_BUDGET_USD = 1_000_000_000.0


def check_models(models: Sequence[str], field: str = "models") -> tuple[str, ...]:
    """The allow-list as stored (duplicates dropped, order kept); ValueError naming the
    entry that is not a model id or ``provider/*``."""
    if not models:
        raise ValueError(f"{field}: give at least one model id, or leave the list out")
    if len(models) > MAX_MODELS:
        raise ValueError(f"{field}: at most {MAX_MODELS} entries, got {len(models)}")
    for index, model in enumerate(models):
        if not MODEL_PATTERN.fullmatch(model):
            raise ValueError(
                f"{field}[{index}]: {model[:80]!r} is not a model id (provider/model) or provider/*"
            )
    return tuple(dict.fromkeys(models))


def check_budget(budget_usd: float, field: str = "budget_usd") -> float:
    if not 0 <= budget_usd <= MAX_BUDGET_USD:
        raise ValueError(f"{field}: must be between 0 and {MAX_BUDGET_USD:g}, got {budget_usd}")
    return float(budget_usd)


def allows(allowed: Iterable[str] | None, model: str) -> bool:
    """May a key with this allow-list (None: no list) name ``model``?"""
    if allowed is None:
        return True
    provider = model.partition("/")[0]
    return any(entry in (model, f"{provider}/*") for entry in allowed)
