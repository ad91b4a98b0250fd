"""Usage added up per UTC day, key, route, strategy and models: the rows a team bills from
(``moa usage``).

A usage record holds one request's tokens and cost as a whole, not per call, so "per
model" is per the models the request named (its sources, synthesizer and fallbacks, in
request order), next to its route and strategy: a blend of alpha and beta is one line,
a chat with alpha another. Records are read in one pass, oldest first, and added up here
rather than in SQL: bucketing a timestamp by UTC day is spelled differently on SQLite and
PostgreSQL, and the totals hold one entry per group, however many records there are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncConnection

from moa.store.schema import api_keys, usage_records

#: Records read from the database per round trip while adding up.
_BATCH = 1000


@dataclass(slots=True, kw_only=True)
class UsageTotal:
    """One group's sums. ``requests`` counts every record, failed ones too (they may have
    cost tokens); ``failed`` those whose status is not ``ok``; ``credits`` is what the key
    was charged, ``cost_usd`` what the providers' calls cost at moa.toml's prices."""

    day: date
    key_id: str
    key_name: str
    route: str
    strategy: str | None
    models: list[str]
    requests: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    credits: int = 0
    cost_usd: float = 0.0

    def add(self, row: RowMapping) -> None:
        self.requests += 1
        self.failed += row["status"] != "ok"
        self.prompt_tokens += int(row["prompt_tokens"])
        self.completion_tokens += int(row["completion_tokens"])
        self.credits += int(row["credits_charged"])
        self.cost_usd += float(row["cost_usd"])


_Group = tuple[date, str, str, str, str]


async def usage_totals(
    conn: AsyncConnection,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    key_id: str | None = None,
) -> list[UsageTotal]:
    """Totals of the records with ``since <= created_at < until`` (of ``key_id`` only, if
    given), ordered by day, key, route, strategy and models."""
    c = usage_records.c
    stmt = select(
        c.created_at,
        c.key_id,
        c.route,
        c.strategy,
        c.models,
        c.status,
        c.prompt_tokens,
        c.completion_tokens,
        c.credits_charged,
        c.cost_usd,
        api_keys.c.name.label("key_name"),
    ).join(api_keys, api_keys.c.id == c.key_id)
    if since is not None:
        stmt = stmt.where(c.created_at >= since)
    if until is not None:
        stmt = stmt.where(c.created_at < until)
    if key_id is not None:
        stmt = stmt.where(c.key_id == key_id)
    stmt = stmt.order_by(c.created_at, c.id).execution_options(yield_per=_BATCH)
    totals: dict[_Group, UsageTotal] = {}
    result = await conn.stream(stmt)
    async for row in result.mappings():
        group = _group_of(row)
        if group not in totals:
            totals[group] = _empty(group, row)
        totals[group].add(row)
    return [totals[group] for group in sorted(totals)]


def _group_of(row: RowMapping) -> _Group:
    created_at: datetime = row["created_at"]  # aware UTC: see UTCDateTime
    return (created_at.date(), row["key_id"], row["route"], row["strategy"] or "", row["models"])


def _empty(group: _Group, row: RowMapping) -> UsageTotal:
    day, key_id, route, _, models = group
    return UsageTotal(
        day=day,
        key_id=key_id,
        key_name=row["key_name"],
        route=route,
        strategy=row["strategy"],
        models=list(json.loads(models)),
    )
