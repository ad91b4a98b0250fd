"""What clients ask for: messages, the models they name (with fallbacks), and the bodies of
a blend, chat, compare and judge, each with the rules it is checked against."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from moa.types.ids import (
    MAX_FALLBACKS,
    MAX_MODELS,
    MIN_MODELS,
    MODEL_ID_SCHEMA,
    Layers,
    MaxTokens,
    ModelIdText,
    Role,
    Samples,
    StrategyName,
    Temperature,
    check_encodable,
    check_model_id,
)


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


class Conversation(BaseModel):
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


class ChatRequest(Conversation, AnswerOptions):
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


class CompareRequest(Conversation):
    models: list[ModelIdText] = Field(min_length=2, max_length=9)

    @field_validator("models", mode="before")
    @classmethod
    def _count(cls, value: Any) -> Any:
        return _model_list(value, "compare", "models", 2, 9)


class JudgeRequest(Conversation):
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
