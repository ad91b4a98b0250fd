"""Schema migrations: `Store.open` brings any database to the newest revision, whether it
is new, up to date, or was created by an older moa with `create_all`, and several
processes may open one new database at once."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import CheckConstraint, Connection, MetaData, Table, insert, inspect

from moa.store import Store, migrations
from moa.store.keys import generate_plaintext, hash_key
from moa.store.schema import api_keys, ledger_entries, metadata, usage_records, utcnow

from .conftest import Database


def _differences(conn: Connection, schema: str | None) -> list[Any]:
    """What Alembic's autogenerate finds between the database and schema.py."""
    expected = MetaData()
    for table in metadata.tables.values():
        if schema is None:  # schema.py's tables name no schema: keep that
            table.to_metadata(expected)
        else:
            table.to_metadata(expected, schema=schema)
    context = MigrationContext.configure(
        conn,
        opts={
            "include_schemas": schema is not None,
            "include_name": lambda name, kind, parent: kind != "schema" or name == schema,
            "version_table_schema": schema,
        },
    )
    return list(compare_metadata(context, expected))


async def _run(store: Store, work: Any, *args: Any) -> Any:
    async with store._engine.connect() as conn:
        return await conn.run_sync(work, *args)


async def test_a_new_database_gets_exactly_the_tables_schema_py_describes(db: Database) -> None:
    store = await db.open()
    assert await _run(store, migrations.current_revision, db.schema) == migrations.HEAD
    # schema_translate_map does not apply to reflection: compare on a plain connection.
    plain = store._engine.execution_options(schema_translate_map=None)
    async with plain.connect() as conn:
        assert await conn.run_sync(_differences, db.schema) == []


def test_head_is_the_newest_revision_shipped() -> None:
    assert ScriptDirectory(str(migrations.DIRECTORY)).get_current_head() == migrations.HEAD


#: api_keys as moa made it before migrations (revision 0001 has exactly these columns).
_LEGACY_KEY_COLUMNS = ("id", "name", "key_hash", "prefix", "credits", "created_at", "revoked")


def _legacy_tables() -> list[Table]:
    legacy = MetaData()
    keys = Table(
        "api_keys",
        legacy,
        *(column._copy() for column in api_keys.columns if column.name in _LEGACY_KEY_COLUMNS),
        *(c._copy() for c in api_keys.constraints if isinstance(c, CheckConstraint)),
    )
    return [keys, ledger_entries.to_metadata(legacy), usage_records.to_metadata(legacy)]


def _create_all_like_before_migrations(conn: Connection, key_hash: str) -> None:
    tables = _legacy_tables()
    tables[0].metadata.create_all(conn)
    conn.execute(
        insert(tables[0]).values(
            id="key_old",
            name="from before",
            key_hash=key_hash,
            prefix="moa_sk_old",
            credits=7,
            created_at=utcnow(),
            revoked=False,
        )
    )
    conn.execute(
        insert(ledger_entries).values(
            key_id="key_old", kind="create", amount=7, created_at=utcnow()
        )
    )
    for cost in (0.125, 0.25):
        conn.execute(insert(tables[2]).values(**_OLD_RECORD, cost_usd=cost, created_at=utcnow()))


_OLD_RECORD = {
    "request_id": "req_old",
    "key_id": "key_old",
    "route": "/api/v1/blend",
    "models": "[]",
    "prompt_tokens": 1,
    "completion_tokens": 1,
    "credits_charged": 0,
    "latency_ms": 1,
    "status": "ok",
}


async def test_a_database_from_before_migrations_is_stamped_upgraded_and_kept(
    db: Database,
) -> None:
    store = await db.open()  # to get an engine with the schema's settings; start it over
    plaintext = generate_plaintext()
    async with store._engine.begin() as conn:
        await conn.run_sync(lambda sync: metadata.drop_all(sync))
        await conn.run_sync(lambda sync: _drop_version_table(sync, db.schema))
        await conn.run_sync(_create_all_like_before_migrations, hash_key(plaintext))
    assert await _run(store, migrations.current_revision, db.schema) is None
    upgraded = await db.open()
    assert await _run(upgraded, migrations.current_revision, db.schema) == migrations.HEAD
    key = await upgraded.authenticate(plaintext)
    assert key is not None and key.credits == 7
    assert (key.spent_usd, key.budget_usd, key.models) == (0.375, None, None)  # 0003 summed
    reservation = await upgraded.reserve(key.id, 3)  # the new table is there and works
    assert reservation is not None
    assert (await upgraded.settle(reservation, 3)).remaining == 4
    assert await upgraded.ledger_total(key.id) == 4


def _drop_version_table(conn: Connection, schema: str | None) -> None:
    if inspect(conn).has_table(migrations.VERSION_TABLE, schema=schema):
        conn.exec_driver_sql(
            f"DROP TABLE {f'{schema}.' if schema else ''}{migrations.VERSION_TABLE}"
        )


_OPEN = """
import asyncio, sys
from moa.store import Store

async def main(url, schema):
    print("ready", flush=True)
    sys.stdin.readline()  # start barrier: every process opens at the same moment
    store = await Store.open(url, schema=schema or None)
    key, _ = await store.create_key(credits=1)
    print(key.id, flush=True)
    await store.close()

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


def _open_at_once(db: Database, env: dict[str, str], processes: int) -> list[str]:
    argv = [sys.executable, "-c", _OPEN, db.url, db.schema or ""]
    children = [
        subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None and child.stdout.readline().strip() == "ready"
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        outputs = []
        for child in children:
            out, err = child.communicate(timeout=120)
            assert child.returncode == 0, err
            outputs.append(out.strip())
        return outputs
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.communicate()


async def test_processes_opening_a_new_database_at_once_all_succeed(
    db: Database, subprocess_env: dict[str, str]
) -> None:
    key_ids = await asyncio.to_thread(_open_at_once, db, subprocess_env, 4)
    store = await db.open()
    assert sorted(k.id for k in await store.list_keys()) == sorted(key_ids)
    assert await _run(store, migrations.current_revision, db.schema) == migrations.HEAD
