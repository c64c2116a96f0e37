"""Accounts, API keys and their secret hashes; NOTIFY triggers on PostgreSQL.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Every table whose change must reach verification caches at once (see store/postgres.py).
NOTIFY_FUNCTION = """
CREATE OR REPLACE FUNCTION keyhouse_notify_change() RETURNS trigger AS $$
BEGIN
    PERFORM pg_notify('keyhouse_changes', TG_TABLE_NAME);
    RETURN NULL;
END;
$$ LANGUAGE plpgsql
"""


def notify_on(table: str) -> None:
    """On PostgreSQL, make any write to ``table`` tell every listening keyhouse process."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
            "FOR EACH STATEMENT EXECUTE FUNCTION keyhouse_notify_change()"
        )


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("description", sa.String(250)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("permissions", sa.JSON()),
        sa.Column("expires_at", UtcDateTime()),
        sa.Column("last_used_at", UtcDateTime()),
        sa.Column("exposed_at", UtcDateTime()),
        sa.Column("rotatable", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
    )
    op.create_index("ix_api_keys_scope", "api_keys", ["account_id", "environment", "id"])
    op.create_table(
        "api_key_secrets",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("pepper_id", sa.String(20), nullable=False),
        sa.Column("digest", sa.LargeBinary(32), nullable=False),
        sa.Column("valid_until", UtcDateTime()),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_api_key_secrets_key_id", "api_key_secrets", ["key_id"])
    op.create_index("ix_api_key_secrets_digest", "api_key_secrets", ["digest"])
    if op.get_bind().dialect.name == "postgresql":
        op.execute(NOTIFY_FUNCTION)
    for table in ("api_keys", "api_key_secrets"):
        notify_on(table)
