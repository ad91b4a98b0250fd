"""`moa usage` reads the server's database and adds usage up per UTC day, key, route,
strategy and models: a table, ``--csv`` (what a team bills from) or ``--json``."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from moa.store import Store, UsageRecord

MOA = str(Path(sys.executable).parent / "moa")
DAY = datetime(2026, 11, 2, tzinfo=UTC)
PAIR = ["fake/alpha", "fake/beta"]


@dataclass
class Books:
    config: Path
    ada: str
    bob: str


def _record(key_id: str, n: int, at: datetime, models: list[str], credits: int) -> UsageRecord:
    return UsageRecord(
        request_id=f"req_{key_id}_{n}",
        key_id=key_id,
        route="/api/v1/blend" if len(models) > 1 else "/api/v1/chat",
        strategy="consensus" if len(models) > 1 else None,
        models=models,
        prompt_tokens=100,
        completion_tokens=20,
        cost_usd=0.125,
        credits_charged=credits,
        status="ok" if n else "timeout",
        created_at=at,
    )


@pytest.fixture
async def books(tmp_path: Path) -> AsyncIterator[Books]:
    """Two keys' usage over two days in a SQLite file a moa.toml points at."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    config = tmp_path / "moa.toml"
    config.write_text(f'[server]\ndatabase_url = "{url}"\n', encoding="utf-8")
    async with await Store.open(url) as store:
        ada, _ = await store.create_key(credits=100, name="ada")
        bob, _ = await store.create_key(credits=100, name="bob")
        for n in range(3):  # ada: three blends on the 2nd, one chat on the 3rd
            await store.record_usage(_record(ada.id, n, DAY + timedelta(hours=n), PAIR, 4))
        await store.record_usage(_record(ada.id, 3, DAY + timedelta(days=1), ["fake/alpha"], 1))
        await store.record_usage(_record(bob.id, 1, DAY + timedelta(hours=5), PAIR, 4))
        yield Books(config, ada.id, bob.id)


async def moa_usage(books: Books, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOA_")}
    command = [MOA, "usage", "--config", str(books.config), *args]
    done = await asyncio.to_thread(
        subprocess.run, command, env=env, capture_output=True, text=True, timeout=60
    )
    assert (done.returncode == 0) == ok, done.stderr
    return done


async def test_csv_has_one_row_per_day_key_and_models(books: Books) -> None:
    rows = list(csv.DictReader(io.StringIO((await moa_usage(books, "--csv")).stdout)))
    got = {
        (r["day"], r["key_name"], r["models"]): (r["requests"], r["failed"], r["credits"])
        for r in rows
    }
    assert got == {
        ("2026-11-02", "ada", "fake/alpha+fake/beta"): ("3", "1", "12"),
        ("2026-11-02", "bob", "fake/alpha+fake/beta"): ("1", "0", "4"),
        ("2026-11-03", "ada", "fake/alpha"): ("1", "0", "1"),
    }
    ada_day = next(r for r in rows if r["key_name"] == "ada" and r["day"] == "2026-11-02")
    assert (ada_day["key_id"], ada_day["route"], ada_day["strategy"]) == (
        books.ada,
        "/api/v1/blend",
        "consensus",
    )
    assert (ada_day["prompt_tokens"], ada_day["completion_tokens"]) == ("300", "60")
    assert ada_day["cost_usd"] == "0.375000"


async def test_a_key_name_a_spreadsheet_would_run_is_quoted_in_csv(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'moa.db'}"
    config = tmp_path / "moa.toml"
    config.write_text(f'[server]\ndatabase_url = "{url}"\n', encoding="utf-8")
    async with await Store.open(url) as store:
        key, _ = await store.create_key(credits=1, name="=HYPERLINK(1)")
        await store.record_usage(_record(key.id, 1, DAY, PAIR, 4))
    done = await moa_usage(Books(config, key.id, key.id), "--csv")
    [row] = csv.DictReader(io.StringIO(done.stdout))
    assert row["key_name"] == "'=HYPERLINK(1)"


async def test_a_key_and_a_period_narrow_the_rows(books: Books) -> None:
    done = await moa_usage(books, "--json", "--key", books.ada, "--since", "2026-11-03")
    [row] = json.loads(done.stdout)
    assert (row["day"], row["key_id"], row["models"], row["credits"]) == (
        "2026-11-03",
        books.ada,
        ["fake/alpha"],
        1,
    )
    done = await moa_usage(books, "--json", "--until", "2026-11-02T01:00:00Z")
    assert [(r["key_id"], r["requests"]) for r in json.loads(done.stdout)] == [(books.ada, 1)]


async def test_the_table_ends_with_the_totals(books: Books) -> None:
    lines = (await moa_usage(books)).stdout.splitlines()
    assert lines[0].split()[:3] == ["day", "key_id", "key_name"]
    assert lines[-1].split() == ["total", "5", "1", "500", "100", "17", "0.625000"]


async def test_a_bad_date_exits_2_naming_the_option(books: Books) -> None:
    done = await moa_usage(books, "--since", "last tuesday", ok=False)
    assert done.returncode == 2
    assert done.stderr.startswith("invalid_request: --since: 'last tuesday' is not an ISO 8601")
