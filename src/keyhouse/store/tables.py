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
    # The flat tax rate previews apply, per environment (keyhouse has no tax engine).
    sa.Column("sandbox_tax_rate", sa.String(12), nullable=False, server_default="0"),
    sa.Column("live_tax_rate", sa.String(12), nullable=False, server_default="0"),
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
    sa.Column("expiring_noticed_at", UtcDateTime()),
    sa.Index("ix_api_keys_scope", "account_id", "environment", "id"),
    sa.Index("ix_api_keys_expiry", "status", "expires_at"),
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
    sa.Column("rotation_id", sa.String(40)),
)

# Requests per key, day and needed permission ("" when none was needed); flushed in batches.
api_key_usage = sa.Table(
    "api_key_usage",
    metadata,
    sa.Column("key_id", sa.String(40), sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("day", sa.Date(), primary_key=True),
    sa.Column("permission", sa.String(60), primary_key=True),
    sa.Column("requests", sa.Integer(), nullable=False),
)

api_key_rotations = sa.Table(
    "api_key_rotations",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
    sa.Column("grace_period_seconds", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("new_key_expires_at", UtcDateTime()),
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_api_key_rotations_key", "api_key_id", "status", "id"),
)

api_key_exposures = sa.Table(
    "api_key_exposures",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
    sa.Column("account_id", sa.String(40), nullable=False),
    sa.Column("risk_level", sa.String(10), nullable=False),
    sa.Column("action_taken", sa.String(10), nullable=False),
    sa.Column("source", sa.String(20), nullable=False),
    sa.Column("reference", sa.String(250), nullable=False),
    sa.Column("description", sa.String(250)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Index("ix_api_key_exposures_key", "api_key_id", "source", "reference"),
    sa.Index("ix_api_key_exposures_account", "account_id", "id"),
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
    sa.Column("allowed_origins", sa.JSON(none_as_null=True)),  # SQL NULL: any origin
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
    sa.Index("ix_events_occurred", "occurred_at"),
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

# --- the catalogue (products and prices) ---------------------------------------------------------

products = sa.Table(
    "products",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("description", sa.String(2048)),
    sa.Column("type", sa.String(10), nullable=False),
    sa.Column("tax_category", sa.String(40), nullable=False),
    sa.Column("image_url", sa.String(2048)),
    sa.Column("custom_data", sa.JSON(none_as_null=True)),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_products_scope", "account_id", "environment", "status", "id"),
)

prices = sa.Table(
    "prices",
    metadata,
    sa.Column("id", sa.String(40), primary_key=True),
    sa.Column("product_id", sa.String(40), sa.ForeignKey("products.id"), nullable=False),
    sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
    sa.Column("environment", sa.String(10), nullable=False),
    sa.Column("description", sa.String(500), nullable=False),
    sa.Column("name", sa.String(150)),
    sa.Column("type", sa.String(10), nullable=False),
    # A null interval means a one-time price (no billing cycle), or no trial.
    sa.Column("billing_interval", sa.String(10)),
    sa.Column("billing_frequency", sa.Integer()),
    sa.Column("trial_interval", sa.String(10)),
    sa.Column("trial_frequency", sa.Integer()),
    sa.Column("tax_mode", sa.String(20), nullable=False),
    sa.Column("unit_price_amount", sa.String(20), nullable=False),  # minor units, as on the wire
    sa.Column("unit_price_currency", sa.String(3), nullable=False),
    sa.Column("unit_price_overrides", sa.JSON(), nullable=False),
    sa.Column("quantity_minimum", sa.Integer(), nullable=False),
    sa.Column("quantity_maximum", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("custom_data", sa.JSON(none_as_null=True)),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.Index("ix_prices_scope", "account_id", "environment", "status", "id"),
    sa.Index("ix_prices_product", "product_id", "status", "id"),
)

notification_settings = sa.Table(
    "notification_settings",
    metadata,
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
    sa.Index("ix_notification_settings_scope", "account_id", "environment", "id"),
    sa.Index("ix_notification_settings_installation", "installation_id"),
)

notifications = sa.Table(
    "notifications",
    metadata,
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
    # A worker's claim: whoever holds an unexpired lease delivers; an expired one may be taken over.
    sa.Column("lease_owner", sa.String(60)),
    sa.Column("lease_until", UtcDateTime()),
    sa.Index("ix_notifications_scope", "account_id", "environment", "id"),
    sa.Index("ix_notifications_setting", "setting_id", "status", "delivered_at"),
    sa.Index("ix_notifications_due", "status", "due_at"),
    sa.Index("ix_notifications_event", "event_id"),
)

notification_logs = sa.Table(
    "notification_logs",
    metadata,
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
    sa.Index("ix_notification_logs_notification", "notification_id", "id"),
)
