"""Retention: the purge finds old events by ``occurred_at`` and their notifications by ``event_id``.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_events_occurred", "events", ["occurred_at"])
    op.create_index("ix_notifications_event", "notifications", ["event_id"])
