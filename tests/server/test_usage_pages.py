"""GET /api/v1/usage a page at a time: ``limit``, ``cursor`` from the previous page's
``next_cursor``, ``since`` and ``until``; bad values are a 400 naming the parameter."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from moa.store import Store, UsageRecord
from moa.testing.served import ServedApp
from tests.server.helpers import USER, error_of

DAY = datetime(2026, 11, 2, tzinfo=UTC)


async def _recorded(
    store: Store, key_id: str, count: int, start: datetime = DAY, prefix: str = "req"
) -> None:
    for n in range(count):
        created_at = start + timedelta(hours=n)
        record = UsageRecord(
            request_id=f"{prefix}_{n}", key_id=key_id, route="/api/v1/chat", created_at=created_at
        )
        await store.record_usage(record)


async def _pages(client: httpx.AsyncClient, **query: Any) -> list[dict[str, Any]]:
    pages: list[dict[str, Any]] = []
    cursor: str | None = None
    while not pages or cursor is not None:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/usage", params=params)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        cursor = pages[-1]["next_cursor"]
    return pages


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [r["request_id"] for page in pages for r in page["requests"]]


async def test_following_next_cursor_lists_every_request_once_newest_first(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    await _recorded(store, key_id, 5)
    pages = await _pages(client, limit=2)
    assert [len(page["requests"]) for page in pages] == [2, 2, 1]
    assert _ids(pages) == [f"req_{n}" for n in (4, 3, 2, 1, 0)]
    assert pages[-1]["next_cursor"] is None


async def test_requests_recorded_while_paging_are_neither_listed_twice_nor_shift_a_page(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    await _recorded(store, key_id, 4)
    first = (await client.get("/api/v1/usage", params={"limit": 2})).json()
    await _recorded(store, key_id, 2, start=DAY + timedelta(days=1), prefix="new")
    rest = await _pages(client, limit=2, cursor=first["next_cursor"])
    assert _ids([first, *rest]) == ["req_3", "req_2", "req_1", "req_0"]


async def test_a_page_keeps_the_balance_and_every_field_of_a_request(
    client: httpx.AsyncClient,
) -> None:
    await client.post("/api/v1/chat", json={"model": "fake/alpha", "messages": USER})
    [page] = await _pages(client)
    assert (page["credits_remaining"], page["next_cursor"]) == (99, None)
    assert set(page["requests"][0]) == {
        "request_id",
        "route",
        "strategy",
        "models",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "credits_charged",
        "latency_ms",
        "status",
        "created_at",
    }


async def test_since_and_until_bound_the_pages(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    await _recorded(store, key_id, 6)
    since, until = "2026-11-02T01:00:00Z", (DAY + timedelta(hours=4)).isoformat()
    pages = await _pages(client, limit=2, since=since, until=until)
    assert _ids(pages) == ["req_3", "req_2", "req_1"]


async def test_a_date_means_midnight_utc(
    client: httpx.AsyncClient, store: Store, key_id: str
) -> None:
    await _recorded(store, key_id, 2, start=DAY - timedelta(hours=1))
    assert _ids(await _pages(client, since="2026-11-02")) == ["req_1"]
    assert _ids(await _pages(client, until="2026-11-02")) == ["req_0"]


async def test_another_keys_cursor_shows_only_the_callers_own_requests(
    client: httpx.AsyncClient,
    served: ServedApp,
    store: Store,
    key_id: str,
    make_key: Callable[..., Any],
) -> None:
    await _recorded(store, key_id, 3)
    cursor = (await client.get("/api/v1/usage", params={"limit": 1})).json()["next_cursor"]
    _, other = await make_key(credits=10)
    async with httpx.AsyncClient(
        base_url=served.url, headers={"Authorization": f"Bearer {other}"}
    ) as stranger:
        page = (await stranger.get("/api/v1/usage", params={"cursor": cursor})).json()
    assert (page["requests"], page["next_cursor"]) == ([], None)


@pytest.mark.parametrize(
    "query, field",
    [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"limit": "many"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"cursor": "WzEsMl0"}, "cursor"),  # base64 of [1,2]: well formed, not a position
        ({"since": "yesterday"}, "since"),
        ({"until": "2026-13-01"}, "until"),
        ({"since": "2026-11-02", "until": "2026-11-01"}, "until"),
    ],
)
async def test_a_bad_parameter_is_a_400_naming_it(
    client: httpx.AsyncClient, query: dict[str, Any], field: str
) -> None:
    response = await client.get("/api/v1/usage", params=query)
    assert response.status_code == 400
    error = error_of(response)
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(f"{field}: ")
