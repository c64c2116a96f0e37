"""Price and transaction previews: subtotal, tax and total per line and overall, in minor units.

keyhouse has no tax engine: one flat rate per account environment, applied as Paddle applies a
rate (``external`` and ``account_setting`` prices add tax on top; ``internal`` prices include it).
Amounts are integers of minor units (cents) and go on the wire as strings; rounding is half up.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import is_id

MAX_ITEMS = 100
#: Currencies without minor units (Paddle's list).
ZERO_DECIMAL = frozenset({"JPY", "KRW", "VND"})
SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥", "AUD": "A$", "CAD": "CA$", "INR": "₹", "BRL": "R$"}


@dataclass(frozen=True, slots=True)
class Totals:
    subtotal: int
    discount: int
    tax: int
    total: int

    def wire(self) -> dict[str, str]:
        return {
            "subtotal": str(self.subtotal),
            "discount": str(self.discount),
            "tax": str(self.tax),
            "total": str(self.total),
        }

    def formatted(self, currency: str) -> dict[str, str]:
        return {name: format_money(int(value), currency) for name, value in self.wire().items()}

    def __add__(self, other: Totals) -> Totals:
        return Totals(
            self.subtotal + other.subtotal,
            self.discount + other.discount,
            self.tax + other.tax,
            self.total + other.total,
        )


ZERO = Totals(0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Item:
    """One requested line: which price, how many."""

    price_id: str
    quantity: int


def parse_rate(value: str) -> Decimal:
    """A tax rate such as ``0.2`` (20 %): a decimal between 0 and 1."""
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise InvalidField.on("tax_rate", "must be a decimal between 0 and 1, such as 0.2") from None
    if not rate.is_finite() or not Decimal(0) <= rate <= Decimal(1):
        raise InvalidField.on("tax_rate", "must be a decimal between 0 and 1, such as 0.2")
    return rate.normalize() if rate else Decimal(0)


def rate_text(rate: Decimal) -> str:
    """``0.2`` as ``"0.2"``; never scientific notation (``1E-7``), which clients would misread."""
    return format(rate, "f")


def _round(value: Decimal) -> int:
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def line_totals(unit_amount: int, quantity: int, rate: Decimal, tax_mode: str) -> Totals:
    """Totals of ``quantity`` units; ``internal`` prices already include the tax."""
    gross = unit_amount * quantity
    if tax_mode == "internal":
        tax = gross - _round(Decimal(gross) / (1 + rate))
        return Totals(subtotal=gross - tax, discount=0, tax=tax, total=gross)
    tax = _round(Decimal(gross) * rate)
    return Totals(subtotal=gross, discount=0, tax=tax, total=gross + tax)


def format_money(amount: int, currency: str) -> str:
    """``150000, "USD"`` → ``$1,500.00`` (English formatting, as Paddle's examples)."""
    symbol = SYMBOLS.get(currency, f"{currency} ")
    sign = "-" if amount < 0 else ""
    if currency in ZERO_DECIMAL:
        return f"{sign}{symbol}{abs(amount):,}"
    major, minor = divmod(abs(amount), 100)
    return f"{sign}{symbol}{major:,}.{minor:02d}"


def parse_items(value: object) -> list[Item]:
    """The ``items`` of a preview request: 1–100 of ``{price_id, quantity}``; every mistake named."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ITEMS:
        raise InvalidField.on("items", f"must be a list of 1 to {MAX_ITEMS} items")
    errors: list[FieldError] = []
    items: list[Item] = []
    for index, raw in enumerate(value):
        where = f"items[{index}]"
        if not isinstance(raw, dict):
            errors.append(FieldError(where, "must be an object with price_id and quantity"))
            continue
        unknown = sorted(set(raw) - {"price_id", "quantity", "include_in_totals"})
        errors += [
            FieldError(f"{where}.{name}", "unknown field (only price_id items are supported)")
            for name in unknown
        ]
        price_id, quantity = raw.get("price_id"), raw.get("quantity", 1)
        good_id = isinstance(price_id, str) and is_id("pri", price_id)
        good_quantity = isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 1
        if not good_id:
            errors.append(FieldError(f"{where}.price_id", "must be a price id (pri_…)"))
        if not good_quantity:
            errors.append(FieldError(f"{where}.quantity", "must be an integer of at least 1"))
        if isinstance(price_id, str) and isinstance(quantity, int) and good_id and good_quantity:
            items.append(Item(price_id, quantity))
    if errors:
        raise InvalidField(errors=errors)
    return items
