"""What a process keeps between blends: settings, provider clients, breakers, slots.

Built once per server (or per CLI command) and closed at the end, so connection pools and
breaker state outlive single requests without being module-level globals.
"""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING

from pydantic import BaseModel

from moa.config import EngineConfig, Settings, load_settings
from moa.errors import InvalidRequest
from moa.providers.registry import ProviderRegistry
from moa.routing.breaker import Breakers
from moa.routing.router import Router
from moa.tracing import tracing_from_env
from moa.types import BlendRequest

if TYPE_CHECKING:
    from moa.tracing.spans import Tracing

MakeRouter = Callable[[ProviderRegistry, EngineConfig, Breakers | None, dict[str, int]], Router]


class Runtime:
    def __init__(
        self,
        settings: Settings,
        breakers: Breakers | None = None,
        tracing: Tracing | None = None,
    ) -> None:
        """``tracing`` defaults to what the ``OTEL_*`` variables of ``settings.env`` ask for."""
        self.settings = settings
        self.registry = ProviderRegistry(settings)
        caps = {
            name: p.max_concurrency
            for name, p in settings.providers.items()
            if p.max_concurrency is not None
        }
        self.tracing = tracing if tracing is not None else tracing_from_env(settings.env)
        make: MakeRouter = Router if self.tracing is None else self.tracing.router
        self.router = make(self.registry, settings.engine, breakers, caps)

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Runtime:
        return cls(settings if settings is not None else load_settings())

    def check(self, request: BlendRequest, field_prefix: str = "") -> None:
        """Fail before any work if a model of the request cannot be called or a timeout
        it sets is below the floor."""
        self.check_timeouts(request, field_prefix)
        self.check_models(self._models(request))

    def check_timeouts(self, request: BaseModel, field_prefix: str = "") -> None:
        """A request may shorten its timeouts, not below ``[engine] min_timeout_s``: a
        call cut after a nanosecond costs the upstream work and proves nothing."""
        floor = self.settings.engine.min_timeout_s
        for name in ("timeout_s", "source_timeout_s", "synthesis_timeout_s"):
            value = getattr(request, name, None)
            if value is not None and value < floor:
                raise InvalidRequest(
                    f"{field_prefix}{name}: must be at least {floor:g} s (this server's "
                    f"[engine] min_timeout_s), got {value:g}"
                )

    def check_models(self, models: list[str]) -> None:
        for model in models:
            self.registry.check(model)

    async def prepare(self, request: BlendRequest) -> None:
        """Check the request's models, then create their providers off the event loop."""
        self.check(request)
        await self.prepare_models(self._models(request))

    async def prepare_models(self, models: list[str]) -> None:
        self.check_models(models)
        await self.registry.prepare(models)

    @staticmethod
    def _models(request: BlendRequest) -> list[str]:
        specs = [*request.sources, request.synthesizer_spec]
        return [m for spec in specs for m in (spec.model, *spec.fallback)]

    async def aclose(self) -> None:
        await self.registry.aclose()
        await self.router.breakers.aclose()

    async def __aenter__(self) -> Runtime:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
