"""Integrations, installations, client-side tokens, the events outbox, features and their audit log.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "integrations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("early_access", sa.Boolean(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "installations",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("integration_id", sa.String(40), sa.ForeignKey("integrations.id"), nullable=False),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("uninstalled_at", UtcDateTime()),
    )
    op.create_index("ix_installations_account", "installations", ["account_id", "id"])
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("installation_id", sa.String(40)))
        batch.create_foreign_key("fk_api_keys_installation", "installations", ["installation_id"], ["id"])
    op.create_table(
        "client_tokens",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(150), nullable=False),
        sa.Column("description", sa.String(500)),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("creator_kind", sa.String(20), nullable=False),
        sa.Column("creator_id", sa.String(150), nullable=False),
        sa.Column("installation_id", sa.String(40), sa.ForeignKey("installations.id")),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.Column("revoked_at", UtcDateTime()),
    )
    op.create_index("ix_client_tokens_scope", "client_tokens", ["account_id", "environment", "status", "id"])
    op.create_index("ix_client_tokens_installation", "client_tokens", ["installation_id", "status", "id"])
    op.create_table(
        "events",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("installation_id", sa.String(40)),
        sa.Column("data", sa.JSON(), nullable=False),
    )
    op.create_index("ix_events_scope", "events", ["account_id", "environment", "id"])
    op.create_table(
        "features",
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("value", sa.String(60), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at", UtcDateTime(), nullable=False),
        sa.Column("actor", sa.String(150), nullable=False),
        sa.Column("subject", sa.String(80), nullable=False),
        sa.Column("field", sa.String(60), nullable=False),
        sa.Column("old", sa.String(150)),
        sa.Column("new", sa.String(150), nullable=False),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])
    if op.get_bind().dialect.name == "postgresql":
        # Client tokens authenticate the client-side API; their verification caches listen too.
        op.execute(
            "CREATE TRIGGER client_tokens_notify AFTER INSERT OR UPDATE OR DELETE ON client_tokens "
            "FOR EACH STATEMENT EXECUTE FUNCTION keyhouse_notify_change()"
        )
