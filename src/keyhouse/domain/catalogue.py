"""The catalogue: products and their prices in Paddle's shapes, as much as previews need.

A product is what is sold; a price says how much, in which currency and how often. Amounts are
strings of minor units, as on Paddle's wire (``"1000"`` USD is $10.00). Neither is ever deleted:
PATCH ``status: archived`` retires one and ``active`` brings it back. Both belong to one account and
environment; a price's product is in the same scope (the services check that).

Bodies arrive as parsed JSON of any shape. :func:`new_product`, :func:`update_product`,
:func:`new_price` and :func:`update_price` answer with an entity or one :class:`InvalidField` that
names every bad field (nested ones by path: ``unit_price.amount``,
``unit_price_overrides[0].country_codes``), never with another exception.

This module is about 600 lines: half of it is the field parsers at the end, private to these two
entities. Move them to their own module when a third entity (discounts, say) needs them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar
from urllib.parse import urlsplit

from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import is_id, new_id
from keyhouse.domain.times import rfc3339

PRODUCT_NAME_MAX = 200
PRODUCT_DESCRIPTION_MAX = 2048
PRICE_DESCRIPTION_MIN, PRICE_DESCRIPTION_MAX = 2, 500
PRICE_NAME_MAX = 150
QUANTITY_MAX = 999_999_999
OVERRIDES_MAX = 250
# keyhouse's own bounds, where Paddle states none: they keep every value storable and every sum exact.
IMAGE_URL_MAX = 2048
FREQUENCY_MAX = 999
AMOUNT_DIGITS_MAX = 15
CUSTOM_DATA_DEPTH_MAX = 32

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)
Parser = Callable[[str, object], T]


class CatalogType(StrEnum):
    CUSTOM = "custom"
    STANDARD = "standard"


class TaxCategory(StrEnum):
    DIGITAL_GOODS = "digital-goods"
    EBOOKS = "ebooks"
    IMPLEMENTATION_SERVICES = "implementation-services"
    PROFESSIONAL_SERVICES = "professional-services"
    SAAS = "saas"
    SOFTWARE_PROGRAMMING_SERVICES = "software-programming-services"
    STANDARD = "standard"
    TRAINING_SERVICES = "training-services"
    WEBSITE_HOSTING = "website-hosting"


class CatalogStatus(StrEnum):
    ACTIVE = "active"
    ARCHIVED = "archived"


class TaxMode(StrEnum):
    ACCOUNT_SETTING = "account_setting"
    EXTERNAL = "external"  # prices exclude tax
    INTERNAL = "internal"  # prices include tax


class Interval(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    YEAR = "year"


#: Paddle's supported currencies (spec ``currency_code``), in the spec's order.
_CURRENCIES = (
    "USD EUR GBP JPY AUD CAD CHF HKD SGD SEK ARS BRL CNY COP CZK DKK HUF ILS INR KRW MXN NOK NZD PLN "
    "RUB THB TRY TWD UAH VND ZAR"
)
CURRENCY_CODES = tuple(_CURRENCIES.split())
#: Paddle's supported countries (spec ``country_code_supported``).
_COUNTRIES = (
    "AD AE AG AI AL AM AO AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV "
    "BW BZ CA CC CG CH CI CK CL CM CN CO CR CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH ER ES ET FI "
    "FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HU ID IE IL "
    "IM IN IO IQ IS IT JE JM JO JP KE KG KH KI KM KN KR KW KY KZ LA LB LC LI LK LR LS LT LU LV MA MC "
    "MD ME MF MG MH MK MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NL NO NP NR NU NZ OM PA "
    "PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RW SA SB SC SE SG SH SI SJ SK SL SM SN SR ST "
    "SV SX SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VG VI VN VU WF "
    "WS XK YT ZA ZM"
)
COUNTRY_CODES = frozenset(_COUNTRIES.split())

PRODUCT_CREATE_FIELDS = frozenset({"name", "description", "type", "tax_category", "image_url", "custom_data"})
PRODUCT_UPDATE_FIELDS = PRODUCT_CREATE_FIELDS | {"status"}
PRICE_CREATE_FIELDS = frozenset(
    {
        "description",
        "type",
        "name",
        "product_id",
        "billing_cycle",
        "trial_period",
        "tax_mode",
        "unit_price",
        "unit_price_overrides",
        "quantity",
        "custom_data",
    }
)
PRICE_UPDATE_FIELDS = (PRICE_CREATE_FIELDS - {"product_id"}) | {"status"}


# --- values (also their own wire shapes: plain strings and integers, in Paddle's field order) -----


@dataclass(frozen=True, slots=True, kw_only=True)
class Money:
    amount: str  # minor units, a non-negative integer without leading zeros
    currency_code: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Duration:
    interval: str  # an Interval value
    frequency: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Quantity:
    minimum: int = 1
    maximum: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class UnitPriceOverride:
    country_codes: tuple[str, ...]
    unit_price: Money


# --- entities --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Product:
    id: str
    account_id: str
    environment: Environment
    name: str
    description: str | None
    type: CatalogType
    tax_category: TaxCategory
    image_url: str | None  # an absolute http(s) URL, "" or None, as given
    custom_data: dict[str, Any] | None
    status: CatalogStatus
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Price:
    id: str
    product_id: str
    account_id: str
    environment: Environment
    description: str
    name: str | None
    type: CatalogType
    billing_cycle: Duration | None  # None: a one-time price
    trial_period: Duration | None  # only with a billing cycle
    tax_mode: TaxMode
    unit_price: Money
    unit_price_overrides: tuple[UnitPriceOverride, ...]
    quantity: Quantity
    status: CatalogStatus
    custom_data: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ProductWire:
    """A product as Paddle shows it (field order of Paddle's responses).

    NOTE: wire format. Never reorder or rename fields; a new field gets a default.
    """

    id: str
    name: str
    tax_category: str
    type: str
    description: str | None
    image_url: str | None
    custom_data: dict[str, Any] | None
    status: str
    import_meta: None = None  # keyhouse imports nothing
    created_at: str
    updated_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PriceWire:
    """A price as Paddle shows it (field order of Paddle's responses).

    NOTE: wire format. Never reorder or rename fields; a new field gets a default.
    """

    id: str
    product_id: str
    type: str
    description: str
    name: str | None
    billing_cycle: Duration | None
    trial_period: Duration | None
    tax_mode: str
    unit_price: Money
    unit_price_overrides: list[UnitPriceOverride] = field(default_factory=list)
    custom_data: dict[str, Any] | None
    status: str
    quantity: Quantity
    import_meta: None = None
    created_at: str
    updated_at: str


def product_to_wire(product: Product) -> ProductWire:
    return ProductWire(
        id=product.id,
        name=product.name,
        tax_category=product.tax_category.value,
        type=product.type.value,
        description=product.description,
        image_url=product.image_url,
        custom_data=product.custom_data,
        status=product.status.value,
        created_at=rfc3339(product.created_at),
        updated_at=rfc3339(product.updated_at),
    )


def price_to_wire(price: Price) -> PriceWire:
    return PriceWire(
        id=price.id,
        product_id=price.product_id,
        type=price.type.value,
        description=price.description,
        name=price.name,
        billing_cycle=price.billing_cycle,
        trial_period=price.trial_period,
        tax_mode=price.tax_mode.value,
        unit_price=price.unit_price,
        unit_price_overrides=list(price.unit_price_overrides),
        custom_data=price.custom_data,
        status=price.status.value,
        quantity=price.quantity,
        created_at=rfc3339(price.created_at),
        updated_at=rfc3339(price.updated_at),
    )


# --- creating and updating -------------------------------------------------------------------------


def new_product(
    body: Mapping[str, object], *, account_id: str, environment: Environment, now: datetime
) -> Product:
    """A product from a create body: ``name`` and ``tax_category`` required, ``type`` defaults to standard."""
    check = _Checker(body, PRODUCT_CREATE_FIELDS)
    product = Product(
        id=new_id("pro"),
        account_id=account_id,
        environment=environment,
        name=check.required("name", _string(1, PRODUCT_NAME_MAX), ""),
        description=check.optional("description", _nullable(_string(0, PRODUCT_DESCRIPTION_MAX)), None),
        type=check.optional("type", _choice(CatalogType), CatalogType.STANDARD),
        tax_category=check.required("tax_category", _choice(TaxCategory), TaxCategory.STANDARD),
        image_url=check.optional("image_url", _image_url, None),
        custom_data=check.optional("custom_data", _nullable(_custom_data), None),
        status=CatalogStatus.ACTIVE,
        created_at=now,
        updated_at=now,
    )
    check.done()
    return product


def update_product(product: Product, body: Mapping[str, object], now: datetime) -> Product:
    """Apply a PATCH body; a field left out keeps its value. The same product back when nothing changed."""
    check = _Checker(body, PRODUCT_UPDATE_FIELDS)
    changed = replace(
        product,
        name=check.optional("name", _string(1, PRODUCT_NAME_MAX), product.name),
        description=check.optional(
            "description", _nullable(_string(0, PRODUCT_DESCRIPTION_MAX)), product.description
        ),
        type=check.optional("type", _choice(CatalogType), product.type),
        tax_category=check.optional("tax_category", _choice(TaxCategory), product.tax_category),
        image_url=check.optional("image_url", _image_url, product.image_url),
        custom_data=check.optional("custom_data", _nullable(_custom_data), product.custom_data),
        status=check.optional("status", _choice(CatalogStatus), product.status),
    )
    check.done()
    return product if changed == product else replace(changed, updated_at=now)


def new_price(
    body: Mapping[str, object], *, account_id: str, environment: Environment, now: datetime
) -> Price:
    """A price from a create body: ``description``, ``product_id`` and ``unit_price`` required.

    Whether the product exists in the caller's scope is for the services to check.
    """
    check = _Checker(body, PRICE_CREATE_FIELDS)
    price = Price(
        id=new_id("pri"),
        product_id=check.required("product_id", _product_id, ""),
        account_id=account_id,
        environment=environment,
        description=check.required("description", _string(PRICE_DESCRIPTION_MIN, PRICE_DESCRIPTION_MAX), ""),
        name=check.optional("name", _nullable(_string(1, PRICE_NAME_MAX)), None),
        type=check.optional("type", _choice(CatalogType), CatalogType.STANDARD),
        billing_cycle=check.optional("billing_cycle", _nullable(_duration), None),
        trial_period=check.optional("trial_period", _nullable(_duration), None),
        tax_mode=check.optional("tax_mode", _choice(TaxMode), TaxMode.ACCOUNT_SETTING),
        unit_price=check.required("unit_price", _money, Money(amount="0", currency_code="USD")),
        unit_price_overrides=check.optional("unit_price_overrides", _overrides, ()),
        quantity=check.optional("quantity", _quantity, Quantity()),
        status=CatalogStatus.ACTIVE,
        custom_data=check.optional("custom_data", _nullable(_custom_data), None),
        created_at=now,
        updated_at=now,
    )
    _trial_needs_cycle(check, price)
    check.done()
    return price


def update_price(price: Price, body: Mapping[str, object], now: datetime) -> Price:
    """Apply a PATCH body (``product_id`` can't change); the same price back when nothing changed."""
    check = _Checker(body, PRICE_UPDATE_FIELDS)
    changed = replace(
        price,
        description=check.optional(
            "description", _string(PRICE_DESCRIPTION_MIN, PRICE_DESCRIPTION_MAX), price.description
        ),
        name=check.optional("name", _nullable(_string(1, PRICE_NAME_MAX)), price.name),
        type=check.optional("type", _choice(CatalogType), price.type),
        billing_cycle=check.optional("billing_cycle", _nullable(_duration), price.billing_cycle),
        trial_period=check.optional("trial_period", _nullable(_duration), price.trial_period),
        tax_mode=check.optional("tax_mode", _choice(TaxMode), price.tax_mode),
        unit_price=check.optional("unit_price", _money, price.unit_price),
        unit_price_overrides=check.optional("unit_price_overrides", _overrides, price.unit_price_overrides),
        quantity=check.optional("quantity", _quantity, price.quantity),
        status=check.optional("status", _choice(CatalogStatus), price.status),
        custom_data=check.optional("custom_data", _nullable(_custom_data), price.custom_data),
    )
    _trial_needs_cycle(check, changed)
    check.done()
    return price if changed == price else replace(changed, updated_at=now)


def _trial_needs_cycle(check: _Checker, price: Price) -> None:
    if price.trial_period is not None and price.billing_cycle is None:
        check.errors.append(
            FieldError("trial_period", "requires billing_cycle: a one-time price has no trial")
        )


# --- field parsers: (field path, JSON value) → value, or InvalidField --------------------------------


class _Checker:
    """Collects every bad field of one JSON object, so a single answer names them all."""

    def __init__(self, body: Mapping[Any, object], allowed: frozenset[str], prefix: str = "") -> None:
        self.body = body
        self.prefix = prefix
        unknown = sorted(str(name) for name in body if name not in allowed)
        self.errors = [FieldError(prefix + name, "unknown field") for name in unknown]

    def optional(self, name: str, parse: Parser[T], fallback: T) -> T:
        """The parsed field, or ``fallback`` when it is absent (or bad: then the error is kept)."""
        if name not in self.body:
            return fallback
        try:
            return parse(self.prefix + name, self.body[name])
        except InvalidField as exc:
            self.errors.extend(exc.errors or ())
            return fallback

    def required(self, name: str, parse: Parser[T], placeholder: T) -> T:
        if name not in self.body:
            self.errors.append(FieldError(self.prefix + name, "must be provided as part of the request"))
            return placeholder
        return self.optional(name, parse, placeholder)

    def done(self) -> None:
        if self.errors:
            raise InvalidField(errors=self.errors)


def _object(name: str, value: object, allowed: frozenset[str]) -> _Checker:
    if not isinstance(value, dict):
        raise InvalidField.on(name, "must be an object")
    return _Checker(value, allowed, prefix=name + ".")


def _storable(name: str, value: str) -> str:
    """Text every database keeps as given: PostgreSQL refuses NUL in text."""
    if "\x00" in value:
        raise InvalidField.on(name, "must not contain NUL characters")
    return value


def _string(minimum: int, maximum: int) -> Parser[str]:
    def parse(name: str, value: object) -> str:
        if not isinstance(value, str):
            raise InvalidField.on(name, "must be a string")
        if not minimum <= len(value) <= maximum:
            raise InvalidField.on(
                name, f"length must be between {minimum} and {maximum}, provided {len(value)}"
            )
        return _storable(name, value)

    return parse


def _nullable(parse: Parser[T]) -> Parser[T | None]:
    def parse_or_null(name: str, value: object) -> T | None:
        return None if value is None else parse(name, value)

    return parse_or_null


def _choice(enum: type[E]) -> Parser[E]:
    def parse(name: str, value: object) -> E:
        if isinstance(value, str) and value in enum._value2member_map_:
            return enum(value)
        raise InvalidField.on(name, "must be one of: " + ", ".join(member.value for member in enum))

    return parse


def _integer(minimum: int, maximum: int) -> Parser[int]:
    def parse(name: str, value: object) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidField.on(name, "must be an integer")
        if not minimum <= value <= maximum:
            raise InvalidField.on(name, f"must be between {minimum} and {maximum}, provided {value}")
        return value

    return parse


def _product_id(name: str, value: object) -> str:
    if isinstance(value, str) and is_id("pro", value):
        return value
    raise InvalidField.on(name, "must be a product id: pro_ followed by 26 lowercase letters or digits")


_URL_FORBIDDEN = re.compile(r"[\x00-\x20\x7f]")


def _image_url(name: str, value: object) -> str | None:
    """An absolute http(s) URL; ``""`` and null clear the image (Paddle accepts both)."""
    if value is None or value == "":
        return None if value is None else ""
    if not isinstance(value, str):
        raise InvalidField.on(name, "must be a URL, an empty string or null")
    if len(value) > IMAGE_URL_MAX:
        raise InvalidField.on(name, f"length must be at most {IMAGE_URL_MAX}, provided {len(value)}")
    try:
        parts = urlsplit(value)
        absolute = parts.scheme in ("http", "https") and bool(parts.hostname)
    except ValueError:  # e.g. an unclosed IPv6 bracket
        absolute = False
    if not absolute or _URL_FORBIDDEN.search(value):
        raise InvalidField.on(name, "must be an absolute http or https URL")
    return value


_JSON_SCALARS = (str, int, float, bool, type(None))


def _custom_data(name: str, value: object) -> dict[str, Any]:
    """Any JSON object, nested at most ``CUSTOM_DATA_DEPTH_MAX`` deep, without NUL in its text."""
    if not isinstance(value, dict):
        raise InvalidField.on(name, "must be an object or null")
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > CUSTOM_DATA_DEPTH_MAX:
            raise InvalidField.on(name, f"must be nested at most {CUSTOM_DATA_DEPTH_MAX} levels deep")
        if isinstance(node, dict):
            for key, item in node.items():
                if not isinstance(key, str):
                    raise InvalidField.on(name, "keys must be strings")
                _storable(name, key)
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            stack.extend((item, depth + 1) for item in node)
        elif isinstance(node, str):
            _storable(name, node)
        elif not isinstance(node, _JSON_SCALARS) or (isinstance(node, float) and not math.isfinite(node)):
            raise InvalidField.on(name, "must hold JSON values only")
    return value


def _duration(name: str, value: object) -> Duration:
    check = _object(name, value, frozenset({"interval", "frequency"}))
    duration = Duration(
        interval=check.required("interval", _choice(Interval), Interval.DAY).value,
        frequency=check.required("frequency", _integer(1, FREQUENCY_MAX), 1),
    )
    check.done()
    return duration


_AMOUNT = re.compile(rf"[0-9]{{1,{AMOUNT_DIGITS_MAX}}}", re.ASCII)


def _amount(name: str, value: object) -> str:
    if not isinstance(value, str) or _AMOUNT.fullmatch(value) is None:
        raise InvalidField.on(
            name,
            "must be a string holding a non-negative integer amount in the lowest denomination "
            f'(at most {AMOUNT_DIGITS_MAX} digits), e.g. "1000" for 10.00',
        )
    return str(int(value))


def _currency(name: str, value: object) -> str:
    if isinstance(value, str) and value in CURRENCY_CODES:
        return value
    raise InvalidField.on(name, "must be a supported three-letter ISO 4217 currency code, such as USD")


def _money(name: str, value: object) -> Money:
    check = _object(name, value, frozenset({"amount", "currency_code"}))
    money = Money(
        amount=check.required("amount", _amount, "0"),
        currency_code=check.required("currency_code", _currency, "USD"),
    )
    check.done()
    return money


def _quantity(name: str, value: object) -> Quantity:
    check = _object(name, value, frozenset({"minimum", "maximum"}))
    quantity = Quantity(
        minimum=check.required("minimum", _integer(1, QUANTITY_MAX), 1),
        maximum=check.required("maximum", _integer(1, QUANTITY_MAX), QUANTITY_MAX),
    )
    if quantity.maximum < quantity.minimum:
        check.errors.append(FieldError(f"{name}.maximum", "must be greater than or equal to minimum"))
    check.done()
    return quantity


def _country_codes(name: str, value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise InvalidField.on(name, "must be a non-empty array of country codes")
    unsupported = [code for code in value if not (isinstance(code, str) and code in COUNTRY_CODES)]
    if unsupported:
        raise InvalidField.on(name, "must hold supported two-letter ISO 3166-1 alpha-2 country codes")
    if len(set(value)) != len(value):
        raise InvalidField.on(name, "must not repeat a country code")
    return tuple(value)


def _override(name: str, value: object) -> UnitPriceOverride:
    check = _object(name, value, frozenset({"country_codes", "unit_price"}))
    override = UnitPriceOverride(
        country_codes=check.required("country_codes", _country_codes, ()),
        unit_price=check.required("unit_price", _money, Money(amount="0", currency_code="USD")),
    )
    check.done()
    return override


def _overrides(name: str, value: object) -> tuple[UnitPriceOverride, ...]:
    if not isinstance(value, list):
        raise InvalidField.on(name, "must be an array")
    if len(value) > OVERRIDES_MAX:
        raise InvalidField.on(name, f"must have at most {OVERRIDES_MAX} items, provided {len(value)}")
    errors: list[FieldError] = []
    overrides = []
    for index, item in enumerate(value):
        try:
            overrides.append(_override(f"{name}[{index}]", item))
        except InvalidField as exc:
            errors.extend(exc.errors or ())
    if errors:
        raise InvalidField(errors=errors)
    return tuple(overrides)
