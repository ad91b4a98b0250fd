"""Pydantic's validation errors as one line a user can act on: ``field: what is wrong``.

The server (400 ``invalid_request``), the CLI (exit 2) and the config loader all say it
this way, so a field is named the same wherever it was wrong: ``models[0].fallback``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

_NAMES_A_FIELD = re.compile(r"^[a-z_.]+(\[\d+\])?(\.[a-z_]+)*: ")
# Errors of a union member the input was plainly not meant for ("Input should be a valid
# string" for an object given where a string or an object is allowed).
_WRONG_BRANCH = frozenset({"string_type", "model_type", "dict_type", "model_attributes_type"})
_SKIPPED_LOC = frozenset({"body", "query"})
_FIELD = re.compile(r"[a-z_][a-z0-9_]*")
_TYPE_TAGS = frozenset({"str", "int", "float", "bool", "list", "dict", "tuple", "none"})


def field_path(loc: Sequence[Any]) -> str:
    """``("models", 0, "SourceSpec", "fallback")`` -> ``models[0].fallback``: list
    indexes in brackets, body prefixes and union member tags dropped."""
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in _SKIPPED_LOC or not _is_field_name(str(part)):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _is_field_name(part: str) -> bool:
    return part.islower() or (part.replace("_", "").isalnum() and part[:1].islower())


def _most_telling(errors: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    telling = [e for e in errors if e.get("type") not in _WRONG_BRANCH]
    return telling[0] if telling else errors[0]


def describe_errors(errors: Sequence[Mapping[str, Any]]) -> str:
    """The most telling problem as ``field: what is wrong``."""
    if not errors:
        return "invalid request"
    error = _most_telling(errors)
    where = field_path(error.get("loc", ()))
    message = str(error.get("msg", "invalid")).removeprefix("Value error, ")
    kind = error.get("type")
    if kind == "json_invalid":
        return f"body is not valid JSON: {message}"
    if kind == "missing":
        return f"{where}: field required" if where else "body: a JSON object is required"
    if kind == "extra_forbidden":
        return f"{where}: unknown field"
    if not where:  # a whole-body check: its message names its field, else blame the body
        return message if _NAMES_A_FIELD.match(message) else f"body: {message}"
    if message.startswith(f"{where.split('.')[0].split('[')[0]}:"):
        return message
    return f"{where}: {message}"
