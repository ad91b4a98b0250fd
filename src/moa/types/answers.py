"""What moa answers: usage, each source's result, the blend's answer, and the answers of
chat, compare and judge."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from moa.types.ids import StrategyName


class TokenUsage(BaseModel):
    """Tokens one call used; added up for the whole blend."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0

    def __add__(self, other: TokenUsage) -> TokenUsage:
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
        )


class SourceResult(BaseModel):
    """One source's answer (or failure) in one layer."""

    model: str
    layer: int = 0
    status: Literal["ok", "error"]
    content: str | None = None
    error: str | None = None
    latency_ms: int = 0
    usage: TokenUsage = TokenUsage()
    sample: int | None = None


class SynthesisInfo(BaseModel):
    model: str
    latency_ms: int = 0
    usage: TokenUsage = TokenUsage()
    finish_reason: str | None = None  # of the call whose text is the answer ("length": cut)


class Usage(BaseModel):
    """Calls, tokens and dollars; a request's is the sum of its calls' (``+``)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float = 0.0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            calls=self.calls + other.calls,
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cost_usd=round(self.cost_usd + other.cost_usd, 8),
        )


class CouncilResult(BaseModel):
    """The council synthesizer's structured verdict. ``structured`` is false when the
    synthesizer never produced valid JSON: ``final_answer`` is then its plain text."""

    final_answer: str
    agreement_points: list[str] = []
    disagreement_points: list[str] = []
    follow_up_questions: list[str] = []
    structured: bool = True


class VoteResult(BaseModel):
    """The tally of a ``vote`` blend: the winning normalised answer, every answer's count
    (most votes first), and the winner's share of the answers counted."""

    answer: str
    votes: dict[str, int]
    agreement: float


class DegradedSource(BaseModel):
    """A source whose answer the final answer lacks, and why: ``failed`` (its calls
    failed), ``skipped`` (its breaker was open, no call made) or ``cut`` (a straggler cut
    by the quorum)."""

    model: str
    layer: int
    sample: int | None = None
    status: Literal["failed", "skipped", "cut"]
    error: str


class _AnswerFields(BaseModel):
    """What the answer object and the done event share (everything but content)."""

    id: str
    strategy: StrategyName
    council: CouncilResult | None = None
    best_of_pick: str | None = None
    vote: VoteResult | None = None
    sources: list[SourceResult]
    synthesis: SynthesisInfo
    usage: Usage
    early_stopped: bool = False
    degraded: bool = False
    degraded_sources: list[DegradedSource] = []
    credits_charged: int = 0
    credits_remaining: int | None = None
    latency_ms: int = 0


class BlendAnswer(_AnswerFields):
    """The non-streaming answer object."""

    content: str


class ChatAnswer(BaseModel):
    id: str
    model: str
    content: str
    usage: Usage
    latency_ms: int
    finish_reason: str | None = None
    credits_charged: int = 0
    credits_remaining: int | None = None


class ModelResult(BaseModel):
    """One model's answer in compare or judge."""

    model: str
    status: Literal["ok", "error"]
    content: str | None = None
    error: str | None = None
    latency_ms: int = 0
    first_token_ms: int | None = None
    usage: TokenUsage = TokenUsage()


class CompareAnswer(BaseModel):
    id: str
    results: list[ModelResult]
    fastest: str | None
    longest: str | None
    usage: Usage
    latency_ms: int
    credits_charged: int = 0
    credits_remaining: int | None = None


class Score(BaseModel):
    model: str
    score: float = Field(ge=0, le=10)
    rank: int
    reason: str = ""


class Verdict(BaseModel):
    scores: list[Score]
    winner: str
    summary: str = ""


class JudgeAnswer(BaseModel):
    id: str
    answers: list[ModelResult]
    verdict: Verdict
    judge: str
    usage: Usage
    latency_ms: int
    credits_charged: int = 0
    credits_remaining: int | None = None
