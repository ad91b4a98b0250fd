"""What the server holds for its lifetime: settings, runtime, store, rate limits, metrics,
in-flight counts, recently authenticated keys, and the drain that ends its requests at shutdown."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request

from moa.config import Settings
from moa.runtime import Runtime
from moa.server.drain import Drain
from moa.server.key_cache import KeyCache
from moa.server.metrics import Metrics
from moa.server.ratelimit import KeyInflight, RateLimits
from moa.store import Store


@dataclass
class AppState:
    settings: Settings
    runtime: Runtime
    store: Store
    limits: RateLimits
    metrics: Metrics
    inflight: KeyInflight
    keys: KeyCache
    drain: Drain | None = None


def app_state(request: Request) -> AppState:
    state: AppState = request.app.state.moa
    return state
