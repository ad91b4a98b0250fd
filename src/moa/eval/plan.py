"""What an eval runs: the systems (each ``-m`` model alone, then each strategy over the
models) and the settings every call shares. Checked before the first call, so a plan that
cannot run (self_moa over two models, seven models for vote) fails at once, by field."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from moa import prompts
from moa.errors import InvalidRequest
from moa.eval.tasks import Task
from moa.types import (
    MAX_MODELS,
    BlendRequest,
    MaxTokens,
    Message,
    Samples,
    StrategyName,
    Temperature,
    check_model_id,
)
from moa.validation import describe_errors

CACHE_FORMAT = 1


class EvalPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1, max_length=MAX_MODELS)
    strategies: list[StrategyName] = Field(default_factory=list, max_length=7)
    samples: Samples = 4
    synthesizer: str | None = None
    temperature: Temperature = 0.7
    max_tokens: MaxTokens | None = None
    seed: int = Field(0, ge=0, le=2**31 - 1)
    concurrency: int = Field(4, ge=1, le=64)

    @field_validator("models")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return [check_model_id(m) for m in value]

    @field_validator("synthesizer")
    @classmethod
    def _synth_id(cls, value: str | None) -> str | None:
        return None if value is None else check_model_id(value)

    def systems(self) -> list[System]:
        """Baselines first (each distinct model once), then each strategy once."""
        baselines = [System(m, None) for m in dict.fromkeys(self.models)]
        blends = [System(s, s) for s in dict.fromkeys(self.strategies)]
        return [*baselines, *blends]

    def check(self) -> None:
        """Build each strategy's request once, so a plan that cannot run fails now."""
        probe = Task(id="probe", messages=(Message(role="user", content="?"),), answer="?")
        for system in self.systems():
            system.request(self, probe)

    def models_called(self) -> list[str]:
        extra = [self.synthesizer] if self.synthesizer else []
        return list(dict.fromkeys([*self.models, *extra]))


@dataclass(frozen=True, slots=True)
class System:
    """One contestant: a model alone (``strategy`` None) or a strategy over the models."""

    name: str
    strategy: StrategyName | None

    def request(self, plan: EvalPlan, task: Task) -> BlendRequest | None:
        """The blend this system runs for ``task``; None for a model alone."""
        if self.strategy is None:
            return None
        fields: dict[str, Any] = {
            "models": plan.models,
            "strategy": self.strategy,
            "samples": plan.samples,
            "temperature": plan.temperature,
            "max_tokens": plan.max_tokens,
            "seed": plan.seed,
            "messages": list(task.messages),
        }
        if plan.synthesizer and self.strategy != "vote":  # vote calls no synthesizer
            fields["synthesizer"] = plan.synthesizer
        try:
            return BlendRequest.model_validate(fields)
        except ValidationError as exc:
            message = describe_errors(exc.errors())
            raise InvalidRequest(f"strategy {self.strategy}: {message}") from exc

    def fingerprint(self, plan: EvalPlan) -> str:
        """Everything that changes this system's answers; the answer cache is keyed by it."""
        uses_synth = self.strategy not in (None, "vote")
        identity = {
            "format": CACHE_FORMAT,
            "system": self.name,
            "models": plan.models if self.strategy else [self.name],
            "samples": plan.samples if self.strategy in ("self_moa", "vote") else None,
            "synthesizer": plan.synthesizer if uses_synth else None,
            "temperature": plan.temperature,
            "max_tokens": plan.max_tokens,
            "seed": plan.seed,
            "prompts": prompts_digest() if self.strategy else None,
        }
        return _digest(identity)


def task_key(task: Task) -> str:
    """A task's id plus a digest of what it asks, so an edited task is asked again."""
    return f"{task.id}:{_digest([m.model_dump() for m in task.messages])[:12]}"


def prompts_digest() -> str:
    """Changes whenever any prompt moa sends changes: cached blend answers go stale then."""
    texts = {name: value for name, value in vars(prompts).items() if name.isupper()}
    return _digest(texts)[:16]


def _digest(value: object) -> str:
    encoded = json.dumps(value, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.sha256(encoded).hexdigest()
