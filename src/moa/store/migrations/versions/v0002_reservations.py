"""Credit reservations as leases (``moa.store.reservations``): the credits a running
request holds, which process holds them and until when.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("request_id", sa.String(100), nullable=False),
        sa.Column("key_id", sa.String(32), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("credits", sa.BigInteger, nullable=False),
        sa.Column("owner", sa.String(100), nullable=False),
        sa.Column("route", sa.String(200), nullable=False),
        sa.Column("strategy", sa.String(100), nullable=True),
        sa.Column("models", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_reservations_owner", "reservations", ["owner"])
    op.create_index("ix_reservations_expires_at", "reservations", ["expires_at"])
