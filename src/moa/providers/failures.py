"""How a call to an upstream fails, said once for every wire protocol.

Every adapter's failures become ``ProviderError`` here; ``transport.py`` catches the HTTP
client's own exception types (and nothing else, so a bug in moa surfaces as the bug it is
instead of being retried as an upstream failure) and names them with these words.

What the client sees is the status and a short reason moa wrote (``HTTP 404: the upstream
does not know this model``), never the upstream's own words: an upstream may be any service
an operator points moa at, and its error body is not the client's to read. The body goes to
the ``moa.providers`` log (WARNING, with the model id, truncated, the provider's key
redacted) for the operator.

    kind of failure         message (reason)                        status  upstream_fault
    HTTP error status       REASONS[status]                         status  5xx and 429 only
    redirect (not followed) the upstream redirected the request...  status  no
    timeout                 timed out waiting for the upstream      None    yes
    connection, cut reply   could not connect / ... cut off         None    yes
    bad response            the upstream sent a bad response: ...   None    yes
    error event mid-stream  the upstream failed mid-stream          None    yes
    safety block            the upstream's safety filter blocked... None    no (not retried)
    unencodable text        the request has text that cannot ...    None    no (not retried)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from moa.errors import ProviderError
from moa.providers.retry_after import parse_retry_after

log = logging.getLogger("moa.providers")

BODY_LOG_LIMIT = 4096
"""Characters of an upstream's error body kept in the log: enough to diagnose, bounded."""

REASONS: dict[int, str] = {
    400: "the upstream rejected the request",
    401: "the upstream refused moa's credentials for it",
    403: "the upstream refused access",
    404: "the upstream does not know this model",
    408: "the upstream timed out",
    413: "the request is too large for the upstream",
    422: "the upstream rejected the request",
    429: "rate limited by the upstream",
    500: "the upstream failed",
    502: "the upstream's gateway failed",
    503: "the upstream is unavailable",
    504: "the upstream's gateway timed out",
    529: "the upstream is overloaded",
}
OVERLOADED = frozenset({529})
"""Anthropic's "overloaded": a temporary failure worth retrying, like a 503."""

COULD_NOT_CONNECT = "could not connect to the upstream"
CUT_OFF = "the upstream's reply was cut off or was not valid HTTP"
CONNECTION_FAILED = "the connection to the upstream failed"
TIMED_OUT = "timed out waiting for the upstream"


def reason(status: int) -> str:
    """moa's own words for an upstream's HTTP status."""
    known = REASONS.get(status)
    if known is not None:
        return known
    if 300 <= status < 400:  # a redirect would carry the key to wherever it points
        return "the upstream redirected the request (moa follows no redirects)"
    return "the upstream failed" if status >= 500 else "the upstream rejected the request"


class Failures:
    """Builds the ProviderError for each way a call to one provider fails, and logs what the
    upstream said where only the operator reads it (with this provider's key redacted)."""

    def __init__(self, provider: str, api_key: str) -> None:
        self.provider = provider
        # A short placeholder ("not-needed") would redact innocent words, and is no secret.
        self._secret = api_key if len(api_key) >= 8 else None

    def model_id(self, model: str) -> str:
        return f"{self.provider}/{model}"

    def status(
        self,
        model: str,
        status: int,
        body: str,
        headers: Mapping[str, str] | None = None,
        *,
        retry_after: float | None = None,
    ) -> ProviderError:
        """An HTTP error status; Retry-After from the headers unless the protocol found one."""
        self.note(model, f"HTTP {status}", body)
        if retry_after is None:
            retry_after = parse_retry_after(headers)
        return ProviderError(
            reason(status),
            model=self.model_id(model),
            status=status,
            retry_after=retry_after,
            retryable=True if status in OVERLOADED else None,  # others: errors.py decides
        )

    def bad_response(self, model: str, detail: str, body: str | None = None) -> ProviderError:
        """A reply of the wrong shape: upstream's fault; ``detail`` is moa's own words."""
        self.note(model, f"bad response ({detail})", body)
        return ProviderError(
            f"the upstream sent a bad response: {detail}", model=self.model_id(model)
        )

    def cut_short(self, model: str) -> ProviderError:
        """A stream that ended without its protocol's end marker."""
        return ProviderError(
            "the upstream's stream ended before the answer finished", model=self.model_id(model)
        )

    def mid_stream(self, model: str, event: bytes) -> ProviderError:
        """An error event inside a stream that started well."""
        self.note(model, "error event mid-stream", event.decode(errors="replace"))
        return ProviderError("the upstream failed mid-stream", model=self.model_id(model))

    def blocked(self, model: str, what: str, code: str | None = None) -> ProviderError:
        """The upstream's safety filter withheld the answer: the request's content caused it,
        so it moves no shared breaker and is not retried. ``code`` is shown only when it
        looks like an enum name (``SAFETY``), never as free text."""
        known = code if code and code.isidentifier() and code.isupper() and len(code) <= 40 else ""
        suffix = f" ({known})" if known else ""
        return ProviderError(
            f"the upstream's safety filter blocked the {what}{suffix}",
            model=self.model_id(model),
            retryable=False,
            upstream_fault=False,
        )

    def unsendable(self, model: str) -> ProviderError:
        return ProviderError(
            "the request has text that cannot be encoded as UTF-8 (e.g. a lone surrogate)",
            model=self.model_id(model),
            retryable=False,
            upstream_fault=False,
        )

    def connection(
        self, model: str, cause: BaseException, message: str = CONNECTION_FAILED
    ) -> ProviderError:
        """A transport failure (``message``: one of the reasons above). The cause's text may
        quote what the peer sent (a banner, a bad status line), so it is logged and the
        client gets moa's reason."""
        log.warning("%s: transport failure: %r", self.model_id(model), cause)
        return ProviderError(message, model=self.model_id(model))

    def note(self, model: str, what: str, body: str | None) -> None:
        """Log what the upstream said (redacted, truncated) for the operator."""
        text = body or ""
        if self._secret:  # redact before cutting, so no prefix of the key survives the cut
            text = text[: BODY_LOG_LIMIT + len(self._secret)].replace(self._secret, "[redacted]")
        text = text[:BODY_LOG_LIMIT]
        log.warning("%s: upstream %s: %s", self.model_id(model), what, text)
