"""Pricing and transaction previews, in Paddle's request and response shapes.

Only ``price_id`` items are previewed (no non-catalogue prices), there is no currency conversion,
no discounts and no tax engine: the account environment's flat tax rate applies to every line.
"""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

from keyhouse.domain import previews
from keyhouse.domain.accounts import Environment
from keyhouse.domain.catalogue import CatalogStatus, Price, Product, price_to_wire, product_to_wire
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.previews import Item, Totals, line_totals
from keyhouse.services.caches import ChangeCache
from keyhouse.services.catalogue import prices_for_preview
from keyhouse.services.deps import Deps

#: What Paddle's checkout would offer; keyhouse serves no checkout, so this is the card default.
PAYMENT_METHODS = ["card"]
ECHOED = ("customer_id", "address_id", "business_id", "discount_id", "customer_ip_address", "address")
PRICING_FIELDS = frozenset({"items", "currency_code", *ECHOED})
TRANSACTION_FIELDS = frozenset({"items", "currency_code", "ignore_trials", *ECHOED})


@dataclasses.dataclass(frozen=True, slots=True)
class Line:
    item: Item
    price: Price
    product: Product
    unit: Totals
    totals: Totals


def _wire(value: Any) -> Any:
    return dataclasses.asdict(value)


async def tax_rate(deps: Deps, account_id: str, environment: Environment) -> Decimal:
    async with deps.store.read() as tx:
        return previews.parse_rate(await tx.get_tax_rate(account_id, environment))


class PreviewCatalogue:
    """Prices, products and tax rates as previews need them, cached per process until the store's
    change marker moves (any commit on SQLite; a catalogue, tax or credential change on PostgreSQL).

    A preview is the hottest public call and its inputs rarely change: reading them costs
    milliseconds per request (bench/client_side.py), a cache hit microseconds, and an archived price
    is still refused on the very next request.
    """

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._cache: ChangeCache[
            tuple[str, Environment, tuple[str, ...]], tuple[dict[str, tuple[Price, Product]], Decimal]
        ] = ChangeCache(deps.store, 10_000)

    async def lookup(
        self, account_id: str, environment: Environment, price_ids: list[str]
    ) -> tuple[dict[str, tuple[Price, Product]], Decimal]:
        cache = self._cache.current()
        key = (account_id, environment, tuple(sorted(set(price_ids))))
        if cache is not None and key in cache:
            return cache[key]
        found = await prices_for_preview(self.deps, account_id, environment, price_ids)
        entry = (found, await tax_rate(self.deps, account_id, environment))
        if cache is not None:
            cache[key] = entry
        return entry


async def _lines(
    deps: Deps, account_id: str, environment: Environment, body: dict[str, Any]
) -> tuple[list[Line], str, Decimal]:
    """Price every item, or refuse with every problem named (unknown, archived, quantity, currency)."""
    items = previews.parse_items(body.get("items"))
    requested = body.get("currency_code")
    if requested is not None and not isinstance(requested, str):
        raise InvalidField.on("currency_code", "must be a currency code such as USD")
    found, rate = await deps.preview_catalogue.lookup(account_id, environment, [i.price_id for i in items])
    errors: list[FieldError] = []
    lines: list[Line] = []
    for index, item in enumerate(items):
        where = f"items[{index}]"
        if item.price_id not in found:
            errors.append(FieldError(f"{where}.price_id", f"price {item.price_id} not found"))
            continue
        price, product = found[item.price_id]
        if price.status is CatalogStatus.ARCHIVED or product.status is CatalogStatus.ARCHIVED:
            errors.append(FieldError(f"{where}.price_id", f"price {item.price_id} is archived"))
            continue
        if not price.quantity.minimum <= item.quantity <= price.quantity.maximum:
            errors.append(
                FieldError(
                    f"{where}.quantity",
                    f"must be between {price.quantity.minimum} and {price.quantity.maximum} for this price",
                )
            )
            continue
        unit_amount = int(price.unit_price.amount)
        lines.append(
            Line(
                item,
                price,
                product,
                unit=line_totals(unit_amount, 1, rate, price.tax_mode.value),
                totals=line_totals(unit_amount, item.quantity, rate, price.tax_mode.value),
            )
        )
    if errors:
        raise InvalidField(errors=errors)
    currencies = sorted({line.price.unit_price.currency_code for line in lines})
    if len(currencies) > 1:
        raise InvalidField.on("items", f"all prices must be in one currency; found {', '.join(currencies)}")
    currency = currencies[0]
    if requested is not None and requested != currency:
        raise InvalidField.on(
            "currency_code", f"keyhouse does not convert currencies: these prices are in {currency}"
        )
    return lines, currency, rate


def _echo(body: dict[str, Any]) -> dict[str, Any]:
    return {name: body.get(name) for name in ECHOED}


async def pricing_preview(
    deps: Deps, account_id: str, environment: Environment, body: dict[str, Any]
) -> dict[str, Any]:
    lines, currency, rate = await _lines(deps, account_id, environment, body)
    return {
        **_echo(body),
        "currency_code": currency,
        "details": {
            "line_items": [
                {
                    "price": _wire(price_to_wire(line.price)),
                    "quantity": line.item.quantity,
                    "tax_rate": previews.rate_text(rate),
                    "unit_totals": line.unit.wire(),
                    "formatted_unit_totals": line.unit.formatted(currency),
                    "totals": line.totals.wire(),
                    "formatted_totals": line.totals.formatted(currency),
                    "product": _wire(product_to_wire(line.product)),
                    "discounts": [],
                }
                for line in lines
            ]
        },
        "available_payment_methods": PAYMENT_METHODS,
    }


async def transaction_preview(
    deps: Deps, account_id: str, environment: Environment, body: dict[str, Any]
) -> dict[str, Any]:
    lines, currency, rate = await _lines(deps, account_id, environment, body)
    counted = [raw.get("include_in_totals", True) is not False for raw in body["items"]]
    total = sum((line.totals for line, count in zip(lines, counted, strict=True) if count), previews.ZERO)
    return {
        **_echo(body),
        "currency_code": currency,
        "ignore_trials": bool(body.get("ignore_trials", False)),
        "items": [
            {
                "price_id": line.price.id,
                "quantity": line.item.quantity,
                "include_in_totals": count,
                "proration": None,
                "price": _wire(price_to_wire(line.price)),
            }
            for line, count in zip(lines, counted, strict=True)
        ],
        "details": {
            "tax_rates_used": [{"tax_rate": previews.rate_text(rate), "totals": total.wire()}],
            "totals": {
                **total.wire(),
                "credit": "0",
                "credit_to_balance": "0",
                "balance": str(total.total),
                "grand_total": str(total.total),
                "grand_total_tax": str(total.tax),
                "fee": None,
                "earnings": None,
                "currency_code": currency,
            },
            "line_items": [
                {
                    "price_id": line.price.id,
                    "quantity": line.item.quantity,
                    "tax_rate": previews.rate_text(rate),
                    "unit_totals": line.unit.wire(),
                    "totals": line.totals.wire(),
                    "product": _wire(product_to_wire(line.product)),
                    "proration": None,
                }
                for line in lines
            ],
        },
        "available_payment_methods": PAYMENT_METHODS,
    }
