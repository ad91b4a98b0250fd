"""What a strategy is: which calls each layer makes, and how the answers are combined.

A strategy builds messages and decides; it never speaks HTTP. The engine hands it a
``Synthesizer`` whose calls go through the routing layer and whose streamed text becomes
chunk events, so the same strategy code serves the CLI, SSE and JSON alike.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from moa.references import Reference, fence
from moa.types import BlendRequest, CouncilResult, Message, SourceSpec, StrategyName, VoteResult


@dataclass(frozen=True, slots=True)
class SourcePlan:
    """One source call: which model (with fallbacks), what to send, at which temperature."""

    index: int
    spec: SourceSpec
    messages: tuple[Message, ...]
    temperature: float
    sample: int | None = None


@dataclass(frozen=True, slots=True)
class Answer:
    """A source's successful answer; ``index`` is its position in the layer's plan and
    ``spec`` the route it was planned with (``model`` is who answered on that route)."""

    index: int
    model: str
    text: str
    spec: SourceSpec
    sample: int | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    content: str
    council: CouncilResult | None = None
    best_of_pick: str | None = None
    vote: VoteResult | None = None


DeltaFilter = Callable[[str], str]


class Synthesizer(Protocol):
    """The engine's synthesizer calls, as a strategy sees them."""

    async def complete(
        self, messages: Sequence[Message], *, response_format: dict[str, Any] | None = None
    ) -> str:
        """A whole answer, not shown to the user (an intermediate step); with
        ``response_format`` (OpenAI's shape) the provider is asked for structured output."""
        ...

    async def stream(self, messages: Sequence[Message], shown: DeltaFilter | None = None) -> str:
        """Stream the answer to the user as chunks (through ``shown`` if given); return it."""
        ...

    def show(self, text: str) -> None:
        """Send text to the user as a chunk without a model call."""
        ...


class Strategy(ABC):
    name: ClassVar[StrategyName]
    # False for a strategy that decides without a model call (vote): the engine then names
    # the rule, ``moa/<strategy>``, as the synthesis model, and plans no synthesizer call.
    calls_synthesizer: ClassVar[bool] = True

    def first_layer(self, request: BlendRequest) -> list[SourcePlan]:
        """Layer 0: every model answers the user's messages as they are."""
        messages = tuple(request.messages)
        return [
            SourcePlan(index=i, spec=spec, messages=messages, temperature=request.temperature)
            for i, spec in enumerate(request.sources)
        ]

    def refinement_layers(self, request: BlendRequest) -> int:
        return 0

    def synthesis_calls(self, request: BlendRequest) -> int:
        """Synthesizer calls when every source answers and nothing needs repair."""
        return 1 if self.calls_synthesizer else 0

    def planned_calls(self, request: BlendRequest) -> int:
        """Every upstream call the blend plans: what a partial charge is a share of, and
        what the docs promise one request can cost."""
        layers = self.refinement_layers(request) + 1
        return request.source_count * layers + self.synthesis_calls(request)

    def refine(
        self, request: BlendRequest, layer: int, previous: Sequence[Answer]
    ) -> list[SourcePlan]:
        raise NotImplementedError(f"{self.name} has no refinement layers")

    @abstractmethod
    async def synthesize(
        self, request: BlendRequest, answers: Sequence[Answer], synth: Synthesizer
    ) -> Outcome:
        """Combine the final layer's answers into the answer the user sees."""


def numbered(answers: Sequence[Answer]) -> list[Reference]:
    """Answers labelled by position only: the synthesizer judges text, not model names."""
    return [Reference(label=f"answer {n}", text=a.text) for n, a in enumerate(answers, 1)]


def synthesis_messages(
    instructions: str, references: Sequence[Reference], conversation: Sequence[Message]
) -> list[Message]:
    """System message with the instructions and fenced references, then the conversation."""
    system = f"{instructions}\n\n{fence(references)}"
    return [Message(role="system", content=system), *conversation]


def with_system(system: str, conversation: Sequence[Message]) -> tuple[Message, ...]:
    """Put moa's system text first, keeping any system message the user sent after it."""
    return (Message(role="system", content=system), *conversation)
