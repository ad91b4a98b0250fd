"""Schema migrations (Alembic), run by ``Store.open`` inside its cross-process lock.

Each change to the tables is a numbered revision in ``versions/``: ``0001`` is the schema
moa created with ``create_all`` before it had migrations, ``0002`` adds the credit leases,
``0003`` a key's last use and limits.
:func:`upgrade` brings any database to the newest revision:

* a new database gets every revision, in order;
* a database an older moa created (its tables, but no ``alembic_version``) is first stamped
  with the revision its tables match, then upgraded;
* an up-to-date database costs one small query, and Alembic is not even imported.

The revision files are read in a worker thread (:func:`load_revisions`); :func:`upgrade`
then runs them on the caller's connection, in its transaction, touching no file, so a
server's event loop never blocks on disk. Only public Alembic API is used
(``MigrationContext``, ``Operations``, ``ScriptDirectory``); there is no ``env.py``.

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
    from alembic.script import ScriptDirectory

#: The newest revision: a database at it needs nothing.
HEAD = "0003"
VERSION_TABLE = "alembic_version"
#: What a database from before migrations holds, newest layout first: (revision, a table
#: that only that layout and later ones have).
_LEGACY_LAYOUTS = (("0002", "reservations"), ("0001", "api_keys"))
DIRECTORY = Path(__file__).parent


def current_revision(conn: Connection, schema: str | None = None) -> str | None:
    """The revision the database is at, or None if it has never been migrated."""
    if not inspect(conn).has_table(VERSION_TABLE, schema=schema):
        return None
    versions = Table(VERSION_TABLE, MetaData(), Column("version_num", String(32)))
    return conn.execute(select(versions.c.version_num)).scalar()


def load_revisions() -> ScriptDirectory:
    """Import Alembic and read every revision file (disk and CPU work: run it in a worker
    thread when an event loop is waiting)."""
    from alembic.script import ScriptDirectory

    revisions = ScriptDirectory(str(DIRECTORY))
    revisions.get_current_head()  # reads the files now, not later on the caller's thread
    return revisions


def upgrade(conn: Connection, revisions: ScriptDirectory, schema: str | None = None) -> None:
    """Bring the database on ``conn`` to the newest revision, in the caller's transaction."""
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
    current = context.get_current_revision()
    if current is None and (legacy := _legacy_layout(conn, schema)):
        context.stamp(revisions, legacy)
        current = legacy
    for revision in reversed(list(revisions.iterate_revisions("heads", current or "base"))):
        with Operations.context(context):
            revision.module.upgrade()
        context.stamp(revisions, revision.revision)


def _legacy_layout(conn: Connection, schema: str | None) -> str | None:
    tables = set(inspect(conn).get_table_names(schema=schema))
    return next((revision for revision, table in _LEGACY_LAYOUTS if table in tables), None)
