"""The catalogue: products and their prices.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from keyhouse.store.tables import UtcDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "products",
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
    )
    op.create_index("ix_products_scope", "products", ["account_id", "environment", "status", "id"])
    op.create_table(
        "prices",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("product_id", sa.String(40), sa.ForeignKey("products.id"), nullable=False),
        sa.Column("account_id", sa.String(40), sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("environment", sa.String(10), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("name", sa.String(150)),
        sa.Column("type", sa.String(10), nullable=False),
        sa.Column("billing_interval", sa.String(10)),
        sa.Column("billing_frequency", sa.Integer()),
        sa.Column("trial_interval", sa.String(10)),
        sa.Column("trial_frequency", sa.Integer()),
        sa.Column("tax_mode", sa.String(20), nullable=False),
        sa.Column("unit_price_amount", sa.String(20), nullable=False),
        sa.Column("unit_price_currency", sa.String(3), nullable=False),
        sa.Column("unit_price_overrides", sa.JSON(), nullable=False),
        sa.Column("quantity_minimum", sa.Integer(), nullable=False),
        sa.Column("quantity_maximum", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("custom_data", sa.JSON(none_as_null=True)),
        sa.Column("created_at", UtcDateTime(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
    )
    op.create_index("ix_prices_scope", "prices", ["account_id", "environment", "status", "id"])
    op.create_index("ix_prices_product", "prices", ["product_id", "status", "id"])
