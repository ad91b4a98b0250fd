"""moa: refinement layers where each model sees the OTHER models' previous answers."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from pydantic import ValidationError

from moa import prompts
from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest, LayerEvent
from tests.conftest import fake_settings
from tests.helpers import collect, done_of, request, system_text

MODELS = ("alpha", "beta", "gamma")
_MARK = re.compile(r"\b[a-z]+-L(\d)\b")

Reply = Callable[[dict[str, Any]], str]


class RefusedRequest(Exception):
    """Raised by a scripted reply: the upstream answers the call with HTTP 500."""


def layer_of(body: dict[str, Any]) -> int:
    """Layer 0 has no references; layer L sees answers marked ``-L{L-1}``."""
    marks = [int(n) for n in _MARK.findall(system_text(body["messages"]))]
    return max(marks) + 1 if marks else 0


def marked(name: str, failing_layers: frozenset[int] = frozenset()) -> Reply:
    """Answer ``name-L{layer}``, so every reference says whose answer it is and from when.

    The upstream has no request-dependent failure, so a failing layer raises here, which the
    upstream's server turns into an HTTP 500 for that call only.
    """

    def reply(body: dict[str, Any]) -> str:
        layer = layer_of(body)
        if layer in failing_layers:
            raise RefusedRequest(f"{name} refuses layer {layer}")
        return f"{name}-L{layer}"

    return reply


def script_marked(
    upstream: ScriptedUpstream, failing: dict[str, frozenset[int]] | None = None
) -> None:
    for name in MODELS:
        upstream.script(name, reply=marked(name, (failing or {}).get(name, frozenset())))


def moa_request(layers: int) -> BlendRequest:
    models = [f"fake/{m}" for m in MODELS]
    return request(*models, synthesizer="fake/judge", strategy="moa", layers=layers)


@pytest.fixture
async def no_retries(upstream: ScriptedUpstream) -> AsyncIterator[Runtime]:
    """A runtime that does not retry, so a refused call is made exactly once."""
    async with Runtime(fake_settings(upstream, engine={"max_retries": 0})) as rt:
        yield rt


async def test_two_layers_of_three_models_make_ten_calls(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    script_marked(upstream)
    answer = await blend(moa_request(layers=2), runtime)
    assert len(upstream.requests) == 10
    assert answer.usage.calls == 10
    assert sorted((s.model, s.layer) for s in answer.sources) == sorted(
        (f"fake/{m}", layer) for m in MODELS for layer in range(3)
    )


async def test_each_model_sees_only_the_other_models_previous_layer_answers(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    script_marked(upstream)
    await blend(moa_request(layers=2), runtime)
    for name in MODELS:
        calls = upstream.calls(name)
        assert [layer_of(c.body) for c in calls] == [0, 1, 2]
        for layer, call in enumerate(calls[1:], 1):
            system = system_text(call.messages)
            assert system.startswith(prompts.MOA_REFINE)
            seen = set(re.findall(r"\b[a-z]+-L\d\b", system))
            others = {f"{m}-L{layer - 1}" for m in MODELS if m != name}
            assert seen == others, f"{name} in layer {layer} saw {seen}"


async def test_the_synthesizer_combines_the_last_layers_answers(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    script_marked(upstream)
    await blend(moa_request(layers=2), runtime)
    (synthesis,) = upstream.calls("judge")
    system = system_text(synthesis.messages)
    assert system.startswith(prompts.MOA_AGGREGATE)
    assert set(re.findall(r"\b[a-z]+-L\d\b", system)) == {"alpha-L2", "beta-L2", "gamma-L2"}


async def test_layer_events_count_the_successes_of_each_layer(
    upstream: ScriptedUpstream, no_retries: Runtime
) -> None:
    script_marked(upstream, {"gamma": frozenset({1})})
    events = await collect(moa_request(layers=2), no_retries)
    layers = [(e.layer, e.successes) for e in events if isinstance(e, LayerEvent)]
    assert layers == [(0, 3), (1, 2), (2, 3)]
    assert done_of(events).early_stopped is False


async def test_a_layer_where_every_call_fails_stops_early(
    upstream: ScriptedUpstream, no_retries: Runtime
) -> None:
    script_marked(upstream, {name: frozenset({1}) for name in MODELS})
    events = await collect(moa_request(layers=2), no_retries)
    assert done_of(events).early_stopped is True
    layers = [(e.layer, e.successes) for e in events if isinstance(e, LayerEvent)]
    assert layers == [(0, 3), (1, 0)]
    assert [layer_of(c.body) for c in upstream.calls("alpha")] == [0, 1], "no layer 2 after it"


async def test_after_an_early_stop_the_synthesizer_combines_the_previous_layer(
    upstream: ScriptedUpstream, no_retries: Runtime
) -> None:
    script_marked(upstream, {name: frozenset({1}) for name in MODELS})
    answer = await blend(moa_request(layers=2), no_retries)
    (synthesis,) = upstream.calls("judge")
    system = system_text(synthesis.messages)
    assert set(re.findall(r"\b[a-z]+-L\d\b", system)) == {"alpha-L0", "beta-L0", "gamma-L0"}
    assert answer.content


@pytest.mark.parametrize("layers", [0, 4])
def test_layers_outside_one_to_three_are_rejected_naming_the_field(layers: int) -> None:
    with pytest.raises(ValidationError, match="layers"):
        moa_request(layers=layers)
