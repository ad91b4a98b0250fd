"""A key's last use, its optional limits (``moa.store.key_limits``; nullable, so existing
keys keep working unlimited) and the USD it has spent, summed from its usage records.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # ALTER TABLE is not rewritten by the connection's schema_translate_map as CREATE TABLE
    # is: name the schema moa's tables live in (None: the default one).
    schema = op.get_context().version_table_schema
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True)), schema=schema)
    op.add_column("api_keys", sa.Column("budget_usd", sa.Float), schema=schema)
    op.add_column("api_keys", sa.Column("models", sa.Text), schema=schema)
    op.add_column(
        "api_keys",
        sa.Column("spent_usd", sa.Float, nullable=False, server_default=sa.text("0")),
        schema=schema,
    )
    keys = sa.table("api_keys", sa.column("id"), sa.column("spent_usd"), schema=schema)
    records = sa.table("usage_records", sa.column("key_id"), sa.column("cost_usd"), schema=schema)
    spent = (
        sa.select(sa.func.coalesce(sa.func.sum(records.c.cost_usd), 0.0))
        .where(records.c.key_id == keys.c.id)
        .scalar_subquery()
    )
    op.execute(keys.update().values(spent_usd=spent))
