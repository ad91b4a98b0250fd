"""Each strategy knows the calls it plans: billing charges a share of them when a blend
stops early, and the docs promise what one request can cost. The plan must be what the
strategy really calls."""

from __future__ import annotations

from typing import Any

import pytest

from moa.engine import blend
from moa.runtime import Runtime
from moa.strategies import get_strategy
from moa.testing import ScriptedUpstream
from tests.helpers import request

COUNCIL_JSON = (
    '{"final_answer": "Paris.", "agreement_points": [], "disagreement_points": [], '
    '"follow_up_questions": []}'
)


@pytest.mark.parametrize(
    ("strategy", "models", "extra"),
    [
        ("consensus", 3, {}),
        ("council", 3, {}),
        ("best_of", 2, {}),
        ("chain", 3, {}),
        ("moa", 3, {"layers": 2}),
        ("self_moa", 1, {"samples": 5}),
        ("vote", 1, {"samples": 4}),
        ("vote", 3, {}),
    ],
)
async def test_a_strategy_plans_exactly_the_calls_it_makes(
    upstream: ScriptedUpstream,
    runtime: Runtime,
    strategy: str,
    models: int,
    extra: dict[str, Any],
) -> None:
    upstream.script("judge", content=COUNCIL_JSON if strategy == "council" else "PICK: 1\nParis.")
    sources = [f"fake/m{i}" for i in range(models)]
    req = request(*sources, strategy=strategy, synthesizer="fake/judge", **extra)
    await blend(req, runtime)
    assert len(upstream.requests) == get_strategy(req.strategy).planned_calls(req)
