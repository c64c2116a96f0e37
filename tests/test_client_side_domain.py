"""The client-side API's pure domain (issue 4): preview arithmetic, origins, exposures.

``domain/previews.py`` (rates, line totals, money formatting, the ``items`` parser),
``domain/exposures.py``, the origin functions of ``domain/client_tokens.py`` and
``keys.mark_exposed``. No store, no clock: time is the constant ``NOW``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from keyhouse.domain import keys, previews
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import (
    ORIGINS_MAX,
    ClientToken,
    Creator,
    CreatorKind,
    TokenStatus,
    change_origins,
    issue_token,
    normalize_origin,
    origin_allowed,
    revoke,
    to_wire,
    validate_origins,
)
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.exposures import (
    ActionTaken,
    Exposure,
    ExposureSource,
    ExposureWire,
    RiskLevel,
    browser_exposure,
)
from keyhouse.domain.ids import is_id
from keyhouse.domain.permissions import Permission
from keyhouse.domain.previews import (
    Item,
    Totals,
    format_money,
    line_totals,
    parse_items,
    parse_rate,
    rate_text,
)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
PRICE = "pri_01gsz8x8sawmvhz1pv30nge1ke"
OTHER_PRICE = "pri_01gsz8z1q1n00f12qt82y31smh"
SHOP = "https://shop.example.com"


def errors_of(raised: pytest.ExceptionInfo[InvalidField]) -> dict[str, str]:
    return {e.field: e.message for e in raised.value.errors or ()}


# --- tax rates -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "rate"),
    [
        ("0.2", "0.2"),
        ("0.20", "0.2"),
        (" 0.075 ", "0.075"),
        ("1", "1"),
        ("1.000", "1"),
        ("1E0", "1"),
        ("2E-1", "0.2"),
        ("0", "0"),
        ("0.000", "0"),
        ("-0", "0"),  # never "-0" on the wire
    ],
)
def test_a_tax_rate_is_a_decimal_from_0_to_1_normalized(given: str, rate: str) -> None:
    parsed = parse_rate(given)
    assert isinstance(parsed, Decimal)
    assert str(parsed) == rate


@pytest.mark.parametrize(
    "given", ["", "abc", "0,2", "20%", "NaN", "sNaN", "Infinity", "-Infinity", "-0.1", "1.0001", "2", "1E+1"]
)
def test_anything_else_is_invalid_field_on_tax_rate(given: str) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_rate(given)
    assert errors_of(raised) == {"tax_rate": "must be a decimal between 0 and 1, such as 0.2"}


def test_a_tiny_tax_rate_stays_a_plain_decimal_string() -> None:
    assert rate_text(parse_rate("0.0000001")) == "0.0000001"


# --- totals --------------------------------------------------------------------------------------


def test_totals_go_on_the_wire_as_strings_of_minor_units() -> None:
    assert Totals(4500, 0, 900, 5400).wire() == {
        "subtotal": "4500",
        "discount": "0",
        "tax": "900",
        "total": "5400",
    }


def test_totals_are_formatted_in_their_currency() -> None:
    assert Totals(4500, 0, 900, 5400).formatted("USD") == {
        "subtotal": "$45.00",
        "discount": "$0.00",
        "tax": "$9.00",
        "total": "$54.00",
    }


def test_totals_add_field_by_field_starting_from_zero() -> None:
    one, two = Totals(100, 1, 20, 119), Totals(50, 0, 10, 60)
    assert one + two == Totals(150, 1, 30, 179)
    assert sum((one, two), previews.ZERO) == Totals(150, 1, 30, 179)
    assert Totals(0, 0, 0, 0) == previews.ZERO


@pytest.mark.parametrize("tax_mode", ["account_setting", "external"])
@pytest.mark.parametrize(
    ("unit", "quantity", "rate", "expected"),
    [
        (1500, 3, "0.2", Totals(4500, 0, 900, 5400)),
        (1500, 1, "0", Totals(1500, 0, 0, 1500)),
        (5, 1, "0.1", Totals(5, 0, 1, 6)),  # 0.5 rounds half up
        (4, 1, "0.1", Totals(4, 0, 0, 4)),  # 0.4 rounds down
        (0, 7, "0.2", Totals(0, 0, 0, 0)),
        (999, 1, "1", Totals(999, 0, 999, 1998)),
    ],
)
def test_tax_is_added_on_top_unless_the_price_includes_it(
    tax_mode: str, unit: int, quantity: int, rate: str, expected: Totals
) -> None:
    assert line_totals(unit, quantity, Decimal(rate), tax_mode) == expected


@pytest.mark.parametrize(
    ("unit", "quantity", "rate", "expected"),
    [
        (1200, 2, "0.2", Totals(2000, 0, 400, 2400)),
        (250, 2, "0.2", Totals(417, 0, 83, 500)),  # 500 / 1.2 = 416.67 → 417
        (1000, 1, "0", Totals(1000, 0, 0, 1000)),
        (1000, 1, "1", Totals(500, 0, 500, 1000)),
    ],
)
def test_an_internal_price_already_includes_the_tax(
    unit: int, quantity: int, rate: str, expected: Totals
) -> None:
    totals = line_totals(unit, quantity, Decimal(rate), "internal")
    assert totals == expected
    assert totals.subtotal + totals.tax == totals.total == unit * quantity


@pytest.mark.parametrize(
    ("amount", "currency", "text"),
    [
        (150000, "USD", "$1,500.00"),
        (5, "USD", "$0.05"),
        (0, "EUR", "€0.00"),
        (-150, "GBP", "-£1.50"),
        (123456789, "BRL", "R$1,234,567.89"),
        (1500, "JPY", "¥1,500"),
        (-1500, "KRW", "-KRW 1,500"),
        (1000, "VND", "VND 1,000"),
        (1000, "CHF", "CHF 10.00"),
        (100, "AUD", "A$1.00"),
    ],
)
def test_money_is_formatted_in_english_with_the_currencys_minor_units(
    amount: int, currency: str, text: str
) -> None:
    assert format_money(amount, currency) == text


# --- items ---------------------------------------------------------------------------------------


def test_items_parse_to_price_ids_and_quantities_defaulting_to_one() -> None:
    items = parse_items(
        [
            {"price_id": PRICE, "quantity": 3},
            {"price_id": OTHER_PRICE},
            {"price_id": PRICE, "quantity": 1, "include_in_totals": False},
        ]
    )
    assert items == [Item(PRICE, 3), Item(OTHER_PRICE, 1), Item(PRICE, 1)]


def test_a_hundred_items_are_allowed() -> None:
    assert len(parse_items([{"price_id": PRICE}] * previews.MAX_ITEMS)) == 100


@pytest.mark.parametrize(
    "value", [None, "items", {"price_id": PRICE}, [], [{"price_id": PRICE}] * 101, 3], ids=repr
)
def test_items_must_be_a_list_of_1_to_100(value: object) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_items(value)
    assert errors_of(raised) == {"items": "must be a list of 1 to 100 items"}


@pytest.mark.parametrize(
    ("item", "fields"),
    [
        ("pri_01gsz8x8sawmvhz1pv30nge1ke", ["items[1]"]),
        (None, ["items[1]"]),
        ([PRICE, 1], ["items[1]"]),
        ({"price_id": "pri_123"}, ["items[1].price_id"]),
        ({"price_id": "pro_01gsz4t5hdjse780zja8vvr7jg"}, ["items[1].price_id"]),
        ({"price_id": PRICE.upper()}, ["items[1].price_id"]),
        ({"price_id": 42}, ["items[1].price_id"]),
        ({"quantity": 1}, ["items[1].price_id"]),
        ({"price_id": PRICE, "quantity": 0}, ["items[1].quantity"]),
        ({"price_id": PRICE, "quantity": -5}, ["items[1].quantity"]),
        ({"price_id": PRICE, "quantity": 1.0}, ["items[1].quantity"]),
        ({"price_id": PRICE, "quantity": "2"}, ["items[1].quantity"]),
        ({"price_id": PRICE, "quantity": True}, ["items[1].quantity"]),
        ({"price_id": PRICE, "quantity": None}, ["items[1].quantity"]),
        ({"price_id": None, "quantity": 0}, ["items[1].price_id", "items[1].quantity"]),
        ({"price_id": PRICE, "price": {"unit_price": {}}}, ["items[1].price"]),
        ({"price_id": PRICE, "b": 1, "a": 2}, ["items[1].a", "items[1].b"]),
    ],
    ids=repr,
)
def test_every_bad_item_is_named_by_index_and_field(item: object, fields: list[str]) -> None:
    with pytest.raises(InvalidField) as raised:
        parse_items([{"price_id": PRICE}, item])
    assert list(errors_of(raised)) == fields


def test_problems_of_several_items_come_in_one_error() -> None:
    with pytest.raises(InvalidField) as raised:
        parse_items([{"price_id": "x"}, {"price_id": PRICE}, {"price_id": PRICE, "quantity": 0}, 7])
    assert list(errors_of(raised)) == ["items[0].price_id", "items[2].quantity", "items[3]"]


def test_a_huge_quantity_parses_the_price_decides_its_maximum() -> None:
    assert parse_items([{"price_id": PRICE, "quantity": 10**30}]) == [Item(PRICE, 10**30)]


# --- origins: normalize ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "origin"),
    [
        ("https://shop.example.com", "https://shop.example.com"),
        ("HTTPS://Shop.Example.COM", "https://shop.example.com"),
        ("  https://shop.example.com  ", "https://shop.example.com"),
        ("https://shop.example.com:443", "https://shop.example.com"),
        ("http://shop.example.com:80", "http://shop.example.com"),
        ("https://shop.example.com:80", "https://shop.example.com:80"),
        ("http://shop.example.com:443", "http://shop.example.com:443"),
        ("https://shop.example.com:8443", "https://shop.example.com:8443"),
        ("http://localhost:1", "http://localhost:1"),
        ("http://localhost:65535", "http://localhost:65535"),
        ("http://localhost:*", "http://localhost:*"),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("http://[::1]", "http://[::1]"),
        ("http://[::1]:80", "http://[::1]"),
        ("http://[::1]:3000", "http://[::1]:3000"),
        ("https://[2001:DB8::1]:*", "https://[2001:db8::1]:*"),
        ("http://[::ffff:127.0.0.1]", "http://[::ffff:127.0.0.1]"),
        ("https://xn--bcher-kva.example", "https://xn--bcher-kva.example"),
        ("http://my-shop", "http://my-shop"),
    ],
)
def test_an_origin_is_normalized_to_lower_case_without_its_default_port(given: str, origin: str) -> None:
    assert normalize_origin(given) == origin


@pytest.mark.parametrize(
    "given",
    [
        "",
        "null",
        "*",
        "shop.example.com",
        "//shop.example.com",
        "https://",
        "ftp://shop.example.com",
        "ws://shop.example.com",
        "file:///etc/passwd",
        "https://shop.example.com/",
        "https://shop.example.com/checkout",
        "https://shop.example.com?x=1",
        "https://shop.example.com#top",
        "https://user@shop.example.com",
        "https://user:pw@shop.example.com",
        "https://shop.example.com:",
        "https://shop.example.com:0",
        "https://shop.example.com:00000",
        "https://shop.example.com:65536",
        "https://shop.example.com:99999",
        "https://shop.example.com:123456",
        "https://shop.example.com:-1",
        "https://shop.example.com:8*",
        "https://*.example.com",
        "https://shop example.com",
        "https://shop_example.com",
        "https://bücher.example",
        "http://::1",
        "http://[::1",
        "http://[g::1]",
        "http://[::1]]",
        "https://shop.example.com\n.evil.net",
    ],
)
def test_anything_but_scheme_host_and_port_is_not_an_origin(given: str) -> None:
    assert normalize_origin(given) is None


def test_a_port_with_leading_zeros_is_the_same_port() -> None:
    assert normalize_origin("https://x.example:0443") == "https://x.example"
    assert normalize_origin("http://x.example:08080") == "http://x.example:8080"


# --- origins: validate ---------------------------------------------------------------------------


def test_no_allowed_origins_means_any_origin() -> None:
    assert validate_origins(None) is None


def test_allowed_origins_are_normalized_and_deduplicated_in_order() -> None:
    given = ["https://Shop.Example.com:443", "http://localhost:*", SHOP, "http://localhost:*"]
    assert validate_origins(given) == (SHOP, "http://localhost:*")


def test_twenty_origins_are_allowed() -> None:
    origins = [f"https://s{i}.example.com" for i in range(ORIGINS_MAX)]
    assert validate_origins(origins) == tuple(origins)


@pytest.mark.parametrize(
    "value",
    [[], [f"https://s{i}.example.com" for i in range(21)], SHOP, {"origin": SHOP}, 1, True],
    ids=["empty", "21", "a string", "an object", "a number", "a bool"],
)
def test_allowed_origins_must_be_null_or_a_list_of_1_to_20(value: object) -> None:
    with pytest.raises(InvalidField) as raised:
        validate_origins(value)
    assert errors_of(raised) == {"allowed_origins": "must be null or a list of 1 to 20 origins"}


def test_every_bad_origin_is_named_by_index() -> None:
    with pytest.raises(InvalidField) as raised:
        validate_origins([SHOP, "https://shop.example.com/path", "ftp://x.example", 7, None, SHOP])
    assert list(errors_of(raised)) == [
        "allowed_origins[1]",
        "allowed_origins[2]",
        "allowed_origins[3]",
        "allowed_origins[4]",
    ]
    assert raised.value.errors is not None
    assert raised.value.errors[0] == FieldError(
        "allowed_origins[1]", "must be an origin: scheme://host[:port], port may be *"
    )


# --- origins: allowed ---------------------------------------------------------------------------

LISTED = (SHOP, "http://localhost:*", "http://[::1]:*", "https://app.example.com:8443")


@pytest.mark.parametrize(
    ("allowed", "origin", "verdict"),
    [
        # no list: everyone, even without an Origin
        (None, None, True),
        (None, "https://evil.example.net", True),
        (None, "null", True),
        # a list: only its origins, and never without an Origin
        (LISTED, None, False),
        (LISTED, SHOP, True),
        (LISTED, "HTTPS://SHOP.EXAMPLE.COM", True),
        (LISTED, "https://shop.example.com:443", True),
        (LISTED, "http://shop.example.com", False),  # scheme matters
        (LISTED, "https://shop.example.com:444", False),  # port matters
        (LISTED, "https://www.shop.example.com", False),  # no subdomains
        (LISTED, "https://shop.example.com.evil.net", False),
        (LISTED, "https://evil.example.net", False),
        (LISTED, "https://app.example.com", False),
        (LISTED, "https://app.example.com:8443", True),
        # a port wildcard: any port of that scheme and host, the default one included
        (LISTED, "http://localhost", True),
        (LISTED, "http://localhost:3000", True),
        (LISTED, "http://localhost:65535", True),
        (LISTED, "https://localhost:3000", False),
        (LISTED, "http://127.0.0.1:3000", False),
        (LISTED, "http://[::1]:5173", True),
        (LISTED, "http://[::2]:5173", False),
        # an Origin that is not an origin, or is itself a pattern, never matches
        (LISTED, "null", False),
        (LISTED, "", False),
        (LISTED, "http://localhost:*", False),
        (LISTED, "https://shop.example.com/", False),
        ((), SHOP, False),
    ],
)
def test_an_origin_is_allowed_by_the_tokens_list(
    allowed: tuple[str, ...] | None, origin: str | None, verdict: bool
) -> None:
    assert origin_allowed(allowed, origin) is verdict


# --- origins: change ----------------------------------------------------------------------------


def issue(**overrides: Any) -> ClientToken:
    arguments: dict[str, Any] = {
        "account_id": ALICE,
        "environment": Environment.SANDBOX,
        "name": "Pricing page",
        "description": None,
        "created_by": Creator(CreatorKind.CLI, "alice"),
        "now": NOW,
    }
    return issue_token(**(arguments | overrides))


def test_a_token_is_issued_with_its_origins_normalized() -> None:
    token = issue(allowed_origins=["HTTPS://SHOP.EXAMPLE.COM:443"])
    assert token.allowed_origins == (SHOP,)
    assert to_wire(token).allowed_origins == [SHOP]
    assert issue().allowed_origins is None
    assert to_wire(issue()).allowed_origins is None


def test_an_issued_token_refuses_bad_origins() -> None:
    with pytest.raises(InvalidField) as raised:
        issue(allowed_origins=["nope"])
    assert list(errors_of(raised)) == ["allowed_origins[0]"]


def test_changing_origins_replaces_the_list_and_updated_at() -> None:
    token = issue()
    changed = change_origins(token, [SHOP, "http://localhost:*"], LATER)
    assert changed.allowed_origins == (SHOP, "http://localhost:*")
    assert (changed.updated_at, changed.created_at) == (LATER, NOW)
    assert changed.status is TokenStatus.ACTIVE
    assert token.allowed_origins is None  # untouched

    lifted = change_origins(changed, None, LATER + timedelta(minutes=1))
    assert lifted.allowed_origins is None
    assert lifted.updated_at == LATER + timedelta(minutes=1)


def test_the_same_origins_again_change_nothing() -> None:
    token = issue(allowed_origins=[SHOP])
    assert change_origins(token, ["https://shop.example.com:443"], LATER) is token
    assert change_origins(issue(), None, LATER).updated_at == NOW


def test_a_revoked_tokens_origins_cannot_change_but_the_same_list_is_a_no_op() -> None:
    token = revoke(issue(allowed_origins=[SHOP]), LATER)
    with pytest.raises(InvalidField) as raised:
        change_origins(token, ["http://localhost:*"], LATER)
    assert errors_of(raised) == {"allowed_origins": "a revoked client-side token can't be changed"}
    assert change_origins(token, [SHOP], LATER) is token


def test_bad_origins_are_refused_before_anything_else() -> None:
    token = revoke(issue(), LATER)
    with pytest.raises(InvalidField) as raised:
        change_origins(token, "https://shop.example.com", LATER)
    assert list(errors_of(raised)) == ["allowed_origins"]
    with pytest.raises(InvalidField) as raised:
        change_origins(token, ["ftp://x.example"], LATER)
    assert list(errors_of(raised)) == ["allowed_origins[0]"]


# --- exposures and keys.mark_exposed -----------------------------------------------------------


def issue_key(**overrides: Any) -> keys.ApiKey:
    key, _, _ = keys.issue_key(
        **{
            "account_id": ALICE,
            "environment": Environment.SANDBOX,
            "name": "Storefront",
            "description": None,
            "permissions": frozenset({Permission.TRANSACTION_READ}),
            "expires_at": None,
            "rotatable": False,
            "now": NOW,
            "pepper": Pepper(b"p" * 40),
            **overrides,
        }
    )
    return key


def test_marking_a_key_exposed_records_the_first_time_only() -> None:
    key = issue_key()
    assert key.exposed_at is None
    exposed = keys.mark_exposed(key, LATER)
    assert (exposed.exposed_at, exposed.updated_at) == (LATER, LATER)
    assert exposed.status is key.status
    assert exposed.revoked_at is None
    assert replace(exposed, exposed_at=None, updated_at=NOW) == key
    assert keys.mark_exposed(exposed, LATER + timedelta(days=1)) is exposed
    assert key.exposed_at is None  # untouched


def test_a_browser_exposure_is_low_risk_and_revokes_nothing() -> None:
    key = issue_key()
    exposure = browser_exposure(key, SHOP, LATER)
    assert isinstance(exposure, Exposure)
    assert is_id("apkexp", exposure.id)
    assert (exposure.api_key_id, exposure.account_id) == (key.id, ALICE)
    assert (exposure.risk_level, exposure.action_taken, exposure.source) == (
        RiskLevel.LOW,
        ActionTaken.NONE,
        ExposureSource.BROWSER,
    )
    assert (exposure.reference, exposure.created_at) == (SHOP, LATER)
    assert exposure.description is not None
    assert "client-side token" in exposure.description


def test_a_browser_exposures_reference_is_cut_at_250_characters() -> None:
    origin = "https://" + "a" * 300 + ".example"
    assert browser_exposure(issue_key(), origin, NOW).reference == origin[:250]


def test_an_exposure_on_the_wire_is_paddles_api_key_exposure() -> None:
    key = issue_key()
    exposure = browser_exposure(key, SHOP, datetime(2026, 6, 1, 14, 0, 0, 1, tzinfo=UTC))
    assert dataclasses.asdict(exposure.wire()) == {
        "id": exposure.id,
        "api_key_id": key.id,
        "risk_level": "low",
        "action_taken": "none",
        "source": "browser",
        "reference": SHOP,
        "description": exposure.description,
        "created_at": "2026-06-01T14:00:00.000001Z",
    }
    assert [f.name for f in dataclasses.fields(ExposureWire)] == [
        "id",
        "api_key_id",
        "risk_level",
        "action_taken",
        "source",
        "reference",
        "description",
        "created_at",
    ]


def test_the_exposure_vocabularies_are_paddles_plus_browser() -> None:
    assert [s.value for s in ExposureSource] == ["github", "browser"]
    assert [r.value for r in RiskLevel] == ["high", "low"]
    assert [a.value for a in ActionTaken] == ["revoked", "none"]
