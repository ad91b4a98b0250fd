"""Find the JSON object in a model's reply: code fences, leading prose and trailing chatter
are all common, even when the prompt says "JSON only"."""

from __future__ import annotations

import json
from typing import Any

_decoder = json.JSONDecoder()


def extract_json_object(text: str) -> dict[str, Any] | None:
    """The first JSON object in ``text`` that decodes, or None."""
    start = text.find("{")
    while start != -1:
        try:
            value, _ = _decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict):
            return value
        start = text.find("{", start + 1)
    return None
