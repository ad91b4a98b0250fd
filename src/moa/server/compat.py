"""What the provider-compatible endpoints (OpenAI Chat Completions, Anthropic Messages)
share: what their ``model`` field means and the blend fields of their body field ``moa``.

``model`` is ``moa/<strategy>`` (a blend of ``moa.models``, else ``[defaults] models``), a
preset of moa.toml, or a plain ``provider/model`` that answers alone, as /api/v1/chat does,
failing over to ``moa.fallback``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from moa.config import Settings
from moa.server.errors import ApiError, describe_validation
from moa.types import STRATEGIES, BlendRequest, ChatRequest, ModelRef

Target = BlendRequest | ChatRequest
RequestModel = TypeVar("RequestModel", bound=BaseModel)


class MoaFields(BaseModel):
    """Blend fields a compatible client sends in the body field ``moa``."""

    model_config = ConfigDict(extra="forbid")

    models: list[ModelRef] | None = None
    synthesizer: ModelRef | None = None
    layers: int | None = None
    samples: int | None = None
    quorum: int | None = None
    grace_ms: int | None = None
    timeout_s: float | None = None
    source_timeout_s: float | None = None
    synthesis_timeout_s: float | None = None
    fallback: list[str] | None = Field(None, max_length=5)


def model_choices(settings: Settings) -> list[str]:
    return [f"moa/{s}" for s in STRATEGIES] + sorted(settings.presets)


def is_blend(model: str, settings: Settings) -> bool:
    """``moa/<anything>`` and presets are blends; everything else names one model."""
    return model.partition("/")[0] == "moa" or model in settings.presets


def resolve(model: str, moa: MoaFields | None, settings: Settings, **conversation: Any) -> Target:
    """The request a compatible body asks for. ``conversation`` holds the fields every mode
    shares (``messages``, ``stream``, ``temperature``, ``max_tokens``); None means unset."""
    if is_blend(model, settings):
        return blend_for(model, moa, settings, **conversation)
    if "/" in model:
        return chat_for(model, moa, **conversation)
    raise _unavailable(model, settings)


def _unavailable(model: str, settings: Settings) -> ApiError:
    return ApiError(
        400,
        "invalid_request",
        f"model: {model[:80]!r} is not available; use one of "
        f"{', '.join(model_choices(settings))}, or a model id 'provider/model'",
    )


def blend_for(
    model: str, moa: MoaFields | None, settings: Settings, **conversation: Any
) -> BlendRequest:
    """Resolve ``model`` (strategy or preset) and ``moa`` into a BlendRequest."""
    fields: dict[str, Any] = {}
    strategy, _, rest = model.partition("/")
    if strategy == "moa" and rest in STRATEGIES:
        fields["strategy"] = rest
        fields["models"] = settings.defaults.models
    elif model in settings.presets:
        fields.update(settings.presets[model].model_dump(exclude_none=True))
    else:
        raise _unavailable(model, settings)
    if moa is not None:
        if moa.fallback is not None:
            raise ApiError(
                400,
                "invalid_request",
                "moa.fallback: only with a plain provider/model; a blend names fallbacks "
                'per source: moa.models[i] = {"model": ..., "fallback": [...]}',
            )
        fields.update(moa.model_dump(exclude_none=True))
    fields.update({k: v for k, v in conversation.items() if v is not None})
    return _validated(BlendRequest, fields)


def chat_for(model: str, moa: MoaFields | None, **conversation: Any) -> ChatRequest:
    """One model answers; of ``moa`` only ``fallback`` applies."""
    if moa is not None:
        blend_only = sorted(moa.model_dump(exclude_none=True).keys() - {"fallback"})
        if blend_only:
            raise ApiError(
                400,
                "invalid_request",
                f"moa.{blend_only[0]}: only with a blend (model moa/<strategy> or a preset); "
                f"{model!r} names one model",
            )
    fields: dict[str, Any] = {"model": model, **conversation}
    if moa is not None and moa.fallback:
        fields["routing"] = {"fallback": moa.fallback}
    return _validated(ChatRequest, {k: v for k, v in fields.items() if v is not None})


def _validated(kind: type[RequestModel], fields: dict[str, Any]) -> RequestModel:
    try:
        return kind.model_validate(fields)
    except ValidationError as exc:
        message = describe_validation(list(exc.errors()))
        field = message.partition(":")[0].partition("[")[0].partition(".")[0]
        moa_field = field in MoaFields.model_fields  # say where the client put it
        if field == "routing":
            message, moa_field = "fallback" + message.removeprefix("routing.fallback"), True
        raise ApiError(400, "invalid_request", f"moa.{message}" if moa_field else message) from exc
