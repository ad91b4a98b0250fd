"""Schema migrations (Alembic), run by ``Store.open`` inside its cross-process lock.

Each change to the tables is a numbered revision in ``versions/``: ``0001_initial`` is the
schema moa created with ``create_all`` before it had migrations, ``0002_reservations`` adds
the credit leases. :func:`upgrade` brings any database to the newest revision:

* a new database gets every revision, in order;
* a database an older moa created (its tables, but no ``alembic_version``) is first stamped
  with the revision its tables match, then upgraded;
* an up-to-date database costs one small query, and Alembic is not even imported.

To change the schema: edit ``moa/store/schema.py``, copy the newest file in ``versions/``
to the next number (``revision`` = the new number, ``down_revision`` = the previous one),
write its ``upgrade()`` with ``alembic.op``, and set :data:`HEAD`. A test checks that the
migrated tables equal ``schema.py`` and that :data:`HEAD` is the newest revision.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Column, MetaData, String, Table, inspect, select
from sqlalchemy.engine import Connection

if TYPE_CHECKING:
    from alembic.config import Config

#: The newest revision: a database at it needs nothing.
HEAD = "0002"
VERSION_TABLE = "alembic_version"
#: What a database from before migrations holds, newest layout first: (revision, a table
#: that only that layout and later ones have).
_LEGACY_LAYOUTS = (("0002", "reservations"), ("0001", "api_keys"))
_DIRECTORY = Path(__file__).parent


def current_revision(conn: Connection, schema: str | None = None) -> str | None:
    """The revision the database is at, or None if it has never been migrated."""
    if not inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    versions = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32)))
    return conn.execute(select(versions.c.version_num)).scalar()


def load_alembic() -> None:
    """Import Alembic (about a third of a second): callers on an event loop do it in a worker
    thread before :func:`upgrade`, which only needs it when there is work to do."""
    import alembic.command  # noqa: F401


def upgrade(conn: Connection, schema: str | None = None) -> None:
    """Bring the database on ``conn`` to :data:`HEAD`, in the caller's transaction."""
    if current_revision(conn, schema) == HEAD:
        return
    from alembic import command

    config = _config(conn, schema)
    if current_revision(conn, schema) is None and (legacy := _legacy_layout(conn, schema)):
        command.stamp(config, legacy)
    command.upgrade(config, "head")


def _legacy_layout(conn: Connection, schema: str | None) -> str | None:
    tables = set(inspect(conn).get_table_names(schema=schema))
    return next((revision for revision, table in _LEGACY_LAYOUTS if table in tables), None)


def _config(conn: Connection, schema: str | None) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(_DIRECTORY))
    config.attributes["connection"] = conn
    config.attributes["schema"] = schema
    return config
