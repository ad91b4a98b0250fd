"""How each protocol's provider fails: moa's own reason for the client, the upstream's words
for the operator's log, and the right blame (a bug in moa is never an upstream failure)."""

from __future__ import annotations

import logging
import socket

import pytest

from moa.errors import ProviderError
from moa.providers.base import ChatCall, Provider
from moa.providers.failures import BODY_LOG_LIMIT
from moa.providers.registry import ProviderRegistry
from moa.testing import ScriptedUpstream
from moa.types import Message
from tests.providers.conftest import KEY, PROTOCOLS, call, provider_settings, streamed

REASONS = {
    400: "HTTP 400: the upstream rejected the request",
    401: "HTTP 401: the upstream refused moa's credentials for it",
    404: "HTTP 404: the upstream does not know this model",
    429: "HTTP 429: rate limited by the upstream",
    500: "HTTP 500: the upstream failed",
    529: "HTTP 529: the upstream is overloaded",
    599: "HTTP 599: the upstream failed",
}


async def fail(provider: Provider, chat: ChatCall, *, stream: bool = False) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        if stream:
            await streamed(provider, chat)
        else:
            await provider.complete(chat)
    return caught.value


@pytest.mark.parametrize("status", list(REASONS))
async def test_an_error_status_reaches_the_client_as_moas_reason_only(
    provider: Provider, upstream: ScriptedUpstream, status: int
) -> None:
    upstream.script("alpha", status=status, error_message="internal host 10.0.0.7 says no")

    error = await fail(provider, call())

    assert str(error) == REASONS[status]
    assert error.status == status
    assert error.upstream_fault == (status >= 500 or status == 429)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_the_upstreams_error_body_goes_to_the_log_with_the_model_id(
    provider: Provider,
    protocol: str,
    upstream: ScriptedUpstream,
    caplog: pytest.LogCaptureFixture,
    stream: bool,
) -> None:
    upstream.script("alpha", status=404, error_message="no such model, try alpha-2")

    with caplog.at_level(logging.WARNING, logger="moa.providers"):
        await fail(provider, call(), stream=stream)

    [record] = [r for r in caplog.records if r.name == "moa.providers"]
    assert record.levelno == logging.WARNING
    assert record.getMessage().startswith(f"{PROTOCOLS[protocol]}/alpha: upstream HTTP 404: ")
    assert "no such model, try alpha-2" in record.getMessage()


async def test_the_logged_body_is_truncated_and_never_shows_the_key(
    provider: Provider, upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.script("alpha", status=401, error_message=f"bad key {KEY}; " + "x" * 50_000)

    with caplog.at_level(logging.WARNING, logger="moa.providers"):
        await fail(provider, call())

    logged = caplog.records[-1].getMessage()
    assert KEY not in logged
    assert "bad key [redacted]" in logged
    assert len(logged) < BODY_LOG_LIMIT + 100


async def test_retry_after_is_read_from_the_upstreams_error(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", status=429, retry_after=1.5)

    error = await fail(provider, call())

    assert error.retry_after == 1.5
    assert error.retryable


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_a_redirect_is_not_followed_so_the_key_goes_nowhere_else(
    provider: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", redirect=True)  # back to the same URL: a follower asks again

    error = await fail(provider, call(), stream=stream)

    assert str(error) == "HTTP 307: the upstream redirected the request (moa follows no redirects)"
    assert (error.retryable, error.upstream_fault) == (False, False)
    assert len(upstream.calls("alpha")) == 1


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_broken_json_is_a_bad_response_from_the_upstream(
    provider: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", malformed=True)

    error = await fail(provider, call(), stream=stream)

    assert str(error).startswith("the upstream sent a bad response: ")
    assert "not JSON" in str(error)
    assert (error.status, error.retryable, error.upstream_fault) == (None, True, True)


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_json_of_the_wrong_shape_is_a_bad_response_not_a_crash(
    provider: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    upstream.script("alpha", misshapen=True)

    error = await fail(provider, call(), stream=stream)

    assert str(error).startswith("the upstream sent a bad response: ")
    assert "not a JSON object" in str(error)
    assert error.upstream_fault


async def test_an_error_event_mid_stream_fails_the_stream_with_moas_reason(
    provider: Provider, upstream: ScriptedUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    upstream.script("alpha", error_after=2, error_message="shard 7 overloaded")

    with caplog.at_level(logging.WARNING, logger="moa.providers"):
        error = await fail(provider, call(), stream=True)

    assert str(error) == "the upstream failed mid-stream"
    assert error.upstream_fault
    assert "shard 7 overloaded" in caplog.records[-1].getMessage()


async def test_a_stream_cut_mid_reply_is_a_transport_failure(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", cut_after=2)

    error = await fail(provider, call(), stream=True)

    assert str(error) == "the upstream's reply was cut off or was not valid HTTP"
    assert (error.status, error.retryable, error.upstream_fault) == (None, True, True)


async def test_a_body_cut_mid_reply_is_a_transport_failure(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", cut_after=0)

    error = await fail(provider, call())

    assert str(error) == "the upstream's reply was cut off or was not valid HTTP"


async def test_a_stalled_upstream_times_out_at_the_calls_timeout_and_is_hung_up_on(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    upstream.script("alpha", stall=True)

    error = await fail(provider, call(timeout_s=0.3))
    await upstream.wait_for_async(lambda: upstream.calls("alpha")[0].disconnected)

    assert str(error) == "timed out waiting for the upstream"
    assert (error.retryable, error.upstream_fault) == (True, True)


async def test_a_refused_connection_says_moa_could_not_connect(
    protocol: str, upstream: ScriptedUpstream
) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    name = PROTOCOLS[protocol]
    registry = ProviderRegistry(provider_settings(upstream, f"http://127.0.0.1:{closed}"))
    await registry.prepare([f"{name}/alpha"])  # clients are built off the event loop
    try:
        error = await fail(registry.resolve(f"{name}/alpha")[0], call(timeout_s=5))
    finally:
        await registry.aclose()

    assert str(error) == "could not connect to the upstream"
    assert error.upstream_fault


@pytest.mark.parametrize("stream", [False, True], ids=["whole", "stream"])
async def test_text_that_cannot_be_encoded_is_the_requests_fault_and_never_sent(
    provider: Provider, upstream: ScriptedUpstream, stream: bool
) -> None:
    # Messages refuse such text (a 400 at the server); build one anyway, as text from
    # elsewhere in a call (a schema, a stop string) could still carry it.
    unencodable = Message.model_construct(role="user", content="lone surrogate \ud800 here")
    error = await fail(provider, call(messages=[unencodable]), stream=stream)

    assert "cannot be encoded" in str(error)
    assert (error.retryable, error.upstream_fault) == (False, False)
    assert upstream.requests == []


async def test_a_bug_in_moa_is_not_disguised_as_an_upstream_failure(
    provider: Provider, upstream: ScriptedUpstream
) -> None:
    broken = ChatCall("alpha", [object()])  # type: ignore[list-item]

    with pytest.raises(AttributeError):
        await provider.complete(broken)
