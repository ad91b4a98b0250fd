"""What the scripted upstream is told to do, and what it remembers, for every protocol.

``Behavior`` scripts one model (timing, errors, stalls, cuts, bad replies, safety blocks,
per-prompt answers); ``FaultPlan`` injects faults at a seeded rate; ``RecordedRequest`` is one
call as the upstream saw it, in a protocol-neutral form (OpenAI-style ``messages``, with an
Anthropic ``system`` field or a Gemini ``systemInstruction`` as the first system message),
plus the raw ``body`` for protocol-specific assertions.
"""

from __future__ import annotations

import dataclasses
import random
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Literal

import pydantic

FAULT_KINDS = ("429", "500", "stall", "cut", "malformed")
FAULT_RETRY_AFTER = 0.05
_TOKEN = re.compile(r"\s*\S+\s*|\s+")
_STRICT = pydantic.ConfigDict(extra="forbid")
_KEY_HEADERS = ("x-api-key", "x-goog-api-key")


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class Behavior:
    """How one model answers; every field is optional so a test states only what it cares about.

    The reply text is, in order: ``reply(body)`` (in-process only), ``answers[prompt]`` where
    prompt is the last user message with surrounding whitespace stripped (an exact match;
    keys are stripped too), ``content``, else a default that names the model. Words count as
    tokens; a reply longer than the request's max tokens is cut there and finishes ``length``.
    ``blocked`` makes the upstream's safety filter block the ``prompt`` or the ``answer``;
    ``misshapen`` sends valid JSON of the wrong shape; ``error_after`` ends a stream after
    that many tokens with the protocol's in-stream error event (non-streaming calls answer
    normally); ``cut_after`` closes the socket there instead; ``json_schema=False`` answers a
    ``response_format`` of type ``json_schema`` with 400, as servers that lack it do;
    ``redirect`` answers 307 pointing back at the same URL, so a client that follows
    redirects asks again (and again).
    """

    latency_ms: float = 0.0
    token_delay_ms: float = 0.0
    content: str | None = None
    answers: Mapping[str, str] | None = None
    reply: Callable[[dict[str, Any]], str] | None = None
    status: int | None = None
    error_message: str | None = None
    retry_after: float | None = None
    fail_times: int = 0
    stall: bool = False
    cut_after: int | None = None
    error_after: int | None = None
    malformed: bool = False
    misshapen: bool = False
    blocked: Literal["prompt", "answer"] | None = None
    json_schema: bool = True
    redirect: bool = False

    def __post_init__(self) -> None:
        if self.status is not None and not 400 <= self.status <= 599:
            raise ValueError(f"status is an error status (400-599), got {self.status}")

    def for_attempt(self, attempt: int) -> Behavior:
        """Resolve ``fail_times`` so the reply code only sees a plain fail-or-succeed behaviour."""
        if not self.fail_times:
            return self
        status = (self.status or 500) if attempt <= self.fail_times else None
        return dataclasses.replace(self, status=status, fail_times=0)

    def with_fault(self, kind: str) -> Behavior:
        """Swap the scripted outcome for an injected fault, keeping the timing and the text."""
        clean = dataclasses.replace(
            self,
            status=None,
            fail_times=0,
            stall=False,
            cut_after=None,
            error_after=None,
            malformed=False,
            misshapen=False,
            blocked=None,
            redirect=False,
        )
        if kind.isdigit():
            retry = FAULT_RETRY_AFTER if kind in ("429", "503") else None
            message = f"injected fault {kind}"
            return dataclasses.replace(
                clean, status=int(kind), error_message=message, retry_after=retry
            )
        if kind == "stall":
            return dataclasses.replace(clean, stall=True)
        if kind == "cut":
            return dataclasses.replace(clean, cut_after=1)
        return dataclasses.replace(clean, malformed=True)

    def refusing(self, body: Mapping[str, Any]) -> Behavior:
        """A 400 for a ``json_schema`` response format this model is scripted to lack."""
        asked = body.get("response_format")
        if self.json_schema or not isinstance(asked, dict) or asked.get("type") != "json_schema":
            return self
        message = "response_format json_schema is not supported"
        return dataclasses.replace(self, status=400, error_message=message)

    def text_for(self, record: RecordedRequest) -> str:
        if self.reply is not None:
            return self.reply(record.body)
        prompt = last_user_text(record.messages).strip()
        for key, answer in (self.answers or {}).items():
            if key.strip() == prompt:
                return answer
        if self.content is not None:
            return self.content
        return default_reply(record.model, record.messages)


@pydantic.dataclasses.dataclass(frozen=True, config=_STRICT)
class FaultPlan:
    """Each call is replaced by a fault with probability ``rate``; a seed makes runs repeatable."""

    rate: float
    kinds: tuple[str, ...] = FAULT_KINDS
    seed: int = 0
    models: AbstractSet[str] | None = None  # stored as a frozenset

    def __post_init__(self) -> None:
        unknown = [k for k in self.kinds if not k.isdigit() and k not in FAULT_KINDS]
        if unknown or not self.kinds:
            raise ValueError(f"fault kinds must be HTTP statuses or {FAULT_KINDS}, got {unknown}")
        if not 0 <= self.rate <= 1:
            raise ValueError(f"fault rate is a probability, got {self.rate}")


@dataclass
class RecordedRequest:
    """What the upstream received and how the exchange ended, for assertions after the fact."""

    model: str
    messages: list[dict[str, Any]]
    temperature: float | None
    max_tokens: int | None
    stream: bool
    headers: dict[str, str]
    body: dict[str, Any]
    received_at: float = dataclasses.field(default_factory=time.monotonic)
    protocol: Literal["openai", "anthropic", "gemini"] = "openai"
    connection: str | None = None  # the client's address: equal for one kept-alive connection
    fault: str | None = None
    status: int | None = None
    completed: bool = False
    completed_at: float | None = None
    disconnected: bool = False
    disconnected_at: float | None = None

    @property
    def authorization(self) -> str | None:
        """The Authorization header, so tests can check which key a provider was called with."""
        return self.headers.get("authorization")

    @property
    def api_key(self) -> str | None:
        """The key, however the protocol sends it (Bearer, x-api-key or x-goog-api-key)."""
        bearer = self.authorization
        if bearer and bearer.lower().startswith("bearer "):
            return bearer[7:]
        return next((self.headers[h] for h in _KEY_HEADERS if h in self.headers), None)


class State:
    """Scripts, fault dice and records, shared by the server thread and the test thread."""

    def __init__(self, default: Behavior) -> None:
        self._cond = threading.Condition(threading.RLock())
        self._initial_default = default
        self.reset()

    def reset(self) -> None:
        with self._cond:
            self.default = self._initial_default
            self.scripts: dict[str, Behavior] = {}
            self._attempts: Counter[str] = Counter()
            self._faults: FaultPlan | None = None
            self._rng = random.Random(0)
            self._records: list[RecordedRequest] = []
            self._cond.notify_all()

    def script(self, model: str, behavior: Behavior) -> None:
        with self._cond:
            self.scripts[model] = behavior
            self._attempts[model] = 0

    def set_default(self, behavior: Behavior) -> None:
        with self._cond:
            self.default = behavior

    def set_faults(self, plan: FaultPlan | None) -> None:
        with self._cond:
            self._faults = plan
            self._rng = random.Random(plan.seed if plan else 0)

    def admit(self, record: RecordedRequest) -> Behavior:
        """Record a request and decide, atomically, what this particular call will get."""
        model = record.model
        with self._cond:
            self._attempts[model] += 1
            behavior = self.scripts.get(model, self.default).for_attempt(self._attempts[model])
            behavior = behavior.refusing(record.body)
            fault = self._draw_fault(model)
            if fault is not None:
                behavior = behavior.with_fault(fault)
            record.fault = fault
            record.status = None if behavior.stall else behavior.status or 200
            self._records.append(record)
            self._cond.notify_all()
        return behavior

    def _draw_fault(self, model: str) -> str | None:
        plan = self._faults
        if plan is None or (plan.models is not None and model not in plan.models):
            return None
        hit = self._rng.random() < plan.rate
        kind = self._rng.choice(plan.kinds)  # drawn on every call so the sequence is stable
        return kind if hit else None

    def settle(self, record: RecordedRequest, *, completed: bool, disconnected: bool) -> None:
        with self._cond:
            now = time.monotonic()
            if completed:
                record.completed, record.completed_at = True, now
            if disconnected:
                record.disconnected, record.disconnected_at = True, now
            self._cond.notify_all()

    def models(self) -> list[str]:
        with self._cond:
            return sorted(self.scripts)

    def records(self, model: str | None = None) -> list[RecordedRequest]:
        with self._cond:
            return [dataclasses.replace(r) for r in self._records if model in (None, r.model)]

    def wait_for(self, predicate: Callable[[], bool], timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(predicate, timeout)


def text_of(content: Any) -> str:
    """Message content as plain text, for both strings and lists of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def last_user_text(messages: list[dict[str, Any]]) -> str:
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    return text_of(users[-1].get("content")) if users else ""


def default_reply(model: str, messages: list[dict[str, Any]]) -> str:
    """A deterministic answer that names the model, so tests can tell the sources apart."""
    words = last_user_text(messages).split()[:12]
    return f"[{model}] answer to: {' '.join(words)}"


def tokens_of(text: str) -> list[str]:
    """Split text into streamed tokens: one word with its surrounding whitespace each."""
    return _TOKEN.findall(text)


def word_count(messages: list[dict[str, Any]]) -> int:
    """The prompt's tokens, as the upstream counts them: words in every message."""
    return sum(len(text_of(m.get("content")).split()) for m in messages)
