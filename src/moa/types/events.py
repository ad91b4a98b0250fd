"""The events of a stream, sent as things happen: source, route, layer, synthesis, chunk,
delta, then done or error."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, PrivateAttr

from moa.errors import MoaError
from moa.types.answers import BlendAnswer, _AnswerFields
from moa.types.ids import StrategyName


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
