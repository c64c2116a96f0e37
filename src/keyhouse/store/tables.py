"""The schema, once, for both dialects. Alembic migrations create exactly these tables."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UtcDateTime(sa.TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

accounts = sa.Table(
    "accounts",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(150), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("name", sa.String(150), nullable=False),
    sa.Column("description", sa.String(250)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("permissions", sa.JSON()),  # null marks a legacy key
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("last_used_at", UtcDateTime()),
    sa.Column("exposed_at", UtcDateTime()),
    sa.Column("rotatable", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("installation_id", sa.String(40), sa.ForeignKey("installations.id")),
    sa.Index("ix_api_keys_scope", "account_id", "environment", "id"),
)

api_key_secrets = sa.Table(
    "api_key_secrets",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False, index=True),
    sa.Column("pepper_id", sa.String(20), nullable=False),
    sa.Column("digest", sa.LargeBinary(32), nullable=False, index=True),
    sa.Column("valid_until", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

integrations = sa.Table(
    "integrations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("name", sa.String(150), nullable=False),
    sa.Column("early_access", sa.Boolean(), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

installations = sa.Table(
    "installations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("integration_id", sa.String(40), sa.ForeignKey("integrations.id"), nullable=False),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("uninstalled_at", UtcDateTime()),
    sa.Index("ix_installations_account", "account_id", "id"),
)

client_tokens = sa.Table(
    "client_tokens",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("token", sa.String(64), nullable=False, unique=True),
    sa.Column("name", sa.String(150), nullable=False),
    sa.Column("description", sa.String(500)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("creator_kind", sa.String(20), nullable=False),
    sa.Column("creator_id", sa.String(150), nullable=False),
    # The owning installation (partner tokens only): what ownership filters on.
    sa.Column("installation_id", sa.String(40), sa.ForeignKey("installations.id")),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Index("ix_client_tokens_scope", "account_id", "environment", "status", "id"),
    sa.Index("ix_client_tokens_installation", "installation_id", "status", "id"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("type", sa.String(60), nullable=False),
    sa.Column("occurred_at", UtcDateTime(), nullable=False),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("installation_id", sa.String(40)),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.Index("ix_events_scope", "account_id", "environment", "id"),
)

features = sa.Table(
    "features",
    metadata,
    sa.Column("name", sa.String(60), primary_key=True),
    sa.Column("value", sa.String(60), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("actor", sa.String(150), nullable=False),
    sa.Column("subject", sa.String(80), nullable=False, index=True),
    sa.Column("field", sa.String(60), nullable=False),
    sa.Column("old", sa.String(150)),
    sa.Column("new", sa.String(150), nullable=False),
)
