"""The catalogue through the server API: create, list, read and update products and prices.

Everything is scoped to the caller's account and environment: another account's or environment's
product or price is "not found", exactly like one that does not exist. A price's product must exist
in the same scope. Nothing is deleted; archiving is a PATCH of ``status``.

keyhouse emits no ``product.*`` / ``price.*`` events yet (Paddle does); the catalogue exists for previews.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from keyhouse.domain import catalogue
from keyhouse.domain.accounts import Environment
from keyhouse.domain.catalogue import CatalogStatus, Price, Product
from keyhouse.domain.errors import InvalidField, NotFound
from keyhouse.services.deps import Deps
from keyhouse.store import Page, PageRequest, Transaction


async def _product_in_scope(
    tx: Transaction, account_id: str, environment: Environment, product_id: str
) -> Product:
    product = await tx.get_product(account_id, environment, product_id)
    if product is None:
        raise NotFound(f"Product {product_id} not found.")
    return product


async def _price_in_scope(tx: Transaction, account_id: str, environment: Environment, price_id: str) -> Price:
    price = await tx.get_price(account_id, environment, price_id)
    if price is None:
        raise NotFound(f"Price {price_id} not found.")
    return price


# --- products --------------------------------------------------------------------------------------


async def create_product(
    deps: Deps, account_id: str, environment: Environment, body: Mapping[str, object]
) -> Product:
    product = catalogue.new_product(body, account_id=account_id, environment=environment, now=deps.clock())
    async with deps.store.transaction() as tx:
        await tx.add_product(product)
    return product


async def list_products(
    deps: Deps,
    account_id: str,
    environment: Environment,
    statuses: Collection[CatalogStatus],
    page: PageRequest,
) -> Page[Product]:
    async with deps.store.read() as tx:
        return await tx.list_products(account_id, environment, statuses, page)


async def get_product(deps: Deps, account_id: str, environment: Environment, product_id: str) -> Product:
    async with deps.store.read() as tx:
        return await _product_in_scope(tx, account_id, environment, product_id)


async def update_product(
    deps: Deps, account_id: str, environment: Environment, product_id: str, body: Mapping[str, object]
) -> Product:
    """PATCH: the fields given change; ``status: archived`` archives, ``active`` restores."""
    async with deps.store.transaction() as tx:
        product = await _product_in_scope(tx, account_id, environment, product_id)
        changed = catalogue.update_product(product, body, deps.clock())
        if changed is not product:
            await tx.update_product(changed)
    return changed


# --- prices ----------------------------------------------------------------------------------------


async def create_price(
    deps: Deps, account_id: str, environment: Environment, body: Mapping[str, object]
) -> Price:
    """The body is checked first; then its ``product_id`` must name a product of the caller's scope."""
    price = catalogue.new_price(body, account_id=account_id, environment=environment, now=deps.clock())
    async with deps.store.transaction() as tx:
        if await tx.get_product(account_id, environment, price.product_id) is None:
            raise InvalidField.on("product_id", f"product {price.product_id} not found")
        await tx.add_price(price)
    return price


async def list_prices(
    deps: Deps,
    account_id: str,
    environment: Environment,
    product_ids: Collection[str] | None,
    statuses: Collection[CatalogStatus],
    page: PageRequest,
) -> Page[Price]:
    async with deps.store.read() as tx:
        return await tx.list_prices(account_id, environment, product_ids, statuses, page)


async def get_price(deps: Deps, account_id: str, environment: Environment, price_id: str) -> Price:
    async with deps.store.read() as tx:
        return await _price_in_scope(tx, account_id, environment, price_id)


async def update_price(
    deps: Deps, account_id: str, environment: Environment, price_id: str, body: Mapping[str, object]
) -> Price:
    """PATCH: the fields given change (``product_id`` never does); ``status`` archives or restores."""
    async with deps.store.transaction() as tx:
        price = await _price_in_scope(tx, account_id, environment, price_id)
        changed = catalogue.update_price(price, body, deps.clock())
        if changed is not price:
            await tx.update_price(changed)
    return changed


async def prices_for_preview(
    deps: Deps, account_id: str, environment: Environment, price_ids: Collection[str]
) -> dict[str, tuple[Price, Product]]:
    """Each price of the scope among ``price_ids`` with its product, by price id, in one read.

    Ids that name no price of this scope are simply absent (the caller reports them); archived
    prices and products are included with their status, for the caller to judge.
    """
    async with deps.store.read() as tx:
        found = await tx.get_prices(account_id, environment, price_ids)
        products = {
            p.id: p for p in await tx.get_products(account_id, environment, {p.product_id for p in found})
        }
    return {price.id: (price, products[price.product_id]) for price in found if price.product_id in products}
