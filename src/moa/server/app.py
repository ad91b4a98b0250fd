"""The ASGI app: moa's API, the OpenAI-compatible endpoint, health, metrics, playground.

``create_app()`` builds everything from one Settings object; the lifespan opens the store,
the runtime (provider clients, breakers) and the rate limiter once, and closes them. For
its whole life the server renews its credit reservations and refunds those of dead
processes (``Store.keep_leases``), and SIGTERM drains it (:mod:`moa.server.drain`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI
from starlette.routing import Route

from moa import __version__
from moa.catalogue import catalogue
from moa.config import Settings, load_settings
from moa.mcp.http import McpEndpoint
from moa.routing.breaker import Breakers
from moa.runtime import Runtime
from moa.server.body_limit import BodyLimit
from moa.server.drain import Drain, Draining
from moa.server.errors import install_error_handlers
from moa.server.key_cache import KeyCache
from moa.server.metrics import Metrics
from moa.server.openapi import install_openapi
from moa.server.ratelimit import KeyInflight, RateLimits
from moa.server.request_scope import RequestScope
from moa.server.routes import admin, anthropic, api, openai, service
from moa.server.state import AppState
from moa.store import Store


def create_app(settings: Settings | None = None) -> FastAPI:
    config = (settings if settings is not None else load_settings()).for_clients()
    drain = Drain(config.server.shutdown_grace_s)
    mcp = McpEndpoint(version=__version__)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            store = await Store.open(
                config.server.database_url,
                schema=config.server.database_schema,
                lease_s=config.server.reservation_lease_s,
            )
            stack.push_async_callback(store.close)
            runtime = Runtime(config, breakers=_breakers(config))
            stack.push_async_callback(runtime.aclose)
            limits = RateLimits(config.server)
            stack.push_async_callback(limits.aclose)
            metrics = Metrics(known_models={entry.id for entry in catalogue(config)})
            inflight = KeyInflight(config.server.key_inflight)
            await stack.enter_async_context(store.keep_leases())
            stack.enter_context(drain.on_signals())
            stack.push_async_callback(drain.aclose)
            keys = KeyCache(store.authenticate, config.server.auth_cache_s)
            app.state.moa = AppState(config, runtime, store, limits, metrics, inflight, keys, drain)
            await stack.enter_async_context(mcp.running())
            yield

    app = FastAPI(
        title="moa",
        summary="Mixture-of-Agents: several LLMs answer, a synthesizer blends their answers.",
        version=__version__,
        lifespan=lifespan,
    )
    install_error_handlers(app)
    install_openapi(app)
    app.include_router(api.router)
    app.include_router(openai.router)
    app.include_router(anthropic.router)
    app.include_router(service.router)
    app.include_router(admin.router)
    # POST only: moa's MCP is stateless, so a GET would only hold a server-sent event
    # stream open (a socket and memory per client) with nothing ever to send; the MCP spec
    # lets a server answer it 405.
    app.router.routes.append(Route("/mcp", mcp, methods=["POST"]))
    app.add_middleware(BodyLimit, max_bytes=config.server.max_body_bytes)
    app.add_middleware(Draining, drain=drain)  # inside RequestScope: refusals get logged
    app.add_middleware(RequestScope, trusted_proxies=config.server.trusted_proxies)
    app.state.drain = drain
    return app


def _breakers(settings: Settings) -> Breakers | None:
    """Shared breaker state in Redis when ``redis_url`` is set, else per process."""
    if not settings.server.redis_url:
        return None
    from moa.routing.redis_breakers import RedisBreakers

    return RedisBreakers(
        settings.server.redis_url,
        failures=settings.engine.breaker_failures,
        cooldown_s=settings.engine.breaker_cooldown_s,
        keys=settings.engine.breaker_keys,
    )
