"""Retry-After as upstreams send it: seconds, milliseconds (OpenAI's retry-after-ms) or an
HTTP date; anything unreadable is no advice rather than an error."""

from __future__ import annotations

import time
from email.utils import formatdate

import pytest

from moa.providers.retry_after import parse_retry_after


@pytest.mark.parametrize(
    "headers, seconds",
    [
        ({"retry-after": "2.5"}, 2.5),
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
        ({"retry-after": "-4"}, 0.0),
        ({"retry-after": "tomorrow"}, None),
        ({}, None),
        (None, None),
    ],
)
def test_retry_after_is_read_in_each_form_upstreams_use(
    headers: dict[str, str] | None, seconds: float | None
) -> None:
    assert parse_retry_after(headers) == seconds


def test_an_http_date_is_the_seconds_until_then() -> None:
    later = formatdate(time.time() + 60, usegmt=True)

    wait = parse_retry_after({"retry-after": later})

    assert wait is not None
    assert 50 <= wait <= 60
