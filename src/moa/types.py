"""Request, answer and event models: the only place moa's public shapes live.

Everything that crosses a boundary (Python API, CLI ``--json``, HTTP JSON and SSE) is one of
these pydantic models, so the contract in DESIGN.md is written down exactly once.
"""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StringConstraints,
    field_validator,
    model_validator,
)

from moa.errors import MoaError

StrategyName = Literal["consensus", "council", "best_of", "chain", "moa", "self_moa", "vote"]
STRATEGIES: tuple[StrategyName, ...] = (
    "consensus",
    "council",
    "best_of",
    "chain",
    "moa",
    "self_moa",
    "vote",
)
Role = Literal["system", "user", "assistant"]


def new_request_id() -> str:
    """One id per request: the answer's ``id``, the usage record, the log line and the
    ``X-Request-ID`` header all carry it."""
    return f"req_{uuid.uuid4().hex[:24]}"


# Bounds said once, for every body, preset and plan that takes these fields.
Layers = Annotated[int, Field(ge=1, le=3)]
Samples = Annotated[int, Field(ge=2, le=8)]
Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
MaxTokens = Annotated[int, Field(ge=1, le=32_768)]

MAX_MODELS = 6
MIN_MODELS = 2
MAX_FALLBACKS = 5


def check_encodable(text: str) -> str:
    """Text moa must send upstream has to be valid Unicode: a lone UTF-16 surrogate (which
    JSON's ``\\ud800`` escape can smuggle in) cannot be encoded, and sending it would fail
    the call for a reason that is the request's, not the upstream's."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"contains text that is not valid Unicode (a lone surrogate at position "
            f"{exc.start}); send UTF-8 text"
        ) from None
    return text


class Message(BaseModel):
    """One OpenAI-style chat message. ``developer`` (OpenAI's newer name for system) is
    read as ``system``; a ``tool`` result is passed on as a user turn that says what it is,
    since a blend calls no tools and its sources would refuse a bare tool message."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    role: Role
    content: Annotated[str, AfterValidator(check_encodable)]

    @model_validator(mode="before")
    @classmethod
    def _known_roles(cls, value: Any) -> Any:
        if isinstance(value, dict) and value.get("role") in ("developer", "tool"):
            value = dict(value)
            if value["role"] == "developer":
                value["role"] = "system"
            else:
                value["role"] = "user"
                value["content"] = f"Tool result:\n{_text(value.get('content'))}"
        return value

    @field_validator("content", mode="before")
    @classmethod
    def _flatten_parts(cls, value: Any) -> Any:
        """Accept OpenAI's list-of-parts content by joining its text parts."""
        return _text(value) if isinstance(value, list) else value


def _text(content: Any) -> Any:
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, dict)]
        return "".join(str(p) for p in parts)
    return "" if content is None else content


MODEL_ID_SCHEMA: dict[str, Any] = {
    "pattern": r"^[a-z0-9_-]{1,32}/[A-Za-z0-9._:@+-][A-Za-z0-9._:@+/-]{0,199}$",
    "maxLength": 233,
    "description": "Model id, 'provider/model'. No segment of the model part may be '..'.",
}


# A model id where only an id (never a route object) is taken: the rule in the schema too.
ModelIdText = Annotated[str, Field(json_schema_extra=MODEL_ID_SCHEMA)]


class SourceSpec(BaseModel):
    """A model to call, with the models to try in order when it fails."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=3, json_schema_extra=MODEL_ID_SCHEMA)
    fallback: tuple[str, ...] = Field((), max_length=MAX_FALLBACKS)

    @field_validator("model", "fallback")
    @classmethod
    def _model_ids_have_provider(cls, value: Any) -> Any:
        ids = [value] if isinstance(value, str) else list(value)
        for model_id in ids:
            check_model_id(model_id)
        return value


_PROVIDER = re.compile(r"[a-z0-9_-]{1,32}")
_MODEL = re.compile(r"[A-Za-z0-9._:@+/-]{1,200}")
MODEL_ID_RULE = (
    "a model id is 'provider/model': provider 1-32 of a-z 0-9 _ -, model 1-200 of "
    "A-Z a-z 0-9 . _ : @ + / -, with no '..' segment and no leading '/'"
)


def check_model_id(model_id: str) -> str:
    """Model ids are ``provider/model`` with bounded length and charset: they become
    metric labels, database rows and (for some providers) URL paths, so an id a client
    sends must not be able to grow any of them or walk out of the provider's API."""
    provider, _, name = model_id.partition("/")
    valid = (
        _PROVIDER.fullmatch(provider) is not None
        and _MODEL.fullmatch(name) is not None
        and not name.startswith("/")
        and ".." not in name.split("/")
    )
    if not valid:
        shown = model_id if len(model_id) <= 80 else model_id[:80] + "..."
        raise ValueError(f"{shown!r} is not a valid model id: {MODEL_ID_RULE}")
    return model_id


ModelRef = str | SourceSpec


def as_spec(ref: ModelRef) -> SourceSpec:
    """Plain strings and specs are both accepted wherever a model is named."""
    return ref if isinstance(ref, SourceSpec) else SourceSpec(model=ref)


class ResponseFormat(BaseModel):
    """OpenAI's ``response_format``: plain text, any JSON object, or JSON under a schema."""

    model_config = ConfigDict(extra="forbid")

    type: Literal["text", "json_object", "json_schema"]
    json_schema: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _schema_when_asked(self) -> ResponseFormat:
        if self.type == "json_schema" and not self.json_schema:
            raise ValueError("response_format: type 'json_schema' needs a json_schema object")
        return self

    def for_call(self) -> dict[str, Any] | None:
        return None if self.type == "text" else self.model_dump(exclude_none=True)


StopText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class AnswerOptions(BaseModel):
    """Options for the call whose text the user reads: a blend's synthesizer (its sources
    answer freely) or chat's one model."""

    response_format: ResponseFormat | None = None
    stop: list[Annotated[StopText, AfterValidator(check_encodable)]] | None = Field(
        None, max_length=4
    )
    top_p: float | None = Field(None, gt=0, le=1)


class BlendRequest(AnswerOptions):
    """The body of a blend.

    Per strategy: consensus, council, best_of, chain and moa take 2-6 `models`; moa also
    `layers` 1-3 (calls = models x (layers + 1) + 1); self_moa takes exactly 1 model and
    `samples` 2-8. A model is an id or `{"model", "fallback": [up to 5 ids]}`; a model id
    is `provider/model` (provider 1-32 of a-z 0-9 _ -; model 1-200 of A-Z a-z 0-9 . _ : @
    + / - with no `..` segment and no leading `/`). `timeout_s`, `source_timeout_s` and
    `synthesis_timeout_s` are at least the server's `[engine] min_timeout_s` (default 1).
    Without `synthesizer`, the first source that answered synthesizes.
    """

    model_config = ConfigDict(extra="forbid")

    models: list[ModelRef] = Field(min_length=1)
    synthesizer: ModelRef | None = None
    strategy: StrategyName = "consensus"
    layers: Layers = 1
    samples: Samples = 4
    temperature: Temperature = 0.7
    max_tokens: MaxTokens | None = None
    messages: list[Message] = Field(min_length=1)
    stream: bool = False
    quorum: int | None = Field(None, ge=1)
    grace_ms: int = Field(0, ge=0, le=600_000)
    timeout_s: float | None = Field(None, gt=0, le=3600)
    source_timeout_s: float | None = Field(None, gt=0, le=3600)
    synthesis_timeout_s: float | None = Field(None, gt=0, le=3600)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)

    @field_validator("models", mode="before")
    @classmethod
    def _plain_ids_checked(cls, value: Any) -> Any:
        if isinstance(value, list):
            for item in value:
                if isinstance(item, str):
                    check_model_id(item)
        return value

    @field_validator("synthesizer", mode="before")
    @classmethod
    def _synth_id_checked(cls, value: Any) -> Any:
        if isinstance(value, str):
            check_model_id(value)
        return value

    @field_validator("messages")
    @classmethod
    def _has_a_user_turn(cls, value: list[Message]) -> list[Message]:
        if not any(m.role == "user" and m.content.strip() for m in value):
            raise ValueError("needs at least one non-empty 'user' message")
        return value

    @model_validator(mode="after")
    def _model_count_fits_strategy(self) -> BlendRequest:
        count = len(self.models)
        if self.strategy == "self_moa":
            if count != 1:
                raise ValueError(f"models: strategy 'self_moa' takes exactly 1 model, got {count}")
        elif self.strategy == "vote":
            if count > MAX_MODELS:
                raise ValueError(
                    f"models: strategy 'vote' takes 1 model (sampled `samples` times) or "
                    f"{MIN_MODELS}-{MAX_MODELS} models, got {count}"
                )
        elif not MIN_MODELS <= count <= MAX_MODELS:
            raise ValueError(
                f"models: strategy {self.strategy!r} takes {MIN_MODELS}-{MAX_MODELS} models, "
                f"got {count}"
            )
        if self.quorum is not None and self.quorum > self.source_count:
            raise ValueError(
                f"quorum: must be between 1 and the number of sources ({self.source_count}), "
                f"got {self.quorum}"
            )
        return self

    @property
    def sources(self) -> list[SourceSpec]:
        return [as_spec(m) for m in self.models]

    @property
    def sampled(self) -> bool:
        """One model answers ``samples`` times: self_moa, and vote over a single model."""
        return self.strategy == "self_moa" or (self.strategy == "vote" and len(self.models) == 1)

    @property
    def source_count(self) -> int:
        return self.samples if self.sampled else len(self.models)

    @property
    def synthesizer_spec(self) -> SourceSpec:
        """The synthesizer defaults to the first model."""
        return as_spec(self.synthesizer) if self.synthesizer is not None else self.sources[0]


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


# ---- events ---------------------------------------------------------------------------


class SourceEvent(BaseModel):
    """A source finished (``complete``), failed, was skipped by its breaker or cut as a
    straggler; sent the moment it happens."""

    event: Literal["source"] = "source"
    model: str
    layer: int
    status: Literal["complete", "failed", "skipped", "cut"]
    tokens: int = 0
    latency_ms: int = 0
    error: str | None = None
    sample: int | None = None
    index: int | None = None  # the source's place in its layer (or compare's column)


class RouteEvent(BaseModel):
    """One attempt of a source's failover route: trying, failed, skipped or success."""

    event: Literal["route"] = "route"
    model: str
    source: str
    layer: int
    attempt: int
    status: Literal["trying", "failed", "skipped", "success"]
    error: str | None = None


class LayerEvent(BaseModel):
    event: Literal["layer"] = "layer"
    layer: int
    successes: int


class SynthesisEvent(BaseModel):
    event: Literal["synthesis"] = "synthesis"
    status: Literal["starting"] = "starting"
    strategy: StrategyName
    model: str


class ChunkEvent(BaseModel):
    event: Literal["chunk"] = "chunk"
    content: str


class DoneEvent(_AnswerFields):
    """The final event: every field of the answer object except ``content``."""

    event: Literal["done"] = "done"

    def answer(self, content: str) -> BlendAnswer:
        return BlendAnswer(content=content, **self.model_dump(exclude={"event"}))


class ErrorEvent(BaseModel):
    """The work failed; ``exception`` is the error itself, so the Python API re-raises
    exactly what happened (a ``MissingKeyError`` stays one)."""

    event: Literal["error"] = "error"
    code: str
    message: str
    _exception: MoaError | None = PrivateAttr(None)

    @classmethod
    def of(cls, exc: MoaError) -> ErrorEvent:
        event = cls(code=exc.code, message=exc.message)
        event._exception = exc
        return event

    @property
    def exception(self) -> MoaError:
        return self._exception or MoaError(self.message, code=self.code)


class DeltaEvent(BaseModel):
    """A piece of one model's answer (compare and chat streams)."""

    event: Literal["delta"] = "delta"
    model: str
    content: str
    index: int | None = None  # compare's column, so one model named twice stays two


Event = Annotated[
    SourceEvent
    | RouteEvent
    | LayerEvent
    | SynthesisEvent
    | ChunkEvent
    | DeltaEvent
    | DoneEvent
    | ErrorEvent,
    Field(discriminator="event"),
]


# ---- chat, compare, judge ----------------------------------------------------------------


class _Conversation(BaseModel):
    """Fields every mode shares with a blend."""

    model_config = ConfigDict(extra="forbid")

    messages: list[Message] = Field(min_length=1)
    temperature: Temperature = 0.7
    max_tokens: MaxTokens | None = None
    stream: bool = False
    timeout_s: float | None = Field(None, gt=0, le=3600)  # the whole request's deadline

    @field_validator("messages")
    @classmethod
    def _has_a_user_turn(cls, value: list[Message]) -> list[Message]:
        return BlendRequest._has_a_user_turn(value)


def _model_list(value: Any, mode: str, what: str, low: int, high: int) -> Any:
    """Count and id checks for a mode's list of models, with a message saying what fits."""
    if isinstance(value, list):
        if not low <= len(value) <= high:
            raise ValueError(f"{mode} takes {low}-{high} {what}, got {len(value)}")
        for item in value:
            if isinstance(item, str):
                check_model_id(item)
    return value


class Routing(BaseModel):
    model_config = ConfigDict(extra="forbid")

    fallback: list[ModelIdText] = Field(default_factory=list, max_length=MAX_FALLBACKS)

    @field_validator("fallback")
    @classmethod
    def _ids(cls, value: list[str]) -> list[str]:
        return [check_model_id(m) for m in value]


class ChatRequest(_Conversation, AnswerOptions):
    model: ModelIdText
    seed: int | None = Field(None, ge=0, le=2**31 - 1)

    routing: Routing = Routing()

    @field_validator("model")
    @classmethod
    def _id(cls, value: str) -> str:
        return check_model_id(value)

    @property
    def spec(self) -> SourceSpec:
        return SourceSpec(model=self.model, fallback=tuple(self.routing.fallback))


class ChatAnswer(BaseModel):
    id: str
    model: str
    content: str
    usage: Usage
    latency_ms: int
    finish_reason: str | None = None
    credits_charged: int = 0
    credits_remaining: int | None = None


class CompareRequest(_Conversation):
    models: list[ModelIdText] = Field(min_length=2, max_length=9)

    @field_validator("models", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _model_list(value, "compare", "models", 2, 9)


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


class JudgeRequest(_Conversation):
    contestants: list[ModelIdText] = Field(min_length=2, max_length=4)
    judge: ModelIdText

    @field_validator("contestants", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _model_list(value, "judge", "contestants", 2, 4)

    @field_validator("judge")
    @classmethod
    def _judge_id(cls, value: str) -> str:
        return check_model_id(value)

    @model_validator(mode="after")
    def _judge_is_not_a_contestant(self) -> JudgeRequest:
        if self.judge in self.contestants:
            raise ValueError(f"judge: {self.judge!r} is also a contestant; pick another judge")
        return self


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
