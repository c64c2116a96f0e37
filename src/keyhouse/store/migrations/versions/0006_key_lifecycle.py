"""Key lifecycle: the expiry job's notice time, rotations and the rotation that issued a secret,
and per-day usage.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expiring_noticed_at", UtcDateTime()))
    op.create_index("ix_api_keys_expiry", "api_keys", ["status", "expires_at"])
    with op.batch_alter_table("api_key_secrets") as batch:
        batch.add_column(sa.Column("rotation_id", sa.String(40)))
    op.create_table(
        "api_key_rotations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("grace_period_seconds", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("new_key_expires_at", UtcDateTime()),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_api_key_rotations_key", "api_key_rotations", ["api_key_id", "status", "id"])
    op.create_table(
        "api_key_usage",
        sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("day", sa.Date(), primary_key=True),
        sa.Column("permission", sa.String(60), primary_key=True),
        sa.Column("requests", sa.Integer(), nullable=False),
    )
