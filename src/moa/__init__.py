"""moa: a Mixture-of-Agents service. Several LLMs answer; a synthesizer blends them.

import asyncio, moa

request = moa.BlendRequest(
    models=["local/smollm2"], strategy="self_moa", samples=2,
    messages=[{"role": "user", "content": "Name three primary colours."}],
)
answer = asyncio.run(moa.blend(request))
print(answer.content)
"""

from __future__ import annotations

__version__ = "0.2.0"  # the one place: pyproject.toml, `moa --version` and the API read it

from moa.config import Settings, load_settings
from moa.engine import blend, stream_blend
from moa.errors import (
    BlendFailed,
    ConfigError,
    InvalidRequest,
    MissingKeyError,
    MoaError,
    RequestFailed,
)
from moa.runtime import Runtime
from moa.types import (
    BlendAnswer,
    BlendRequest,
    ChunkEvent,
    DoneEvent,
    ErrorEvent,
    Event,
    LayerEvent,
    Message,
    RouteEvent,
    SourceEvent,
    SourceSpec,
    SynthesisEvent,
)

__all__ = [
    "BlendAnswer",
    "BlendFailed",
    "BlendRequest",
    "ChunkEvent",
    "ConfigError",
    "DoneEvent",
    "ErrorEvent",
    "Event",
    "InvalidRequest",
    "LayerEvent",
    "Message",
    "MissingKeyError",
    "MoaError",
    "RequestFailed",
    "RouteEvent",
    "Runtime",
    "Settings",
    "SourceEvent",
    "SourceSpec",
    "SynthesisEvent",
    "__version__",
    "blend",
    "load_settings",
    "stream_blend",
]
