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
from moa.providers.local import LocalProvider
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
        # A local provider runs one call per context: its router slots are its contexts,
        # so a call waits for one in the router, within its deadline and in sight.
        for name in self.local_providers():
            pool = settings.engine.local_pool_size
            caps[name] = min(caps.get(name, pool), pool)
        self.tracing = tracing if tracing is not None else tracing_from_env(settings.env)
        make: MakeRouter = Router if self.tracing is None else self.tracing.router
        self.router = make(self.registry, settings.engine, breakers, caps)

    def local_providers(self) -> list[str]:
        """The providers of kind ``local`` a model id may name here."""
        settings = self.settings
        return [
            name
            for name in settings.provider_names()
            if (config := settings.provider(name)) is not None and config.kind == "local"
        ]

    def is_local(self, model_id: str) -> bool:
        return model_id.partition("/")[0] in self.local_providers()

    def local_defaults(self, request: BlendRequest) -> BlendRequest:
        """``request`` with ``[engine] local_samples`` as its sample count when it set none
        and every model it may call is local: four samples of the embedded model take twice
        as long as two on a small machine, and add little to a 135M model's answer."""
        if "samples" in request.model_fields_set or not request.sampled:
            return request
        if not all(self.is_local(model) for model in self._models(request)):
            return request
        samples = self.settings.engine.local_samples
        if request.quorum is not None and request.quorum > samples:
            return request
        return request.model_copy(update={"samples": samples})

    async def load_local_models(self) -> None:
        """Load every context of every local provider now, so no request waits for a
        model to load (``moa serve`` calls this before it says it serves)."""
        for name in self.local_providers():
            await self.registry.prepare([f"{name}/model"])
            provider, _ = self.registry.resolve(f"{name}/model")
            if isinstance(provider, LocalProvider):
                await provider.load_all()

    def local_model_status(self) -> str:
        """For ``/healthz/ready``: "ok" once every local provider's contexts are loaded,
        "not loaded" before (a call would load them), "not configured" without one."""
        names = self.local_providers()
        if not names:
            return "not configured"
        providers = [self.registry.created(name) for name in names]
        if all(isinstance(p, LocalProvider) and p.loaded == p.pool_size for p in providers):
            return "ok"
        return "not loaded"

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> Runtime:
        return cls(settings if settings is not None else load_settings())

    def check(self, request: BlendRequest, field_prefix: str = "") -> None:
        """Fail before any work if a model of the request cannot be called or a timeout
        it sets is below the floor."""
        self.check_timeouts(request, field_prefix)
        self.check_models(self._models(request))

    def check_timeouts(self, request: BaseModel, field_prefix: str = "") -> None:
        """A request may shorten its timeouts, not below ``[engine] min_timeout_s`` (a call
        cut after a nanosecond costs the upstream work and proves nothing), and may not
        lengthen a call's past the configured one (it would hold provider slots every key
        shares for longer than the operator allows)."""
        engine = self.settings.engine
        ceilings = {
            "timeout_s": None,
            "source_timeout_s": engine.source_timeout_s,
            "synthesis_timeout_s": engine.synthesis_timeout_s,
        }
        for name, ceiling in ceilings.items():
            value = getattr(request, name, None)
            if value is None:
                continue
            if value < engine.min_timeout_s:
                raise InvalidRequest(
                    f"{field_prefix}{name}: must be at least {engine.min_timeout_s:g} s "
                    f"(this server's [engine] min_timeout_s), got {value:g}"
                )
            if ceiling is not None and value > ceiling:
                raise InvalidRequest(
                    f"{field_prefix}{name}: must be at most {ceiling:g} s (this server's "
                    f"[engine] {name}), got {value:g}"
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
