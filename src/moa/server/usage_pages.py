"""GET /api/v1/usage's query and answer: the period (``since``, ``until``), the opaque
``cursor`` that carries a page's end to the next request, and each record as JSON.

The cursor is the last record's position (timestamp and row id) in URL-safe base64: a
client passes it back untouched and never builds one. It only positions a page: the
records are always the caller's own key's, whatever a cursor says."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime
from typing import Any

from moa.instants import check_period, parse_instant
from moa.server.errors import ApiError
from moa.store.usage import Position, UsageRecord

_CURSOR_MAX_CHARS = 200


def encode_cursor(position: Position) -> str:
    raw = json.dumps([position.created_at.isoformat(), position.id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Position:
    """The position a cursor names; 400 naming ``cursor`` for anything this server did not
    hand out (truncated, edited, made up)."""
    try:
        if len(cursor) > _CURSOR_MAX_CHARS:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, row_id = json.loads(raw)
        created_at = datetime.fromisoformat(stamp)
        if created_at.tzinfo is None or type(row_id) is not int or not 0 <= row_id < 2**31:
            raise ValueError("not a position")
        created_at = created_at.astimezone(UTC)
    except (ValueError, TypeError, OverflowError, binascii.Error):
        raise _invalid(
            "cursor", "is not a cursor this server gave (pass next_cursor back unchanged)"
        ) from None
    return Position(created_at, row_id)


def period(since: str | None, until: str | None) -> tuple[datetime | None, datetime | None]:
    """The query's bounds as UTC datetimes; 400 naming the field that is wrong."""
    bounds: dict[str, datetime | None] = {}
    for name, text in (("since", since), ("until", until)):
        try:
            bounds[name] = None if text is None else parse_instant(text)
        except ValueError as exc:
            raise _invalid(name, str(exc)) from None
    try:
        check_period(bounds["since"], bounds["until"])
    except ValueError as exc:
        raise _invalid("until", str(exc)) from None
    return bounds["since"], bounds["until"]


def record_json(record: UsageRecord) -> dict[str, Any]:
    return {
        "request_id": record.request_id,
        "route": record.route,
        "strategy": record.strategy,
        "models": record.models,
        "prompt_tokens": record.prompt_tokens,
        "completion_tokens": record.completion_tokens,
        "cost_usd": record.cost_usd,
        "credits_charged": record.credits_charged,
        "latency_ms": record.latency_ms,
        "status": record.status,
        "created_at": record.created_at.isoformat(),
    }


def _invalid(field: str, problem: str) -> ApiError:
    return ApiError(400, "invalid_request", f"{field}: {problem}")
