"""Leases on running jobs and exports, and the parameters any process needs to run them.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TABLES = ("jobs", "exports")


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("lease_owner", sa.String(length=100), nullable=True))
            batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))
            batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
            batch.add_column(sa.Column("params", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table) as batch:
            for column in ("params", "attempts", "lease_expires_at", "lease_owner"):
                batch.drop_column(column)
