"""The small values every shape names: strategies, roles, request ids, the model-id rule,
the bounds of the numeric fields, and the check that text can be sent upstream at all."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal

from pydantic import Field

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


MODEL_ID_SCHEMA: dict[str, Any] = {
    "pattern": r"^[a-z0-9_-]{1,32}/[A-Za-z0-9._:@+-][A-Za-z0-9._:@+/-]{0,199}$",
    "maxLength": 233,
    "description": "Model id, 'provider/model'. No segment of the model part may be '..'.",
}


# A model id where only an id (never a route object) is taken: the rule in the schema too.
ModelIdText = Annotated[str, Field(json_schema_extra=MODEL_ID_SCHEMA)]


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
