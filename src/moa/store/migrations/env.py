"""Alembic's entry point for moa: migrate on the connection ``moa.store.migrations.upgrade``
hands over (``config.attributes``), inside its transaction and its lock."""

from __future__ import annotations

from alembic import context

from moa.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table_schema=context.config.attributes.get("schema"),
)
with context.begin_transaction():
    context.run_migrations()
