"""Usage a page at a time (keyset on created_at, id) and added up per day, key and models,
on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from moa.store import Store, UsageRecord
from moa.store.usage import UsagePage

DAY = datetime(2026, 11, 2, tzinfo=UTC)


def _record(
    key_id: str,
    request_id: str,
    created_at: datetime,
    *,
    models: tuple[str, ...] = ("fake/alpha", "fake/beta"),
    route: str = "/api/v1/blend",
    status: str = "ok",
    credits: int = 4,
) -> UsageRecord:
    return UsageRecord(
        request_id=request_id,
        key_id=key_id,
        route=route,
        strategy="consensus" if route == "/api/v1/blend" else None,
        models=list(models),
        prompt_tokens=10,
        completion_tokens=5,
        cost_usd=0.25,
        credits_charged=credits,
        status=status,
        created_at=created_at,
    )


async def _every_page(
    store: Store,
    key_id: str,
    limit: int,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[str]:
    seen: list[str] = []
    page = await store.usage_page(key_id, limit=limit, since=since, until=until)
    while True:
        seen += [r.request_id for r in page.records]
        if page.next is None:
            return seen
        page = await store.usage_page(
            key_id, limit=limit, since=since, until=until, after=page.next
        )


async def test_pages_hold_every_record_once_newest_first(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    for n in range(7):
        await store.record_usage(_record(key.id, f"r{n}", DAY + timedelta(minutes=n)))
    assert await _every_page(store, key.id, limit=3) == [f"r{n}" for n in reversed(range(7))]


async def test_records_with_one_timestamp_split_across_pages_are_neither_lost_nor_repeated(
    store: Store,
) -> None:
    key, _ = await store.create_key(credits=1)
    for n in range(5):
        await store.record_usage(_record(key.id, f"r{n}", DAY))
    assert sorted(await _every_page(store, key.id, limit=2)) == [f"r{n}" for n in range(5)]


async def test_records_written_while_paging_do_not_shift_the_pages(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    for n in range(6):
        await store.record_usage(_record(key.id, f"old{n}", DAY + timedelta(minutes=n)))
    first = await store.usage_page(key.id, limit=2)
    for n in range(3):  # new requests arrive while the client reads the first page
        await store.record_usage(_record(key.id, f"new{n}", DAY + timedelta(hours=1, minutes=n)))
    seen = [r.request_id for r in first.records]
    page: UsagePage = first
    while page.next is not None:
        page = await store.usage_page(key.id, limit=2, after=page.next)
        seen += [r.request_id for r in page.records]
    assert seen == [f"old{n}" for n in reversed(range(6))]


async def test_a_page_holds_only_its_keys_records_within_the_period(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    other, _ = await store.create_key(credits=1)
    for n in range(4):
        await store.record_usage(_record(key.id, f"r{n}", DAY + timedelta(days=n)))
        await store.record_usage(_record(other.id, f"o{n}", DAY + timedelta(days=n)))
    period = {"since": DAY + timedelta(days=1), "until": DAY + timedelta(days=3)}
    assert await _every_page(store, key.id, limit=1, **period) == ["r2", "r1"]


async def test_the_last_page_says_it_is_the_last(store: Store) -> None:
    key, _ = await store.create_key(credits=1)
    for n in range(4):
        await store.record_usage(_record(key.id, f"r{n}", DAY + timedelta(minutes=n)))
    first = await store.usage_page(key.id, limit=2)
    assert first.next is not None
    second = await store.usage_page(key.id, limit=2, after=first.next)
    assert ([r.request_id for r in second.records], second.next) == (["r1", "r0"], None)


async def test_totals_add_up_per_day_key_and_models(store: Store) -> None:
    ada, _ = await store.create_key(credits=1, name="ada")
    bob, _ = await store.create_key(credits=1, name="bob")
    await store.record_usage(_record(ada.id, "a1", DAY + timedelta(hours=1)))
    await store.record_usage(_record(ada.id, "a2", DAY + timedelta(hours=23), status="timeout"))
    chat = _record(ada.id, "a3", DAY + timedelta(hours=2), models=("fake/alpha",), credits=1)
    await store.record_usage(replace(chat, route="/api/v1/chat"))
    await store.record_usage(_record(ada.id, "a4", DAY + timedelta(days=1)))
    await store.record_usage(_record(bob.id, "b1", DAY + timedelta(hours=3)))
    totals = await store.usage_totals()
    got = [
        (t.day, t.key_name, t.route, t.models, t.requests, t.failed, t.credits, t.cost_usd)
        for t in totals
    ]
    day, next_day = date(2026, 11, 2), date(2026, 11, 3)
    pair = ["fake/alpha", "fake/beta"]
    expected = [
        (day, "ada", "/api/v1/blend", pair, 2, 1, 8, 0.5),
        (day, "ada", "/api/v1/chat", ["fake/alpha"], 1, 0, 1, 0.25),
        (day, "bob", "/api/v1/blend", pair, 1, 0, 4, 0.25),
        (next_day, "ada", "/api/v1/blend", pair, 1, 0, 4, 0.25),
    ]
    assert sorted(got, key=lambda row: (row[0], row[1], row[2])) == expected
    assert sum(t.prompt_tokens for t in totals) == 50


async def test_totals_keep_to_the_period_and_the_key_asked_for(store: Store) -> None:
    ada, _ = await store.create_key(credits=1, name="ada")
    bob, _ = await store.create_key(credits=1, name="bob")
    for n in range(3):
        await store.record_usage(_record(ada.id, f"a{n}", DAY + timedelta(days=n)))
        await store.record_usage(_record(bob.id, f"b{n}", DAY + timedelta(days=n)))
    totals = await store.usage_totals(
        since=DAY + timedelta(days=1), until=DAY + timedelta(days=2), key_id=bob.id
    )
    assert [(t.day, t.key_id, t.requests) for t in totals] == [(date(2026, 11, 3), bob.id, 1)]
