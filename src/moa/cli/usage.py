"""``moa usage``: what every key used, per UTC day, key, route, strategy and models, read
from the server's database as ``moa keys`` does (an operator's tool, no API key needed).
A table to read, ``--csv`` to bill from, ``--json`` for scripts."""

from __future__ import annotations

import asyncio
import csv
import json
import sys
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from moa.cli.common import EXIT_USAGE, ConfigOption, fail, settings_or_exit
from moa.instants import EXAMPLES, check_period, parse_instant

if TYPE_CHECKING:
    from moa.store.usage_totals import UsageTotal

COLUMNS = (
    "day",
    "key_id",
    "key_name",
    "route",
    "strategy",
    "models",
    "requests",
    "failed",
    "prompt_tokens",
    "completion_tokens",
    "credits",
    "cost_usd",
)
_BOUND_HELP = f"UTC; an ISO 8601 date or date and time, {EXAMPLES}."


def usage_command(
    since: Annotated[
        str | None,
        typer.Option(metavar="DATE", help=f"From this instant on (included). {_BOUND_HELP}"),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(metavar="DATE", help=f"Up to this instant (excluded). {_BOUND_HELP}"),
    ] = None,
    key: Annotated[
        str | None, typer.Option("--key", metavar="ID", help="Only this key id.")
    ] = None,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV with a header row.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="A JSON array of rows.")] = False,
    config: ConfigOption = None,
) -> None:
    """Usage per day, key, route, strategy and models: requests, tokens, credits, cost."""
    if as_csv and as_json:
        fail("invalid_request", "--csv and --json: choose one", EXIT_USAGE)
    start, end = _bound("--since", since), _bound("--until", until)
    try:
        check_period(start, end)
    except ValueError as exc:
        fail("invalid_request", f"--until: {exc}", EXIT_USAGE)
    rows = [_row(total) for total in _totals(config, start, end, key)]
    if as_csv:
        _print_csv(rows)
    elif as_json:
        print(json.dumps(rows, indent=2))
    else:
        _print_table(rows)


def _bound(option: str, text: str | None) -> datetime | None:
    try:
        return None if text is None else parse_instant(text)
    except ValueError as exc:
        fail("invalid_request", f"{option}: {exc}", EXIT_USAGE)


def _row(total: UsageTotal) -> dict[str, Any]:
    return {
        "day": total.day.isoformat(),
        "key_id": total.key_id,
        "key_name": total.key_name,
        "route": total.route,
        "strategy": total.strategy,
        "models": total.models,
        "requests": total.requests,
        "failed": total.failed,
        "prompt_tokens": total.prompt_tokens,
        "completion_tokens": total.completion_tokens,
        "credits": total.credits,
        "cost_usd": round(total.cost_usd, 6),
    }


def _cells(row: dict[str, Any]) -> list[str]:
    """A row as text: models joined with ``+``, no strategy as an empty cell."""
    shown = {**row, "models": "+".join(row["models"]), "strategy": row["strategy"] or ""}
    shown["cost_usd"] = f"{row['cost_usd']:.6f}"
    return [str(shown[column]) for column in COLUMNS]


def _print_csv(rows: list[dict[str, Any]]) -> None:
    writer = csv.writer(sys.stdout, lineterminator="\n")
    writer.writerow(COLUMNS)
    name = COLUMNS.index("key_name")
    for row in rows:
        cells = _cells(row)
        cells[name] = _inert(cells[name])
        writer.writerow(cells)


def _inert(text: str) -> str:
    """A key's name is free text: one a spreadsheet would run as a formula (``=HYPERLINK(...)``)
    is quoted with a leading apostrophe, as OWASP advises for CSV exports."""
    return f"'{text}" if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def _print_table(rows: list[dict[str, Any]]) -> None:
    """Aligned columns (numbers to the right) and a line of totals; a line saying so when
    the period holds nothing."""
    if not rows:
        print("no usage in this period")
        return
    table = [list(COLUMNS), *(_cells(row) for row in rows), _total_cells(rows)]
    widths = [max(len(line[i]) for line in table) for i in range(len(COLUMNS))]
    numeric = {i for i, column in enumerate(COLUMNS) if i >= COLUMNS.index("requests")}
    for line in table:
        cells = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        print("  ".join(cells).rstrip())


def _total_cells(rows: list[dict[str, Any]]) -> list[str]:
    first = COLUMNS.index("requests")
    counts = [str(sum(row[column] for row in rows)) for column in COLUMNS[first:-1]]
    cost = sum(row["cost_usd"] for row in rows)  # the last column
    return ["total", *([""] * (first - 1)), *counts, f"{cost:.6f}"]


def _totals(
    config: str | None, since: datetime | None, until: datetime | None, key_id: str | None
) -> list[UsageTotal]:
    settings = settings_or_exit(config)

    async def run() -> list[UsageTotal]:
        from moa.store import Store

        store = await Store.open(
            settings.server.database_url, schema=settings.server.database_schema
        )
        try:
            return await store.usage_totals(since=since, until=until, key_id=key_id)
        finally:
            await store.close()

    return asyncio.run(run())
