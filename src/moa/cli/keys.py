"""``moa keys``: create, list, revoke and top up API keys in the server's database, and
the demo key ``make serve`` prints."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from moa.cli.common import EXIT_USAGE, ConfigOption, fail, settings_or_exit

if TYPE_CHECKING:
    from moa.config import Settings
    from moa.store import Store

#: The demo key's file in the user data directory: its plaintext, readable by the user only
#: (the database keeps only a hash, so this is the one place it can be found again).
DEMO_KEY_FILE = "demo-key"

app = typer.Typer(help="Manage API keys and their credits.", no_args_is_help=True)
T = TypeVar("T")


def _with_store(config: str | None, work: Callable[[Store], Awaitable[T]]) -> T:
    return _run_with_store(settings_or_exit(config), work)


def _run_with_store(settings: Settings, work: Callable[[Store], Awaitable[T]]) -> T:
    async def run() -> T:
        from moa.store import Store

        store = await Store.open(
            settings.server.database_url, schema=settings.server.database_schema
        )
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


@app.command("create")
def create(
    credits: Annotated[int, typer.Option(min=0, help="Credits the key starts with.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    config: ConfigOption = None,
) -> None:
    """Create a key. The key itself is printed once, alone on the last line."""

    async def work(store: Store) -> str:
        record, plaintext = await store.create_key(credits=credits, name=name)
        print(f"created {record.id} ({record.prefix}…) with {record.credits} credits")
        return plaintext

    print(_with_store(config, work))


@app.command("list")
def list_keys(config: ConfigOption = None) -> None:
    """List keys: id, prefix, credits, revoked."""

    async def work(store: Store) -> None:
        for key in await store.list_keys():
            state = "revoked" if key.revoked else "active"
            print(f"{key.id}  {key.prefix}…  {key.credits:>8} credits  {state}  {key.name}")

    _with_store(config, work)


@app.command("revoke")
def revoke(key_id: str, config: ConfigOption = None) -> None:
    """Revoke a key: every server refuses it within [server] auth_cache_s (0.5 s)."""

    async def work(store: Store) -> bool:
        return await store.revoke(key_id)

    if not _with_store(config, work):
        fail("not_found", f"no key with id {key_id!r}", EXIT_USAGE)
    print(f"revoked {key_id}")


@app.command("top-up")
def top_up(
    key_id: str,
    credits: Annotated[int, typer.Option(min=1, help="Credits to add.")],
    config: ConfigOption = None,
) -> None:
    """Add credits to a key."""

    async def work(store: Store) -> int:
        return await store.top_up(key_id, credits)

    try:
        balance = _with_store(config, work)
    except KeyError:
        fail("not_found", f"no key with id {key_id!r}", EXIT_USAGE)
    print(f"{key_id} now has {balance} credits")


@app.command("demo")
def demo(
    credits: Annotated[int, typer.Option(min=0, help="Credits a new demo key starts with.")] = 1000,
    config: ConfigOption = None,
) -> None:
    """The demo key: created (named ``demo``) the first time, the same key every time after.
    Printed alone on the last line; kept in the user data directory, mode 0600."""
    settings = settings_or_exit(config)
    path = settings.data_dir / DEMO_KEY_FILE

    async def work(store: Store) -> str:
        kept = path.read_text(encoding="utf-8").strip() if path.is_file() else ""
        key = await store.authenticate(kept) if kept else None
        if key is None:  # first run, or a database that does not know the kept key
            key, kept = await store.create_key(credits=credits, name="demo")
            _write_private(path, kept)
        print(f"demo key {key.id} ({key.prefix}…) has {key.credits} credits; kept in {path}")
        return kept

    print(_run_with_store(settings, work))


def _write_private(path: Path, secret: str) -> None:
    """Write ``secret`` readable and writable by the user alone (0600), even if the file
    existed with a looser mode."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        os.fchmod(file.fileno(), 0o600)
        file.write(secret + "\n")
