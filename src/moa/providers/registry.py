"""Resolve ``provider/model`` ids to a Provider instance and the provider's own model name.

Providers are created once and kept, so every call to one base URL shares one connection
pool. Unknown providers and missing keys fail in ``check``, before any work is done.
``prepare`` creates providers in a worker thread: importing an adapter (and, for ``local``,
llama.cpp) and reading the proxy settings must not stall the event loop on a server's first
request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from moa.config import KEYLESS_PROVIDERS, ProviderConfig, Settings
from moa.errors import ConfigError, MissingKeyError
from moa.providers.base import Provider
from moa.types import check_model_id


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._providers: dict[str, Provider] = {}
        self._creating: dict[str, asyncio.Future[Provider]] = {}

    def resolve(self, model_id: str) -> tuple[Provider, str]:
        """The provider that serves ``model_id`` and the model name to send it."""
        check_model_id(model_id)
        name, _, model = model_id.partition("/")
        provider = self._providers.get(name)
        if provider is None:
            provider = self._providers[name] = self._create(name)
        return provider, model

    def created(self, name: str) -> Provider | None:
        """Provider ``name`` if a call (or ``prepare``) has created it, else None."""
        return self._providers.get(name)

    def check(self, model_id: str) -> None:
        """Raise ConfigError now if ``model_id`` could not be called (nothing is created)."""
        check_model_id(model_id)
        name = model_id.partition("/")[0]
        if name not in self._providers:
            config = self._config(name)
            self._api_key(name, config)
            if config.kind == "openai" and not config.base_url:
                raise ConfigError(f"[providers.{name}] needs base_url for kind = 'openai'")

    async def prepare(self, model_ids: Iterable[str]) -> None:
        """Create the providers these models need, off the event loop."""
        for name in dict.fromkeys(m.partition("/")[0] for m in model_ids):
            if name in self._providers:
                continue
            # Concurrent first requests share one creation instead of racing to build
            # (and leak) a client each.
            creating = self._creating.get(name)
            if creating is None:
                creating = self._creating[name] = asyncio.ensure_future(
                    asyncio.to_thread(self._create, name)
                )
            try:
                provider = await asyncio.shield(creating)
            finally:
                if creating.done():
                    self._creating.pop(name, None)
            self._providers.setdefault(name, provider)

    def _config(self, name: str) -> ProviderConfig:
        config = self._settings.provider(name)
        if config is None and name in KEYLESS_PROVIDERS:
            raise ConfigError(
                f"provider {name!r} is not enabled on this server: keyless local providers "
                f"serve clients only when the operator declares [providers.{name}] in moa.toml"
            )
        if config is None:
            known = self._settings.provider_names()
            raise ConfigError(
                f"unknown provider {name!r}: use one of {', '.join(known)}, "
                f"or add [providers.{name}] to moa.toml"
            )
        return config

    def _create(self, name: str) -> Provider:
        config = self._config(name)
        connect = self._settings.engine.connect_timeout_s
        if config.kind == "local":
            from moa.providers.local import LocalProvider

            engine = self._settings.engine
            return LocalProvider(
                name,
                model_path=config.model_path,
                pool_size=engine.local_pool_size,
                threads=engine.local_threads,
                context_tokens=engine.local_context_tokens,
                max_tokens=engine.local_max_tokens,
            )
        key = self._api_key(name, config)
        if config.kind == "anthropic":
            from moa.providers.anthropic import AnthropicProvider

            return AnthropicProvider(
                name, api_key=key, base_url=config.base_url, connect_timeout_s=connect
            )
        if config.kind == "gemini":
            from moa.providers.gemini import GeminiProvider

            return GeminiProvider(
                name, api_key=key, base_url=config.base_url, connect_timeout_s=connect
            )
        from moa.providers.openai_compat import OpenAICompatProvider

        if not config.base_url:
            raise ConfigError(f"[providers.{name}] needs base_url for kind = 'openai'")
        return OpenAICompatProvider(
            name, base_url=config.base_url, api_key=key, connect_timeout_s=connect
        )

    def _api_key(self, name: str, config: ProviderConfig) -> str:
        if config.api_key:
            return config.api_key
        if config.api_key_env:
            key = self._settings.env.get(config.api_key_env, "")
            if not key:
                raise MissingKeyError(name, config.api_key_env)
            return key
        return "not-needed"  # a keyless local server (Ollama, vLLM, llama.cpp)

    async def aclose(self) -> None:
        for provider in self._providers.values():
            await provider.aclose()
        self._providers.clear()
