"""moa.toml + environment -> one typed Settings object, built once.

Nothing else in moa reads the environment: the variables a provider needs are copied into
``Settings.env`` here, so tests and servers can build Settings from plain dicts.
"""

from __future__ import annotations

import ipaddress
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from moa.errors import ConfigError
from moa.types import Layers, Samples, StrategyName, TokenUsage, Usage
from moa.validation import describe_errors

ProviderKind = Literal["openai", "anthropic", "gemini", "local"]


class ProviderConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    kind: ProviderKind = "openai"
    base_url: str | None = None
    api_key: str | None = None
    api_key_env: str | None = None
    max_concurrency: int | None = Field(None, ge=1)
    model_path: str | None = None  # kind = "local": a GGUF file; default the shipped SmolLM2


BUILTIN_PROVIDERS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig(base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"),
    "anthropic": ProviderConfig(kind="anthropic", api_key_env="ANTHROPIC_API_KEY"),
    "gemini": ProviderConfig(kind="gemini", api_key_env="GEMINI_API_KEY"),
    "openrouter": ProviderConfig(
        base_url="https://openrouter.ai/api/v1", api_key_env="OPENROUTER_API_KEY"
    ),
    "together": ProviderConfig(
        base_url="https://api.together.xyz/v1", api_key_env="TOGETHER_API_KEY"
    ),
    "groq": ProviderConfig(base_url="https://api.groq.com/openai/v1", api_key_env="GROQ_API_KEY"),
    "deepseek": ProviderConfig(
        base_url="https://api.deepseek.com/v1", api_key_env="DEEPSEEK_API_KEY"
    ),
    "mistral": ProviderConfig(base_url="https://api.mistral.ai/v1", api_key_env="MISTRAL_API_KEY"),
    "ollama": ProviderConfig(base_url="http://127.0.0.1:11434/v1", api_key="ollama"),
    "vllm": ProviderConfig(base_url="http://127.0.0.1:8000/v1", api_key="vllm"),
    "llamacpp": ProviderConfig(base_url="http://127.0.0.1:8080/v1", api_key="llamacpp"),
    "local": ProviderConfig(kind="local"),
}
# Built-ins that need no key: on a server they would let any client reach services on the
# server's own ports (or burn its CPU on the embedded model), so HTTP clients get them
# only when moa.toml declares them.
KEYLESS_PROVIDERS = frozenset({"local", "ollama", "vllm", "llamacpp"})
#: The admin token is a password to every key: a short one could be guessed.
MIN_ADMIN_TOKEN = 16


def check_admin_token(value: str, where: str = "") -> str:
    if value and len(value) < MIN_ADMIN_TOKEN:
        raise ValueError(f"{where}must be empty or at least {MIN_ADMIN_TOKEN} characters")
    return value


class ModelConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    input_usd_per_mtok: float = Field(0.0, ge=0)
    output_usd_per_mtok: float = Field(0.0, ge=0)


class CreditCosts(BaseModel):
    model_config = ConfigDict(extra="forbid")

    chat: int = Field(1, ge=0)
    compare: int = Field(3, ge=0)
    blend: int = Field(4, ge=0)
    judge: int = Field(5, ge=0)


class ServerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    # Empty: moa.db in the user data directory (see user_data_dir); MOA_DATABASE_URL wins.
    database_url: str = ""
    database_schema: str | None = None  # PostgreSQL only: keep moa's tables in this schema
    redis_url: str = ""
    rate_limit_per_minute: int = Field(600, ge=1)
    rate_limit_burst: int = Field(100, ge=1)
    ip_rate_limit_per_minute: int | None = Field(None, ge=1)
    max_body_bytes: int = Field(1_000_000, ge=1024)
    max_message_chars: int = Field(200_000, ge=1)
    key_inflight: int = Field(16, ge=1)  # concurrent paid requests per key
    # How long a process trusts a key it has just read; a revocation reaches every replica
    # within this. 0 reads the key row on every request.
    auth_cache_s: float = Field(0.5, ge=0, le=1)
    trusted_proxies: list[str] = []  # IPs or CIDRs whose X-Forwarded-For is believed
    credits: CreditCosts = CreditCosts()
    # A reservation is a lease its process renews every third of this; one not renewed
    # for this long belongs to a dead process and any server refunds it.
    reservation_lease_s: float = Field(30.0, ge=1, le=3600)
    # SIGTERM: in-flight requests get this long to finish, then end with `shutting_down`.
    shutdown_grace_s: float = Field(10.0, ge=0, le=3600)
    # The bearer token of /admin/v1 (empty: those routes answer 404); MOA_ADMIN_TOKEN wins.
    admin_token: str = Field("", repr=False)

    @field_validator("admin_token")
    @classmethod
    def _long_enough(cls, value: str) -> str:
        return check_admin_token(value)

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or CIDR") from exc
        return value


class EngineConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    source_timeout_s: float = Field(60.0, gt=0)
    min_timeout_s: float = Field(1.0, gt=0)  # the least a request may ask for
    synthesis_timeout_s: float = Field(120.0, gt=0)
    connect_timeout_s: float = Field(10.0, gt=0)
    max_retries: int = Field(2, ge=0, le=10)
    retry_backoff_s: float = Field(0.25, ge=0)
    retry_backoff_max_s: float = Field(8.0, ge=0)
    retry_budget_ratio: float = Field(0.2, ge=0, le=1)
    breaker_failures: int = Field(3, ge=1)
    breaker_cooldown_s: float = Field(30.0, gt=0)
    breaker_keys: int = Field(2, ge=1)  # tenants whose failures it takes to open a breaker
    key_provider_share: float = Field(0.5, gt=0, le=1)  # of a provider's slots, per key
    max_inflight: int = Field(512, ge=1)
    provider_inflight: int = Field(128, ge=1)
    # The embedded model (kind = "local"); defaults measured in bench/README.
    local_pool_size: int = Field(2, ge=1, le=8)  # contexts per local provider
    local_threads: int = Field(1, ge=1, le=64)  # llama.cpp threads per context
    local_context_tokens: int = Field(4096, ge=512, le=131072)
    local_max_tokens: int = Field(64, ge=1, le=8192)  # when a call sets no max_tokens
    local_samples: int = Field(2, ge=2, le=8)  # self_moa/vote default when all models are local
    local_timeout_s: float = Field(120.0, gt=0)  # source/synthesis timeout of a local call


class PresetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: list[str] = Field(min_length=1)
    synthesizer: str | None = None
    strategy: StrategyName = "consensus"
    layers: Layers = 1
    samples: Samples = 4


class DefaultsConfig(BaseModel):
    """What ``moa blend`` uses when no ``-m`` is given."""

    model_config = ConfigDict(extra="forbid")

    models: list[str] = ["local/smollm2"]
    strategy: StrategyName | None = None


class Settings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    providers: dict[str, ProviderConfig] = {}
    models: dict[str, ModelConfig] = {}
    server: ServerConfig = ServerConfig()
    engine: EngineConfig = EngineConfig()
    presets: dict[str, PresetConfig] = {}
    defaults: DefaultsConfig = DefaultsConfig()
    env: dict[str, str] = Field(default_factory=dict, exclude=True)
    source: str = "defaults"
    _for_clients: bool = PrivateAttr(False)

    @model_validator(mode="after")
    def _resolve_database(self) -> Settings:
        """``MOA_DATABASE_URL``, else moa.toml's ``database_url``, else the user's default
        database, so every command in every directory finds the same keys."""
        url = self.env.get("MOA_DATABASE_URL") or self.server.database_url
        if not url:
            url = f"sqlite+aiosqlite:///{self.data_dir / 'moa.db'}"
        if url != self.server.database_url:
            self.server = self.server.model_copy(update={"database_url": url})
        return self

    @model_validator(mode="after")
    def _resolve_admin_token(self) -> Settings:
        """``MOA_ADMIN_TOKEN``, else moa.toml's ``admin_token`` (a secret is better kept
        out of a file that is shared or committed)."""
        token = self.env.get("MOA_ADMIN_TOKEN", "").strip()
        if token and token != self.server.admin_token:
            check_admin_token(token, "MOA_ADMIN_TOKEN: ")
            self.server = self.server.model_copy(update={"admin_token": token})
        return self

    @property
    def data_dir(self) -> Path:
        """Where moa keeps its own files (the default database, the demo key)."""
        return user_data_dir(self.env)

    def provider(self, name: str) -> ProviderConfig | None:
        """moa.toml's provider of this name, else the built-in one (keyless built-ins only
        if declared, when serving clients)."""
        if name in self.providers:
            return self.providers[name]
        if self._for_clients and name in KEYLESS_PROVIDERS:
            return None
        return BUILTIN_PROVIDERS.get(name)

    def provider_names(self) -> list[str]:
        """Every provider name a model id may use."""
        return sorted(n for n in {*BUILTIN_PROVIDERS, *self.providers} if self.provider(n))

    def for_clients(self) -> Settings:
        """These settings as a server applies them to HTTP clients: keyless built-ins need
        a ``[providers.<name>]`` in moa.toml, except that with no moa.toml at all the
        embedded model is declared (the zero-config demo)."""
        providers = dict(self.providers)
        if self.source == "defaults":
            providers.setdefault("local", BUILTIN_PROVIDERS["local"])
        served = self.model_copy(update={"providers": providers})
        served._for_clients = True
        return served

    @property
    def serves_clients(self) -> bool:
        return self._for_clients

    def price(self, model_id: str) -> ModelConfig:
        return self.models.get(model_id) or ModelConfig()

    def usage_of(self, model_id: str, tokens: TokenUsage, calls: int = 1) -> Usage:
        """What ``calls`` calls of ``model_id`` that used ``tokens`` cost, priced."""
        price = self.price(model_id)
        cost = (
            tokens.prompt_tokens * price.input_usd_per_mtok
            + tokens.completion_tokens * price.output_usd_per_mtok
        ) / 1_000_000
        return Usage(
            calls=calls,
            prompt_tokens=tokens.prompt_tokens,
            completion_tokens=tokens.completion_tokens,
            cost_usd=round(cost, 8),
        )


def user_data_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_DATA_HOME/moa``, else ``~/.local/share/moa`` (the XDG base directory rules:
    an empty or relative ``XDG_DATA_HOME`` is ignored). Created on first use, not here."""
    xdg = env.get("XDG_DATA_HOME", "")
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "moa"
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    return home / ".local" / "share" / "moa"


def find_config(explicit: str | Path | None, env: Mapping[str, str]) -> Path | None:
    """``--config PATH``, else ``$MOA_CONFIG``, else ``./moa.toml`` if it exists."""
    if explicit:
        return Path(explicit)
    if env.get("MOA_CONFIG"):
        return Path(env["MOA_CONFIG"])
    default = Path("moa.toml")
    return default if default.is_file() else None


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the config file (if any) and the environment into Settings."""
    environ = dict(os.environ if env is None else env)
    found = find_config(path, environ)
    data: dict[str, object] = {}
    if found is not None:
        try:
            data = tomllib.loads(found.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise ConfigError(f"config file {found} does not exist") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {found} is not valid TOML: {exc}") from exc
    return settings_from_dict(data, environ, source=str(found) if found else "defaults")


def settings_from_dict(
    data: Mapping[str, object], env: Mapping[str, str] | None = None, source: str = "dict"
) -> Settings:
    try:
        return Settings.model_validate({**data, "env": dict(env or {}), "source": source})
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(exc.errors())}") from exc
