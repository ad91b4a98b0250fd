"""A key's last use and its optional limits (``moa.store.key_limits``): nullable columns,
so existing keys keep working unlimited.

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
