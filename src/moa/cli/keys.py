"""``moa keys``: create, list, top up, change and revoke API keys in the server's database
(what the admin API, ``/admin/v1/keys``, does over HTTP), and the demo key ``make serve``
prints."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from moa.cli.common import EXIT_USAGE, ConfigOption, fail, settings_or_exit

if TYPE_CHECKING:
    from moa.config import Settings
    from moa.store import ApiKey, Store

#: The demo key's file in the user data directory: its plaintext, readable by the user only
#: (the database keeps only a hash, so this is the one place it can be found again).
DEMO_KEY_FILE = "demo-key"

app = typer.Typer(help="Manage API keys, their credits and limits.", no_args_is_help=True)
T = TypeVar("T")
#: ``--budget-usd none`` and ``--models all`` lift a limit in ``moa keys update``.
NO_BUDGET, ALL_MODELS = "none", "all"

BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget-usd",
        help=f"USD the key may spend in all (its usage records' cost_usd); "
        f"'{NO_BUDGET}': no budget.",
    ),
]
ModelsOption = Annotated[
    str | None,
    typer.Option(
        "--models",
        help=f"Comma-separated model ids or provider/* the key may use; '{ALL_MODELS}': any.",
    ),
]


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


def _budget(value: str) -> float | None:
    if value.strip().lower() == NO_BUDGET:
        return None
    try:
        return float(value)
    except ValueError:
        fail(
            "invalid_request",
            f"--budget-usd: {value!r} is not a number or '{NO_BUDGET}'",
            EXIT_USAGE,
        )


def _models(value: str) -> list[str] | None:
    if value.strip().lower() == ALL_MODELS:
        return None
    return [model.strip() for model in value.split(",") if model.strip()]


def _checked(work: Callable[[], T]) -> T:
    """The store's ValueError names the field: one line and exit 2."""
    try:
        return work()
    except ValueError as exc:
        fail("invalid_request", str(exc), EXIT_USAGE)


@app.command("create")
def create(
    credits: Annotated[int, typer.Option(min=0, help="Credits the key starts with.")],
    name: Annotated[str, typer.Option(help="A label to recognise the key by.")] = "",
    budget_usd: BudgetOption = None,
    models: ModelsOption = None,
    config: ConfigOption = None,
) -> None:
    """Create a key, optionally with a USD budget and the models it may use. The key itself
    is printed once, alone on the last line."""
    budget = None if budget_usd is None else _budget(budget_usd)
    allowed = None if models is None else _models(models)

    async def work(store: Store) -> str:
        record, plaintext = await store.create_key(
            credits=credits, name=name, budget_usd=budget, models=allowed
        )
        print(f"created {record.id} ({record.prefix}…) with {record.credits} credits")
        return plaintext

    print(_checked(lambda: _with_store(config, work)))


@app.command("list")
def list_keys(
    as_json: Annotated[
        bool, typer.Option("--json", help="Print what GET /admin/v1/keys answers.")
    ] = False,
    config: ConfigOption = None,
) -> None:
    """List keys: id, prefix, credits, state, name, limits (never the keys themselves)."""

    async def work(store: Store) -> list[ApiKey]:
        return await store.list_keys()

    keys = _with_store(config, work)
    if as_json:
        print(json.dumps({"data": [key.public() for key in keys]}, indent=2))
        return
    for key in keys:
        print(_line(key))


def _line(key: ApiKey) -> str:
    state = "revoked" if key.revoked else "active"
    line = f"{key.id}  {key.prefix}…  {key.credits:>8} credits  {state}  {key.name}"
    if key.budget_usd is not None:
        line += f"  spent ${key.spent_usd:.4f} of ${key.budget_usd:.4f}"
    if key.models is not None:
        line += "  models " + ",".join(key.models)
    return line


@app.command("update")
def update(
    key_id: str,
    budget_usd: BudgetOption = None,
    models: ModelsOption = None,
    name: Annotated[str | None, typer.Option(help="A new label.")] = None,
    config: ConfigOption = None,
) -> None:
    """Change a key's limits or name: only the options given (what PATCH /admin/v1/keys/ID
    does). Every server applies it within [server] auth_cache_s (0.5 s)."""
    if budget_usd is None and models is None and name is None:
        fail("invalid_request", "give --budget-usd, --models or --name", EXIT_USAGE)

    async def work(store: Store) -> ApiKey | None:
        from moa.store.keys import UNSET

        return await store.update_key(
            key_id,
            name=UNSET if name is None else name,
            budget_usd=UNSET if budget_usd is None else _budget(budget_usd),
            models=UNSET if models is None else _models(models),
        )

    key = _checked(lambda: _with_store(config, work))
    if key is None:
        fail("not_found", f"no key with id {key_id!r}", EXIT_USAGE)
    budget = "none" if key.budget_usd is None else f"${key.budget_usd:g}"
    allowed = "any" if key.models is None else ",".join(key.models)
    print(f"{key.id}: budget {budget}, models {allowed}")


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
