"""Test doubles for moa: a scripted upstream speaking the OpenAI, Anthropic and Gemini
protocols (see ``moa.testing.upstream``).

Names are loaded lazily, so importing ``moa.testing`` costs nothing until one is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moa.testing.upstream import (
        Behavior,
        FaultPlan,
        RecordedRequest,
        ScriptedUpstream,
        UpstreamApp,
    )

__all__ = ["Behavior", "FaultPlan", "RecordedRequest", "ScriptedUpstream", "UpstreamApp"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        return getattr(importlib.import_module("moa.testing.upstream"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
