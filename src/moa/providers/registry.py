"""Resolve ``provider/model`` ids to a Provider instance and the provider's own model name.

Providers are created on first use and kept, so every call to one base URL shares one
connection pool. Unknown providers and missing keys fail here, before any work is done.
"""

from __future__ import annotations

from moa.config import ProviderConfig, Settings
from moa.errors import ConfigError, MissingKeyError
from moa.providers.base import Provider
from moa.types import check_model_id


class ProviderRegistry:
    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._providers: dict[str, Provider] = {}

    def resolve(self, model_id: str) -> tuple[Provider, str]:
        """The provider that serves ``model_id`` and the model name to send it."""
        check_model_id(model_id)
        name, _, model = model_id.partition("/")
        provider = self._providers.get(name)
        if provider is None:
            provider = self._providers[name] = self._create(name)
        return provider, model

    def check(self, model_id: str) -> None:
        """Raise ConfigError now if ``model_id`` could not be called."""
        self.resolve(model_id)

    def _create(self, name: str) -> Provider:
        config = self._settings.provider(name)
        if config is None:
            known = sorted({*self._settings.providers, "openai", "anthropic", "gemini", "local"})
            raise ConfigError(
                f"unknown provider {name!r}: use one of {', '.join(known)}, "
                f"or add [providers.{name}] to moa.toml"
            )
        connect = self._settings.engine.connect_timeout_s
        if config.kind == "local":
            from moa.providers.local import LocalProvider

            return LocalProvider(
                name, model_path=config.model_path, pool_size=self._settings.engine.local_pool_size
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
