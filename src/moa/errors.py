"""moa's exceptions, each carrying a public error code; ``ERROR_CODES`` is the one table
from code to HTTP status (the server's responses and its OpenAPI document both read it).

    MoaError (code, message, http_status)
    ├── InvalidRequest         400 invalid_request: a field is wrong; the message names it
    ├── ConfigError            400 invalid_request: moa.toml or a model id cannot be used
    │   └── MissingKeyError    the provider's key is not set; names the variable to set
    ├── RequestFailed          502 all_sources_failed | synthesis_failed, 504 timeout,
    │                          503 shutting_down, 500 internal_error (alias BlendFailed)
    └── ProviderError          one upstream call failed (status, retry_after, retryable)
        └── CircuitOpen        the model's breaker is open; the call was never made

HTTP-library errors are translated into ProviderError at the provider boundary, so nothing
above ``moa.providers`` ever sees an HTTP-library exception.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from moa.types import Usage

RETRYABLE_STATUSES = frozenset({408, 409, 425, 429, 500, 502, 503, 504})

ERROR_CODES: dict[str, tuple[int, str]] = {
    "invalid_request": (400, "a field is wrong; the message names it and what is allowed"),
    "unauthorized": (401, "no API key, or one that is unknown or revoked"),
    "insufficient_credits": (402, "the key's credits do not cover the request's price"),
    "budget_exceeded": (402, "the key has spent its USD budget"),
    "model_not_allowed": (403, "the key may not use a model the request names"),
    "not_found": (404, "no such route or resource"),
    "method_not_allowed": (405, "the route does not take this method"),
    "request_too_large": (413, "the body or a message is over the server's limit"),
    "rate_limited": (429, "a rate or in-flight limit was hit; see Retry-After"),
    "internal_error": (500, "a bug in moa; never bad input (credits refunded)"),
    "all_sources_failed": (502, "no source answered (credits refunded)"),
    "synthesis_failed": (502, "the sources answered, the synthesizer failed (their share paid)"),
    "provider_error": (502, "the upstream failed"),
    "shutting_down": (503, "the server is stopping; retry (finished work is charged)"),
    "timeout": (504, "the request passed its deadline (finished calls are charged)"),
}


def http_status(code: str) -> int:
    return ERROR_CODES.get(code, (500, ""))[0]


class MoaError(Exception):
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        # What the work had used when it failed, if it had started: billing records it.
        self.usage: Usage | None = None

    @property
    def http_status(self) -> int:
        return http_status(self.code)


class InvalidRequest(MoaError):
    code = "invalid_request"


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


class RequestFailed(MoaError):
    """A blend, chat, compare or judge produced no answer: ``code`` says why."""

    def __init__(self, message: str, *, code: str = "all_sources_failed") -> None:
        super().__init__(message, code=code)


BlendFailed = RequestFailed  # the name of the Python API before 0.2; kept for its users


class ProviderError(MoaError):
    """One upstream call failed. ``status`` is the HTTP status, or None for transport
    errors (connection refused, reset, cut stream, timeout)."""

    code = "provider_error"

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
