"""self_moa: one model sampled several times, each sample with its own temperature and focus."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from moa import prompts
from moa.engine import blend
from moa.runtime import Runtime
from moa.testing import ScriptedUpstream
from moa.types import BlendRequest
from tests.helpers import request, system_text


def self_moa_request(samples: int = 4, temperature: float = 0.7) -> BlendRequest:
    return request(
        "fake/alpha",
        synthesizer="fake/judge",
        strategy="self_moa",
        samples=samples,
        temperature=temperature,
    )


async def sample_temperatures(
    upstream: ScriptedUpstream, runtime: Runtime, *, samples: int, temperature: float
) -> list[float]:
    """The temperatures the upstream saw for the samples, lowest first."""
    await blend(self_moa_request(samples, temperature), runtime)
    temperatures = [c.temperature for c in upstream.calls("alpha")]
    assert all(t is not None for t in temperatures), "every sample must send a temperature"
    return sorted(t for t in temperatures if t is not None)


def test_self_moa_takes_exactly_one_model() -> None:
    with pytest.raises(ValidationError, match="models") as raised:
        request("fake/alpha", "fake/beta", strategy="self_moa")
    assert "exactly 1 model" in str(raised.value)


@pytest.mark.parametrize("samples", [1, 9])
def test_samples_outside_two_to_eight_are_rejected_naming_the_field(samples: int) -> None:
    with pytest.raises(ValidationError, match="samples"):
        self_moa_request(samples=samples)


async def test_four_samples_at_0_7_run_at_the_offset_temperatures(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    temperatures = await sample_temperatures(upstream, runtime, samples=4, temperature=0.7)
    assert temperatures == pytest.approx([0.45, 0.70, 0.95, 1.15])


async def test_each_sample_gets_its_agent_prompt_with_its_own_offset(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    await blend(self_moa_request(samples=4, temperature=0.7), runtime)
    seen = {system_text(c.messages): c.temperature for c in upstream.calls("alpha")}
    assert sorted(seen) == sorted(prompts.SELF_MOA_AGENTS[:4])
    for sample, agent in enumerate(prompts.SELF_MOA_AGENTS[:4]):
        assert seen[agent] == pytest.approx(0.7 + prompts.SELF_MOA_OFFSETS[sample]), agent


async def test_samples_beyond_six_reuse_the_agent_prompts_in_order(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    await blend(self_moa_request(samples=8), runtime)
    seen = sorted(system_text(c.messages) for c in upstream.calls("alpha"))
    agents = prompts.SELF_MOA_AGENTS
    assert seen == sorted([*agents, agents[0], agents[1]])


async def test_sample_temperatures_are_clamped_at_two(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    temperatures = await sample_temperatures(upstream, runtime, samples=4, temperature=1.9)
    assert temperatures == pytest.approx([1.65, 1.9, 2.0, 2.0])


async def test_sample_temperatures_are_clamped_at_zero(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    temperatures = await sample_temperatures(upstream, runtime, samples=2, temperature=0.1)
    assert temperatures == pytest.approx([0.0, 0.1])


async def test_every_sample_is_reported_as_a_source_with_its_sample_number(
    upstream: ScriptedUpstream, runtime: Runtime
) -> None:
    answer = await blend(self_moa_request(samples=3), runtime)
    assert sorted((s.model, s.sample, s.status) for s in answer.sources) == [
        ("fake/alpha", i, "ok") for i in range(3)
    ]
    assert answer.usage.calls == 4
