"""Reading an upstream's JSON without trusting its shape.

A reply of the wrong shape is the upstream's fault, not a bug in moa, so the parsers check
each value they use and raise ``BadShape`` (mapped to a bad-response ``ProviderError`` by
``transport.Upstream.reply``) instead of letting a ``KeyError`` or ``TypeError`` escape. Messages
are moa's own words: they name what was expected, never quote the upstream.
"""

from __future__ import annotations

import json
from typing import Any


class BadShape(ValueError):
    """The upstream's reply is not the shape its protocol promises."""


def parse_json(raw: bytes | str, what: str) -> Any:
    try:
        return json.loads(raw)
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for bytes
        raise BadShape(f"{what} is not JSON") from exc


def as_object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadShape(f"{what} is not a JSON object")
    return value


def as_list(value: object, what: str) -> list[Any]:
    """A list; a missing (null) one reads as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadShape(f"{what} is not a list")
    return value


def as_text(value: object, what: str) -> str:
    """A string; a missing (null) one reads as empty."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise BadShape(f"{what} is not a string")
    return value


def as_count(value: object, what: str) -> int:
    """A token count: a non-negative integer; a missing (null) one reads as 0."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BadShape(f"{what} is not a token count")
    return value


def optional_text(value: object, what: str) -> str | None:
    return None if value is None else as_text(value, what)
