"""moa's exceptions, each carrying the public error code of DESIGN.md.

    MoaError (code, message, http_status)
    ├── InvalidRequest         400 invalid_request: a field is wrong; the message names it
    ├── ConfigError            400 invalid_request: moa.toml or a model id cannot be used
    │   └── MissingKeyError    the provider's key is not set; names the variable to set
    ├── BlendFailed            502 all_sources_failed | synthesis_failed, 504 timeout
    └── ProviderError          one upstream call failed (status, retry_after, retryable)
        └── CircuitOpen        the model's breaker is open; the call was never made

Vendor SDK errors are translated into ProviderError at the provider boundary, so nothing
above ``moa.providers`` ever sees an SDK or HTTP-library exception.
"""

from __future__ import annotations

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class MoaError(Exception):
    code = "error"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class InvalidRequest(MoaError):
    code = "invalid_request"
    http_status = 400


class ConfigError(InvalidRequest):
    """The configuration (or a model id) cannot be used as given."""


class MissingKeyError(ConfigError):
    def __init__(self, provider: str, env_var: str) -> None:
        super().__init__(
            f"no API key for provider {provider!r}: set the environment variable {env_var} "
            f"or api_key in [providers.{provider}] of moa.toml"
        )
        self.provider = provider
        self.env_var = env_var


class BlendFailed(MoaError):
    http_status = 502

    def __init__(self, message: str, *, code: str = "all_sources_failed") -> None:
        super().__init__(message, code=code)
        self.http_status = 504 if code == "timeout" else 502


class ProviderError(MoaError):
    """One upstream call failed. ``status`` is the HTTP status, or None for transport
    errors (connection refused, reset, cut stream, timeout)."""

    code = "provider_error"
    http_status = 502

    def __init__(
        self,
        message: str,
        *,
        model: str = "",
        status: int | None = None,
        retry_after: float | None = None,
        retryable: bool | None = None,
        upstream_fault: bool | None = None,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status = status
        self.retry_after = retry_after
        self.retryable = (
            (status is None or status in RETRYABLE_STATUSES) if retryable is None else retryable
        )
        # Did the upstream (not this request) cause the failure? Only such failures move a
        # breaker that every key shares: 5xx, 429, connection errors, bad replies, and
        # timeouts at the configured timeout. A 400, content moa could not send, or a
        # request's own short timeout is the request's problem.
        self.upstream_fault = (
            (status is None or status >= 500 or status == 429)
            if upstream_fault is None
            else upstream_fault
        )

    def __str__(self) -> str:
        return f"HTTP {self.status}: {self.message}" if self.status else self.message


class CircuitOpen(ProviderError):
    def __init__(self, model: str) -> None:
        super().__init__("circuit_open", model=model, retryable=False)
