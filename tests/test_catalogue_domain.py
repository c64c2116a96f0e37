"""The catalogue, the pure domain (issue 4 item 1): products and prices, their bodies and wire shapes.

No store, no clock: time is the constant ``NOW``. Every entity's wire shape is checked against
Paddle's spec subset; every bad field is answered with ``invalid_field`` naming it.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from keyhouse.domain.accounts import Environment
from keyhouse.domain.catalogue import (
    AMOUNT_DIGITS_MAX,
    CURRENCY_CODES,
    CUSTOM_DATA_DEPTH_MAX,
    OVERRIDES_MAX,
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
    new_price,
    new_product,
    price_to_wire,
    product_to_wire,
    update_price,
    update_product,
)
from keyhouse.domain.errors import InvalidField
from keyhouse.domain.ids import is_id
from tests.spec import spec, validate_component

NOW = datetime(2025, 7, 31, 5, 51, 59, 321000, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
PRODUCT_ID = "pro_01gsz4t5hdjse780zja8vvr7jg"
REQUIRED = "must be provided as part of the request"


def product(**body: Any) -> Product:
    """Alice's sandbox product from a create body (name and tax category default)."""
    return new_product(
        {"name": "AeroEdit Pro", "tax_category": "standard", **body},
        account_id=ALICE,
        environment=Environment.SANDBOX,
        now=NOW,
    )


def price(**body: Any) -> Price:
    """Alice's sandbox price from a create body (description, product and 10.00 USD default)."""
    fields = {
        "description": "Monthly",
        "product_id": PRODUCT_ID,
        "unit_price": {"amount": "1000", "currency_code": "USD"},
        **body,
    }
    return new_price(fields, account_id=ALICE, environment=Environment.LIVE, now=NOW)


def refused(make: Any, *args: Any, **kwargs: Any) -> dict[str, str]:
    """The field → message map of the InvalidField ``make(...)`` raises."""
    with pytest.raises(InvalidField) as excinfo:
        make(*args, **kwargs)
    assert excinfo.value.code == "invalid_field"
    assert excinfo.value.errors
    return {e.field: e.message for e in excinfo.value.errors}


def as_json(wire: Any) -> Any:
    return msgspec.json.decode(msgspec.json.encode(wire))


# --- products -------------------------------------------------------------------------------------


def test_a_new_product_is_active_standard_and_created_now() -> None:
    made = product()
    assert is_id("pro", made.id)
    assert (made.account_id, made.environment) == (ALICE, Environment.SANDBOX)
    assert (made.name, made.tax_category, made.type) == (
        "AeroEdit Pro",
        TaxCategory.STANDARD,
        CatalogType.STANDARD,
    )
    assert (made.description, made.image_url, made.custom_data) == (None, None, None)
    assert made.status is CatalogStatus.ACTIVE
    assert made.created_at == made.updated_at == NOW


def test_a_product_keeps_every_optional_field_given() -> None:
    made = product(
        description="For professional pilots.",
        type="custom",
        tax_category="saas",
        image_url="https://example.com/pro.png",
        custom_data={"features": {"sso": True}, "addons": ["pro_1", 2, 3.5, None]},
    )
    assert made.type is CatalogType.CUSTOM
    assert made.tax_category is TaxCategory.SAAS
    assert made.image_url == "https://example.com/pro.png"
    assert made.custom_data == {"features": {"sso": True}, "addons": ["pro_1", 2, 3.5, None]}


def test_the_product_wire_shape_is_paddles_in_paddles_order() -> None:
    wire = product_to_wire(product(description="", image_url="", custom_data={"a": 1}))
    assert [f.name for f in dataclasses.fields(wire)] == [
        "id",
        "name",
        "tax_category",
        "type",
        "description",
        "image_url",
        "custom_data",
        "status",
        "import_meta",
        "created_at",
        "updated_at",
    ]
    body = as_json(wire)
    assert body["import_meta"] is None
    assert body["created_at"] == "2025-07-31T05:51:59.321000Z"
    validate_component("product", body)
    validate_component("product", as_json(product_to_wire(product())))


def test_every_tax_category_of_the_spec_is_accepted() -> None:
    assert [c.value for c in TaxCategory] == spec()["components"]["schemas"]["tax_category"]["enum"]
    for category in TaxCategory:
        assert product(tax_category=category.value).tax_category is category


def test_a_product_body_missing_its_required_fields_names_both() -> None:
    errors = refused(new_product, {}, account_id=ALICE, environment=Environment.SANDBOX, now=NOW)
    assert errors == {"name": REQUIRED, "tax_category": REQUIRED}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", 7, "must be a string"),
        ("name", None, "must be a string"),
        ("name", "", "length must be between 1 and 200, provided 0"),
        ("name", "x" * 201, "length must be between 1 and 200, provided 201"),
        ("name", "a\x00b", "must not contain NUL characters"),
        ("description", "x" * 2049, "length must be between 0 and 2048, provided 2049"),
        ("description", ["x"], "must be a string"),
        ("type", "premium", "must be one of: custom, standard"),
        ("tax_category", "food", "must be one of: digital-goods, ebooks"),
        ("tax_category", None, "must be one of"),
        ("image_url", 5, "must be a URL, an empty string or null"),
        ("image_url", "https://example.com/" + "x" * 2048, "length must be at most 2048"),
        ("image_url", "ftp://example.com/a.png", "must be an absolute http or https URL"),
        ("image_url", "/relative.png", "must be an absolute http or https URL"),
        ("image_url", "https://", "must be an absolute http or https URL"),
        ("image_url", "http://[::1/a.png", "must be an absolute http or https URL"),
        ("image_url", "https://example.com/a b.png", "must be an absolute http or https URL"),
        ("custom_data", [], "must be an object or null"),
        ("custom_data", "{}", "must be an object or null"),
        ("custom_data", {"k": "a\x00"}, "must not contain NUL characters"),
        ("custom_data", {"a\x00": 1}, "must not contain NUL characters"),
        ("custom_data", {"k": [{"deep": "\x00"}]}, "must not contain NUL characters"),
        ("custom_data", {1: "non-string key"}, "keys must be strings"),
        ("custom_data", {"k": {1, 2}}, "must hold JSON values only"),
        ("custom_data", {"k": float("nan")}, "must hold JSON values only"),
        ("unknown", 1, "unknown field"),
        ("status", "archived", "unknown field"),  # a new product is active; archiving is a PATCH
    ],
)
def test_a_bad_product_field_is_named(field: str, value: Any, message: str) -> None:
    errors = refused(product, **{field: value})
    assert list(errors) == [field]
    assert errors[field].startswith(message)


def test_custom_data_may_nest_to_the_limit_and_no_deeper() -> None:
    def nested(depth: int) -> dict[str, Any]:
        value: dict[str, Any] = {}
        for _ in range(depth - 1):
            value = {"k": value}
        return value

    assert product(custom_data=nested(CUSTOM_DATA_DEPTH_MAX)).custom_data == nested(CUSTOM_DATA_DEPTH_MAX)
    errors = refused(product, custom_data=nested(CUSTOM_DATA_DEPTH_MAX + 1))
    assert errors == {"custom_data": f"must be nested at most {CUSTOM_DATA_DEPTH_MAX} levels deep"}


def test_every_bad_product_field_is_reported_at_once() -> None:
    errors = refused(product, name="", type="x", image_url=1, custom_data=3, extra=True)
    assert set(errors) == {"name", "type", "image_url", "custom_data", "extra"}


def test_a_product_update_changes_the_given_fields_and_moves_updated_at() -> None:
    original = product(description="Old", image_url="https://example.com/a.png", custom_data={"a": 1})
    changed = update_product(
        original,
        {
            "name": "AeroEdit for learners",
            "description": None,
            "type": "custom",
            "tax_category": "ebooks",
            "image_url": None,
            "custom_data": None,
        },
        LATER,
    )
    assert (changed.id, changed.created_at, changed.updated_at) == (original.id, NOW, LATER)
    assert (changed.name, changed.description, changed.type) == (
        "AeroEdit for learners",
        None,
        CatalogType.CUSTOM,
    )
    assert (changed.tax_category, changed.image_url, changed.custom_data) == (TaxCategory.EBOOKS, None, None)
    assert changed.status is CatalogStatus.ACTIVE


def test_archiving_and_restoring_a_product_is_a_status_update() -> None:
    archived = update_product(product(), {"status": "archived"}, LATER)
    assert archived.status is CatalogStatus.ARCHIVED
    assert update_product(archived, {"status": "active"}, LATER).status is CatalogStatus.ACTIVE


def test_a_product_update_that_changes_nothing_returns_the_same_product() -> None:
    original = product(description="Same")
    assert update_product(original, {}, LATER) is original
    assert update_product(original, {"name": original.name, "description": "Same"}, LATER) is original


def test_a_bad_product_update_names_every_bad_field() -> None:
    errors = refused(update_product, product(), {"name": None, "status": "deleted", "id": "pro_x"}, LATER)
    assert errors == {
        "name": "must be a string",
        "status": "must be one of: active, archived",
        "id": "unknown field",
    }


# --- prices ---------------------------------------------------------------------------------------


def test_a_new_price_takes_paddles_defaults() -> None:
    made = price()
    assert is_id("pri", made.id)
    assert (made.product_id, made.account_id, made.environment) == (PRODUCT_ID, ALICE, Environment.LIVE)
    assert (made.description, made.name, made.type) == ("Monthly", None, CatalogType.STANDARD)
    assert (made.billing_cycle, made.trial_period) == (None, None)
    assert made.tax_mode is TaxMode.ACCOUNT_SETTING
    assert made.unit_price == Money(amount="1000", currency_code="USD")
    assert made.unit_price_overrides == ()
    assert made.quantity == Quantity(minimum=1, maximum=100)
    assert (made.status, made.custom_data) == (CatalogStatus.ACTIVE, None)
    assert made.created_at == made.updated_at == NOW


def full_price() -> Price:
    return price(
        name="Monthly (per seat)",
        type="custom",
        billing_cycle={"interval": "month", "frequency": 1},
        trial_period={"interval": "day", "frequency": 14},
        tax_mode="internal",
        unit_price={"amount": "500", "currency_code": "USD"},
        unit_price_overrides=[
            {"country_codes": ["IE", "FR", "DE"], "unit_price": {"amount": "700", "currency_code": "EUR"}},
            {"country_codes": ["GB"], "unit_price": {"amount": "600", "currency_code": "GBP"}},
        ],
        quantity={"minimum": 2, "maximum": 999},
        custom_data={"seats": True},
    )


def test_a_price_keeps_every_optional_field_given() -> None:
    made = full_price()
    assert made.name == "Monthly (per seat)"
    assert made.type is CatalogType.CUSTOM
    assert made.billing_cycle == Duration(interval="month", frequency=1)
    assert made.trial_period == Duration(interval="day", frequency=14)
    assert made.tax_mode is TaxMode.INTERNAL
    assert made.unit_price_overrides == (
        UnitPriceOverride(
            country_codes=("IE", "FR", "DE"), unit_price=Money(amount="700", currency_code="EUR")
        ),
        UnitPriceOverride(country_codes=("GB",), unit_price=Money(amount="600", currency_code="GBP")),
    )
    assert made.quantity == Quantity(minimum=2, maximum=999)
    assert made.custom_data == {"seats": True}


def test_the_price_wire_shape_is_paddles_in_paddles_order() -> None:
    wire = price_to_wire(full_price())
    assert [f.name for f in dataclasses.fields(wire)] == [
        "id",
        "product_id",
        "type",
        "description",
        "name",
        "billing_cycle",
        "trial_period",
        "tax_mode",
        "unit_price",
        "unit_price_overrides",
        "custom_data",
        "status",
        "quantity",
        "import_meta",
        "created_at",
        "updated_at",
    ]
    body = as_json(wire)
    assert body["unit_price_overrides"][1] == {
        "country_codes": ["GB"],
        "unit_price": {"amount": "600", "currency_code": "GBP"},
    }
    assert body["billing_cycle"] == {"interval": "month", "frequency": 1}
    assert body["quantity"] == {"minimum": 2, "maximum": 999}
    validate_component("price", body)
    validate_component("price", as_json(price_to_wire(price())))


def test_every_currency_of_the_spec_is_accepted_and_amounts_lose_leading_zeros() -> None:
    assert list(CURRENCY_CODES) == spec()["components"]["schemas"]["currency_code"]["enum"]
    for code in CURRENCY_CODES:
        assert price(unit_price={"amount": "0100", "currency_code": code}).unit_price == Money(
            amount="100", currency_code=code
        )
    assert price(unit_price={"amount": "0", "currency_code": "JPY"}).unit_price.amount == "0"
    big = "9" * AMOUNT_DIGITS_MAX
    assert price(unit_price={"amount": big, "currency_code": "VND"}).unit_price.amount == big


def test_a_price_body_missing_its_required_fields_names_all_three() -> None:
    errors = refused(new_price, {}, account_id=ALICE, environment=Environment.SANDBOX, now=NOW)
    assert errors == {"description": REQUIRED, "product_id": REQUIRED, "unit_price": REQUIRED}


@pytest.mark.parametrize(
    ("field", "value", "bad", "message"),
    [
        ("product_id", "pri_01gsz4t5hdjse780zja8vvr7jg", "product_id", "must be a product id"),
        ("product_id", 12, "product_id", "must be a product id"),
        ("description", "x", "description", "length must be between 2 and 500, provided 1"),
        ("description", "x" * 501, "description", "length must be between 2 and 500, provided 501"),
        ("description", None, "description", "must be a string"),
        ("name", "", "name", "length must be between 1 and 150, provided 0"),
        ("name", "x" * 151, "name", "length must be between 1 and 150"),
        ("type", "other", "type", "must be one of: custom, standard"),
        ("tax_mode", "exclusive", "tax_mode", "must be one of: account_setting, external, internal"),
        ("billing_cycle", "monthly", "billing_cycle", "must be an object"),
        ("billing_cycle", {"interval": "month"}, "billing_cycle.frequency", REQUIRED),
        ("billing_cycle", {"frequency": 1}, "billing_cycle.interval", REQUIRED),
        ("billing_cycle", {"interval": "hour", "frequency": 1}, "billing_cycle.interval", "must be one of"),
        (
            "billing_cycle",
            {"interval": "day", "frequency": 0},
            "billing_cycle.frequency",
            "must be between 1",
        ),
        (
            "billing_cycle",
            {"interval": "day", "frequency": 1000},
            "billing_cycle.frequency",
            "must be between",
        ),
        (
            "billing_cycle",
            {"interval": "day", "frequency": True},
            "billing_cycle.frequency",
            "must be an integer",
        ),
        (
            "billing_cycle",
            {"interval": "day", "frequency": 1.0},
            "billing_cycle.frequency",
            "must be an integer",
        ),
        ("billing_cycle", {"interval": "day", "frequency": 1, "x": 1}, "billing_cycle.x", "unknown field"),
        ("trial_period", {"interval": "day", "frequency": 7}, "trial_period", "requires billing_cycle"),
        ("unit_price", None, "unit_price", "must be an object"),
        ("unit_price", {"currency_code": "USD"}, "unit_price.amount", REQUIRED),
        ("unit_price", {"amount": "1"}, "unit_price.currency_code", REQUIRED),
        (
            "unit_price",
            {"amount": 1000, "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "-1", "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "10.5", "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "", "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": " 1", "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "١٢", "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "1" * (AMOUNT_DIGITS_MAX + 1), "currency_code": "USD"},
            "unit_price.amount",
            "must be a string holding",
        ),
        (
            "unit_price",
            {"amount": "1", "currency_code": "usd"},
            "unit_price.currency_code",
            "must be a supported",
        ),
        (
            "unit_price",
            {"amount": "1", "currency_code": "XBT"},
            "unit_price.currency_code",
            "must be a supported",
        ),
        (
            "unit_price",
            {"amount": "1", "currency_code": None},
            "unit_price.currency_code",
            "must be a supported",
        ),
        ("quantity", [1, 10], "quantity", "must be an object"),
        ("quantity", {"minimum": 1}, "quantity.maximum", REQUIRED),
        ("quantity", {"minimum": 0, "maximum": 1}, "quantity.minimum", "must be between 1 and 999999999"),
        ("quantity", {"minimum": 1, "maximum": 10**9}, "quantity.maximum", "must be between 1 and 999999999"),
        ("quantity", {"minimum": 5, "maximum": 4}, "quantity.maximum", "must be greater than or equal"),
        ("unit_price_overrides", {}, "unit_price_overrides", "must be an array"),
        ("unit_price_overrides", [None], "unit_price_overrides[0]", "must be an object"),
        (
            "unit_price_overrides",
            [{"unit_price": {"amount": "1", "currency_code": "EUR"}}],
            "unit_price_overrides[0].country_codes",
            REQUIRED,
        ),
        ("unit_price_overrides", [{"country_codes": ["DE"]}], "unit_price_overrides[0].unit_price", REQUIRED),
        (
            "unit_price_overrides",
            [{"country_codes": [], "unit_price": {"amount": "1", "currency_code": "EUR"}}],
            "unit_price_overrides[0].country_codes",
            "must be a non-empty array",
        ),
        (
            "unit_price_overrides",
            [{"country_codes": "DE", "unit_price": {"amount": "1", "currency_code": "EUR"}}],
            "unit_price_overrides[0].country_codes",
            "must be a non-empty array",
        ),
        (
            "unit_price_overrides",
            [{"country_codes": ["DE", "XX"], "unit_price": {"amount": "1", "currency_code": "EUR"}}],
            "unit_price_overrides[0].country_codes",
            "must hold supported",
        ),
        (
            "unit_price_overrides",
            [{"country_codes": ["DE", "DE"], "unit_price": {"amount": "1", "currency_code": "EUR"}}],
            "unit_price_overrides[0].country_codes",
            "must not repeat",
        ),
        (
            "unit_price_overrides",
            [{"country_codes": ["DE"], "unit_price": {"amount": "1", "currency_code": "EUR"}, "x": 1}],
            "unit_price_overrides[0].x",
            "unknown field",
        ),
        ("custom_data", [1], "custom_data", "must be an object or null"),
        ("status", "active", "status", "unknown field"),
    ],
)
def test_a_bad_price_field_is_named(field: str, value: Any, bad: str, message: str) -> None:
    errors = refused(price, **{field: value})
    assert list(errors) == [bad]
    assert errors[bad].startswith(message)


def test_too_many_overrides_are_refused() -> None:
    one = {"country_codes": ["DE"], "unit_price": {"amount": "1", "currency_code": "EUR"}}
    assert len(price(unit_price_overrides=[one] * OVERRIDES_MAX).unit_price_overrides) == OVERRIDES_MAX
    errors = refused(price, unit_price_overrides=[one] * (OVERRIDES_MAX + 1))
    assert errors == {
        "unit_price_overrides": f"must have at most {OVERRIDES_MAX} items, provided {OVERRIDES_MAX + 1}"
    }


def test_every_bad_nested_field_is_reported_at_once() -> None:
    errors = refused(
        price,
        description="x",
        unit_price={"amount": "x", "currency_code": "x"},
        unit_price_overrides=[
            {"country_codes": ["DE"], "unit_price": {"amount": "1", "currency_code": "EUR"}},
            {"country_codes": ["ZZ"], "unit_price": {"amount": "1", "currency_code": "EUR"}},
            {"country_codes": ["FR"], "unit_price": {"amount": "-1", "currency_code": "EUR"}},
        ],
        quantity={"minimum": "1", "maximum": "2"},
    )
    assert set(errors) == {
        "description",
        "unit_price.amount",
        "unit_price.currency_code",
        "unit_price_overrides[1].country_codes",
        "unit_price_overrides[2].unit_price.amount",
        "quantity.minimum",
        "quantity.maximum",
    }


def test_a_price_update_changes_the_given_fields_and_moves_updated_at() -> None:
    original = full_price()
    changed = update_price(
        original,
        {
            "description": "Monthly with 7 day trial",
            "name": None,
            "type": "standard",
            "billing_cycle": {"interval": "week", "frequency": 2},
            "trial_period": {"interval": "day", "frequency": 7},
            "tax_mode": "external",
            "unit_price": {"amount": "700", "currency_code": "EUR"},
            "unit_price_overrides": [],
            "quantity": {"minimum": 1, "maximum": 1},
            "custom_data": None,
        },
        LATER,
    )
    assert (changed.id, changed.product_id, changed.created_at, changed.updated_at) == (
        original.id,
        PRODUCT_ID,
        NOW,
        LATER,
    )
    assert (changed.description, changed.name, changed.type) == (
        "Monthly with 7 day trial",
        None,
        CatalogType.STANDARD,
    )
    assert changed.billing_cycle == Duration(interval="week", frequency=2)
    assert changed.trial_period == Duration(interval="day", frequency=7)
    assert changed.tax_mode is TaxMode.EXTERNAL
    assert changed.unit_price == Money(amount="700", currency_code="EUR")
    assert (changed.unit_price_overrides, changed.quantity, changed.custom_data) == (
        (),
        Quantity(minimum=1, maximum=1),
        None,
    )


def test_archiving_a_price_is_a_status_update_and_a_no_op_returns_the_same_price() -> None:
    original = price()
    assert update_price(original, {}, LATER) is original
    assert update_price(original, {"status": "active", "description": "Monthly"}, LATER) is original
    archived = update_price(original, {"status": "archived"}, LATER)
    assert (archived.status, archived.updated_at) == (CatalogStatus.ARCHIVED, LATER)


def test_an_update_may_drop_the_trial_but_not_the_cycle_under_it() -> None:
    original = full_price()
    assert update_price(original, {"trial_period": None}, LATER).trial_period is None
    one_time = update_price(original, {"trial_period": None, "billing_cycle": None}, LATER)
    assert one_time.billing_cycle is None
    errors = refused(update_price, original, {"billing_cycle": None}, LATER)
    assert errors == {"trial_period": "requires billing_cycle: a one-time price has no trial"}


def test_a_price_update_can_not_move_the_price_to_another_product() -> None:
    errors = refused(update_price, price(), {"product_id": PRODUCT_ID, "description": 5}, LATER)
    assert errors == {"product_id": "unknown field", "description": "must be a string"}
