"""Catalogue queries (products and prices), mixed into :class:`keyhouse.store.sql.SqlTransaction`.

Every query carries the account and environment, so a product or price of another scope is
simply not found.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from keyhouse.domain.accounts import Environment
from keyhouse.domain.catalogue import (
    CatalogStatus,
    CatalogType,
    Duration,
    Money,
    Price,
    Product,
    Quantity,
    TaxCategory,
    TaxMode,
    UnitPriceOverride,
)
from keyhouse.store import Page, PageRequest
from keyhouse.store.tables import prices, products


class _Sql(Protocol):
    """What the mixin needs from the transaction it is mixed into."""

    conn: AsyncConnection

    async def _page(
        self, table: sa.Table, where: sa.ColumnElement[bool], page: PageRequest
    ) -> tuple[list[sa.Row[Any]], bool, int]: ...


def _product_row(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "account_id": product.account_id,
        "environment": product.environment.value,
        "name": product.name,
        "description": product.description,
        "type": product.type.value,
        "tax_category": product.tax_category.value,
        "image_url": product.image_url,
        "custom_data": product.custom_data,
        "status": product.status.value,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


def _product(row: sa.Row[Any]) -> Product:
    return Product(
        id=row.id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        name=row.name,
        description=row.description,
        type=CatalogType(row.type),
        tax_category=TaxCategory(row.tax_category),
        image_url=row.image_url,
        custom_data=row.custom_data,
        status=CatalogStatus(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _price_row(price: Price) -> dict[str, Any]:
    cycle, trial = price.billing_cycle, price.trial_period
    return {
        "id": price.id,
        "product_id": price.product_id,
        "account_id": price.account_id,
        "environment": price.environment.value,
        "description": price.description,
        "name": price.name,
        "type": price.type.value,
        "billing_interval": None if cycle is None else cycle.interval,
        "billing_frequency": None if cycle is None else cycle.frequency,
        "trial_interval": None if trial is None else trial.interval,
        "trial_frequency": None if trial is None else trial.frequency,
        "tax_mode": price.tax_mode.value,
        "unit_price_amount": price.unit_price.amount,
        "unit_price_currency": price.unit_price.currency_code,
        "unit_price_overrides": [
            {
                "country_codes": list(o.country_codes),
                "unit_price": {"amount": o.unit_price.amount, "currency_code": o.unit_price.currency_code},
            }
            for o in price.unit_price_overrides
        ],
        "quantity_minimum": price.quantity.minimum,
        "quantity_maximum": price.quantity.maximum,
        "status": price.status.value,
        "custom_data": price.custom_data,
        "created_at": price.created_at,
        "updated_at": price.updated_at,
    }


def _duration(interval: str | None, frequency: int | None) -> Duration | None:
    return None if interval is None or frequency is None else Duration(interval=interval, frequency=frequency)


def _price(row: sa.Row[Any]) -> Price:
    return Price(
        id=row.id,
        product_id=row.product_id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        description=row.description,
        name=row.name,
        type=CatalogType(row.type),
        billing_cycle=_duration(row.billing_interval, row.billing_frequency),
        trial_period=_duration(row.trial_interval, row.trial_frequency),
        tax_mode=TaxMode(row.tax_mode),
        unit_price=Money(amount=row.unit_price_amount, currency_code=row.unit_price_currency),
        unit_price_overrides=tuple(
            UnitPriceOverride(country_codes=tuple(o["country_codes"]), unit_price=Money(**o["unit_price"]))
            for o in row.unit_price_overrides
        ),
        quantity=Quantity(minimum=row.quantity_minimum, maximum=row.quantity_maximum),
        status=CatalogStatus(row.status),
        custom_data=row.custom_data,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _scope(table: sa.Table, account_id: str, environment: Environment) -> sa.ColumnElement[bool]:
    return sa.and_(table.c.account_id == account_id, table.c.environment == environment.value)


def _statuses(table: sa.Table, statuses: Collection[CatalogStatus]) -> sa.ColumnElement[bool]:
    return table.c.status.in_(sorted(s.value for s in statuses))


class CatalogueQueries:
    """Products and prices; ``self`` is a SqlTransaction (its ``conn`` and ``_page``)."""

    async def add_product(self: _Sql, product: Product) -> None:
        await self.conn.execute(products.insert().values(**_product_row(product)))

    async def update_product(self: _Sql, product: Product) -> None:
        row = _product_row(product)
        del row["id"], row["account_id"], row["environment"], row["created_at"]
        await self.conn.execute(products.update().where(products.c.id == product.id).values(**row))

    async def get_product(
        self: _Sql, account_id: str, environment: Environment, product_id: str
    ) -> Product | None:
        query = products.select().where(
            _scope(products, account_id, environment), products.c.id == product_id
        )
        row = (await self.conn.execute(query)).first()
        return None if row is None else _product(row)

    async def get_products(
        self: _Sql, account_id: str, environment: Environment, product_ids: Collection[str]
    ) -> list[Product]:
        """The products of the scope among ``product_ids``, in id order; unknown ids are left out."""
        if not product_ids:
            return []
        query = (
            products.select()
            .where(_scope(products, account_id, environment), products.c.id.in_(sorted(set(product_ids))))
            .order_by(products.c.id)
        )
        return [_product(r) for r in await self.conn.execute(query)]

    async def list_products(
        self: _Sql,
        account_id: str,
        environment: Environment,
        statuses: Collection[CatalogStatus],
        page: PageRequest,
    ) -> Page[Product]:
        where = sa.and_(_scope(products, account_id, environment), _statuses(products, statuses))
        rows, has_more, total = await self._page(products, where, page)
        return Page([_product(r) for r in rows], has_more, total)

    async def add_price(self: _Sql, price: Price) -> None:
        await self.conn.execute(prices.insert().values(**_price_row(price)))

    async def update_price(self: _Sql, price: Price) -> None:
        row = _price_row(price)
        del row["id"], row["product_id"], row["account_id"], row["environment"], row["created_at"]
        await self.conn.execute(prices.update().where(prices.c.id == price.id).values(**row))

    async def get_price(self: _Sql, account_id: str, environment: Environment, price_id: str) -> Price | None:
        query = prices.select().where(_scope(prices, account_id, environment), prices.c.id == price_id)
        row = (await self.conn.execute(query)).first()
        return None if row is None else _price(row)

    async def get_prices(
        self: _Sql, account_id: str, environment: Environment, price_ids: Collection[str]
    ) -> list[Price]:
        """The prices of the scope among ``price_ids``, in id order; unknown ids are left out."""
        if not price_ids:
            return []
        query = (
            prices.select()
            .where(_scope(prices, account_id, environment), prices.c.id.in_(sorted(set(price_ids))))
            .order_by(prices.c.id)
        )
        return [_price(r) for r in await self.conn.execute(query)]

    async def list_prices(
        self: _Sql,
        account_id: str,
        environment: Environment,
        product_ids: Collection[str] | None,
        statuses: Collection[CatalogStatus],
        page: PageRequest,
    ) -> Page[Price]:
        """``product_ids`` None lists the prices of every product; else only of those products."""
        where = sa.and_(_scope(prices, account_id, environment), _statuses(prices, statuses))
        if product_ids is not None:
            where = sa.and_(where, prices.c.product_id.in_(sorted(set(product_ids))))
        rows, has_more, total = await self._page(prices, where, page)
        return Page([_price(r) for r in rows], has_more, total)
