"""Origin-restricted client tokens, API-key exposures, per-environment tax rates.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("client_tokens") as batch:
        batch.add_column(sa.Column("allowed_origins", sa.JSON(none_as_null=True)))
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("sandbox_tax_rate", sa.String(12), nullable=False, server_default="0"))
        batch.add_column(sa.Column("live_tax_rate", sa.String(12), nullable=False, server_default="0"))
    op.create_table(
        "api_key_exposures",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("api_key_id", sa.String(40), sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("risk_level", sa.String(10), nullable=False),
        sa.Column("action_taken", sa.String(10), nullable=False),
        sa.Column("source", sa.String(20), nullable=False),
        sa.Column("reference", sa.String(250), nullable=False),
        sa.Column("description", sa.String(250)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_api_key_exposures_key", "api_key_exposures", ["api_key_id", "source", "reference"])
    op.create_index("ix_api_key_exposures_account", "api_key_exposures", ["account_id", "id"])
    if op.get_bind().dialect.name == "postgresql":
        # Previews cache prices, products and tax rates per process; these changes must reach them.
        for table in ("products", "prices", "accounts"):
            op.execute(
                f"CREATE TRIGGER {table}_notify AFTER INSERT OR UPDATE OR DELETE ON {table} "
                "FOR EACH STATEMENT EXECUTE FUNCTION keyhouse_notify_change()"
            )
