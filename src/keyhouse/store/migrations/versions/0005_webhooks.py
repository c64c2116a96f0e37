"""Webhooks: notification settings, notifications (the delivery queue, with leases) and their logs.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "notification_settings",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("destination", sa.String(2048), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("api_version", sa.Integer(), nullable=False),
        sa.Column("include_sensitive_fields", sa.Boolean(), nullable=False),
        sa.Column("subscribed_events", sa.JSON(), nullable=False),
        sa.Column("endpoint_secret_key", sa.String(80), nullable=False),
        sa.Column("traffic_source", sa.String(12), nullable=False),
        sa.Column("creator_kind", sa.String(20), nullable=False),
        sa.Column("creator_id", sa.String(150), nullable=False),
        sa.Column("installation_id", sa.String(40), sa.ForeignKey("installations.id")),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index(
        "ix_notification_settings_scope", "notification_settings", ["account_id", "environment", "id"]
    )
    op.create_index("ix_notification_settings_installation", "notification_settings", ["installation_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "setting_id",
            sa.String(40),
            sa.ForeignKey("notification_settings.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("installation_id", sa.String(40)),
        sa.Column("type", sa.String(60), nullable=False),
        sa.Column("status", sa.String(15), nullable=False),
        sa.Column("origin", sa.String(10), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("occurred_at", UtcDateTime(), nullable=False),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("due_at", UtcDateTime(), nullable=False),
        sa.Column("delivered_at", UtcDateTime()),
        sa.Column("replayed_at", UtcDateTime()),
        sa.Column("last_attempt_at", UtcDateTime()),
        sa.Column("retry_at", UtcDateTime()),
        sa.Column("times_attempted", sa.Integer(), nullable=False),
        sa.Column("lease_owner", sa.String(60)),
        sa.Column("lease_until", UtcDateTime()),
    )
    op.create_index("ix_notifications_scope", "notifications", ["account_id", "environment", "id"])
    op.create_index("ix_notifications_setting", "notifications", ["setting_id", "status", "delivered_at"])
    op.create_index("ix_notifications_due", "notifications", ["status", "due_at"])
    op.create_table(
        "notification_logs",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column(
            "notification_id",
            sa.String(40),
            sa.ForeignKey("notifications.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("response_code", sa.Integer(), nullable=False),
        sa.Column("response_content_type", sa.String(200)),
        sa.Column("response_body", sa.String(600), nullable=False),
        sa.Column("attempted_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_notification_logs_notification", "notification_logs", ["notification_id", "id"])
