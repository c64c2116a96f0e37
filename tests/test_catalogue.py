"""The catalogue over HTTP (issue 4 item 1): ``/products`` and ``/prices``, through the real ASGI app, on both stores.

The cast: **alice** owns account A and **charlie** account B, each with sandbox and live keys holding
every permission; scoped keys in alice's sandbox are made per test. Every response body is checked
against Paddle's spec subset (``tests/spec.py``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.catalogue import CatalogStatus
from keyhouse.domain.permissions import Permission
from keyhouse.services import catalogue as catalogue_services
from tests import spec
from tests.conftest import FakeClock, Member

SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
PRODUCTS, PRODUCT = "/products", "/products/{product_id}"
PRICES, PRICE = "/prices", "/prices/{price_id}"
MISSING_PRODUCT = "pro_01gsz4t5hdjse780zja8vvr7jg"
MISSING_PRICE = "pri_01gsz8x8sawmvhz1pv30nge1ke"
REQUIRED = "must be provided as part of the request"


# --- helpers --------------------------------------------------------------------------------------


def checked(response: httpx.Response, path: str) -> dict[str, Any]:
    """The body, after the spec, the envelope and the Request-Id header are checked."""
    body: dict[str, Any] = spec.check(response, path)
    assert response.headers["request-id"] == body["meta"]["request_id"]
    return body


def ok(response: httpx.Response, path: str, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return checked(response, path)


def error(response: httpx.Response, status: int, code: str, path: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    err: dict[str, Any] = checked(response, path)["error"]
    assert (err["type"], err["code"]) == ("request_error", code)
    assert err["documentation_url"] == f"https://developer.paddle.com/v1/errors/shared/{code}"
    return err


def field_errors(err: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in err["errors"]}


async def create_product(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    response = await client.post(
        PRODUCTS, json={"name": "AeroEdit Pro", "tax_category": "standard", **body}, headers=auth
    )
    data: dict[str, Any] = ok(response, PRODUCTS, 201)["data"]
    return data


async def create_price(
    client: httpx.AsyncClient, auth: dict[str, str], product_id: str, **body: Any
) -> dict[str, Any]:
    fields = {
        "description": "Monthly",
        "product_id": product_id,
        "unit_price": {"amount": "1000", "currency_code": "USD"},
        **body,
    }
    data: dict[str, Any] = ok(await client.post(PRICES, json=fields, headers=auth), PRICES, 201)["data"]
    return data


async def listed(client: httpx.AsyncClient, path: str, auth: dict[str, str], **params: str) -> list[str]:
    response = await client.get(path, params={"per_page": "200", **params}, headers=auth)
    return [e["id"] for e in ok(response, path)["data"]]


async def scoped_key(deps: services.Deps, member: Member, *permissions: Permission) -> dict[str, str]:
    _, plaintext = await services.create_key(
        deps,
        account_id=member.account_id,
        environment=SANDBOX,
        name="Scoped",
        permissions=frozenset(permissions),
    )
    return {"Authorization": f"Bearer {plaintext}"}


# --- products -------------------------------------------------------------------------------------


async def test_a_product_is_created_201_in_paddles_shape_and_read_back(
    client: httpx.AsyncClient, alice: Member
) -> None:
    body = {
        "name": "AeroEdit Pro",
        "tax_category": "saas",
        "description": "Designed for professional pilots.",
        "image_url": "https://paddle.s3.amazonaws.com/user/165798/bT1XUOJAQhOUxGs83cbk_pro.png",
        "custom_data": {"features": {"sso": False}, "suggested_addons": []},
    }
    response = await client.post(PRODUCTS, json=body, headers=alice.auth())
    created = ok(response, PRODUCTS, 201)["data"]
    assert created["id"].startswith("pro_")
    assert list(created) == [
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
    assert {k: created[k] for k in body} == body
    assert (created["type"], created["status"], created["import_meta"]) == ("standard", "active", None)
    assert created["created_at"] == created["updated_at"] == "2026-06-01T12:00:00.000000Z"
    fetched = ok(await client.get(f"/products/{created['id']}", headers=alice.auth()), PRODUCT)
    assert fetched["data"] == created
    assert await listed(client, PRODUCTS, alice.auth()) == [created["id"]]


async def test_a_product_update_changes_only_the_given_fields(
    client: httpx.AsyncClient, alice: Member, clock: FakeClock
) -> None:
    created = await create_product(client, alice.auth(), description="Old", custom_data={"a": 1})
    clock.advance(minutes=5)
    response = await client.patch(
        f"/products/{created['id']}",
        json={"name": "AeroEdit for learners", "description": None, "image_url": ""},
        headers=alice.auth(),
    )
    updated = ok(response, PRODUCT)["data"]
    assert (updated["name"], updated["description"], updated["image_url"]) == (
        "AeroEdit for learners",
        None,
        "",
    )
    assert updated["custom_data"] == {"a": 1}
    assert updated["created_at"] == created["created_at"]
    assert updated["updated_at"] == "2026-06-01T12:05:00.000000Z"
    again = ok(await client.get(f"/products/{created['id']}", headers=alice.auth()), PRODUCT)["data"]
    assert again == updated
    unchanged = ok(await client.patch(f"/products/{created['id']}", json={}, headers=alice.auth()), PRODUCT)
    assert unchanged["data"] == updated


async def test_an_archived_product_leaves_the_default_list_and_can_be_restored(
    client: httpx.AsyncClient, alice: Member
) -> None:
    kept = await create_product(client, alice.auth(), name="Kept")
    gone = await create_product(client, alice.auth(), name="Gone")
    archive = await client.patch(f"/products/{gone['id']}", json={"status": "archived"}, headers=alice.auth())
    assert ok(archive, PRODUCT)["data"]["status"] == "archived"
    assert await listed(client, PRODUCTS, alice.auth()) == [kept["id"]]
    assert await listed(client, PRODUCTS, alice.auth(), status="archived") == [gone["id"]]
    both = await listed(client, PRODUCTS, alice.auth(), status="active,archived")
    assert both == [gone["id"], kept["id"]]  # newest first
    fetched = ok(await client.get(f"/products/{gone['id']}", headers=alice.auth()), PRODUCT)["data"]
    assert fetched["status"] == "archived"
    restore = await client.patch(f"/products/{gone['id']}", json={"status": "active"}, headers=alice.auth())
    assert ok(restore, PRODUCT)["data"]["status"] == "active"
    assert set(await listed(client, PRODUCTS, alice.auth())) == {kept["id"], gone["id"]}


@pytest.mark.parametrize("path", [PRODUCTS, PRICES])
@pytest.mark.parametrize("status", ["deleted", "", "active,", "ACTIVE"])
async def test_an_unknown_status_filter_is_invalid_field(
    client: httpx.AsyncClient, alice: Member, path: str, status: str
) -> None:
    response = await client.get(path, params={"status": status}, headers=alice.auth())
    if status == "active,":  # a trailing comma is forgiven
        ok(response, path)
        return
    err = error(response, 400, "invalid_field", path)
    assert field_errors(err) == {"status": "must be a comma-separated list of: active, archived"}


# --- prices ---------------------------------------------------------------------------------------


async def test_a_price_is_created_201_in_paddles_shape_and_read_back(
    client: httpx.AsyncClient, alice: Member
) -> None:
    product = await create_product(client, alice.auth())
    body = {
        "description": "Monthly (per seat) with 14 day trial",
        "name": "Monthly (per seat)",
        "product_id": product["id"],
        "billing_cycle": {"interval": "month", "frequency": 1},
        "trial_period": {"interval": "day", "frequency": 14},
        "tax_mode": "account_setting",
        "unit_price": {"amount": "500", "currency_code": "USD"},
        "unit_price_overrides": [
            {"country_codes": ["IE", "FR", "DE"], "unit_price": {"amount": "700", "currency_code": "EUR"}},
            {"country_codes": ["GB"], "unit_price": {"amount": "600", "currency_code": "GBP"}},
        ],
        "quantity": {"minimum": 1, "maximum": 100},
        "custom_data": {"seat": True},
    }
    created = ok(await client.post(PRICES, json=body, headers=alice.auth()), PRICES, 201)["data"]
    assert created["id"].startswith("pri_")
    assert list(created) == [
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
    assert {k: created[k] for k in body} == body
    assert (created["type"], created["status"], created["import_meta"]) == ("standard", "active", None)
    fetched = ok(await client.get(f"/prices/{created['id']}", headers=alice.auth()), PRICE)["data"]
    assert fetched == created
    assert await listed(client, PRICES, alice.auth()) == [created["id"]]


async def test_a_minimal_price_takes_paddles_defaults(client: httpx.AsyncClient, alice: Member) -> None:
    product = await create_product(client, alice.auth())
    created = await create_price(
        client, alice.auth(), product["id"], unit_price={"amount": "0042", "currency_code": "JPY"}
    )
    assert created["unit_price"] == {"amount": "42", "currency_code": "JPY"}
    assert (created["billing_cycle"], created["trial_period"], created["name"]) == (None, None, None)
    assert created["tax_mode"] == "account_setting"
    assert created["quantity"] == {"minimum": 1, "maximum": 100}
    assert (created["unit_price_overrides"], created["custom_data"]) == ([], None)


async def test_a_price_update_changes_fields_and_archives(
    client: httpx.AsyncClient, alice: Member, clock: FakeClock
) -> None:
    product = await create_product(client, alice.auth())
    created = await create_price(client, alice.auth(), product["id"])
    clock.advance(hours=1)
    response = await client.patch(
        f"/prices/{created['id']}",
        json={
            "description": "Yearly",
            "billing_cycle": {"interval": "year", "frequency": 1},
            "unit_price": {"amount": "10000", "currency_code": "EUR"},
            "quantity": {"minimum": 1, "maximum": 1},
        },
        headers=alice.auth(),
    )
    updated = ok(response, PRICE)["data"]
    assert updated["description"] == "Yearly"
    assert updated["billing_cycle"] == {"interval": "year", "frequency": 1}
    assert updated["unit_price"] == {"amount": "10000", "currency_code": "EUR"}
    assert updated["quantity"] == {"minimum": 1, "maximum": 1}
    assert updated["updated_at"] == "2026-06-01T13:00:00.000000Z"
    archived = await client.patch(
        f"/prices/{created['id']}", json={"status": "archived"}, headers=alice.auth()
    )
    assert ok(archived, PRICE)["data"]["status"] == "archived"
    assert await listed(client, PRICES, alice.auth()) == []
    assert await listed(client, PRICES, alice.auth(), status="archived") == [created["id"]]


async def test_prices_are_listed_per_product(client: httpx.AsyncClient, alice: Member) -> None:
    first = await create_product(client, alice.auth(), name="First")
    second = await create_product(client, alice.auth(), name="Second")
    a = await create_price(client, alice.auth(), first["id"])
    b = await create_price(client, alice.auth(), second["id"])
    c = await create_price(client, alice.auth(), first["id"])
    assert await listed(client, PRICES, alice.auth(), product_id=first["id"]) == [c["id"], a["id"]]
    assert await listed(client, PRICES, alice.auth(), product_id=second["id"]) == [b["id"]]
    both = await listed(client, PRICES, alice.auth(), product_id=f"{first['id']},{second['id']}")
    assert both == [c["id"], b["id"], a["id"]]
    assert await listed(client, PRICES, alice.auth(), product_id=MISSING_PRODUCT) == []


@pytest.mark.parametrize("product_id", ["pro_short", "", "pri_01gsz8x8sawmvhz1pv30nge1ke", ","])
async def test_a_malformed_product_id_filter_is_invalid_field(
    client: httpx.AsyncClient, alice: Member, product_id: str
) -> None:
    response = await client.get(PRICES, params={"product_id": product_id}, headers=alice.auth())
    err = error(response, 400, "invalid_field", PRICES)
    assert list(field_errors(err)) == ["product_id"]


async def test_a_price_for_an_unknown_product_is_invalid_field_on_product_id(
    client: httpx.AsyncClient, alice: Member
) -> None:
    response = await client.post(
        PRICES,
        json={
            "description": "Monthly",
            "product_id": MISSING_PRODUCT,
            "unit_price": {"amount": "1", "currency_code": "USD"},
        },
        headers=alice.auth(),
    )
    err = error(response, 400, "invalid_field", PRICES)
    assert field_errors(err) == {"product_id": f"product {MISSING_PRODUCT} not found"}


async def test_a_price_can_not_move_to_another_product(client: httpx.AsyncClient, alice: Member) -> None:
    product = await create_product(client, alice.auth())
    created = await create_price(client, alice.auth(), product["id"])
    response = await client.patch(
        f"/prices/{created['id']}", json={"product_id": MISSING_PRODUCT}, headers=alice.auth()
    )
    assert field_errors(error(response, 400, "invalid_field", PRICE)) == {"product_id": "unknown field"}


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"tax_category": "standard"}, "name"),
        ({"name": "P"}, "tax_category"),
        ({"name": "", "tax_category": "standard"}, "name"),
        ({"name": "x" * 201, "tax_category": "standard"}, "name"),
        ({"name": "a\x00b", "tax_category": "standard"}, "name"),
        ({"name": 1, "tax_category": "standard"}, "name"),
        ({"name": "P", "tax_category": "food"}, "tax_category"),
        ({"name": "P", "tax_category": "standard", "type": "premium"}, "type"),
        ({"name": "P", "tax_category": "standard", "description": 5}, "description"),
        ({"name": "P", "tax_category": "standard", "image_url": "javascript:alert(1)"}, "image_url"),
        ({"name": "P", "tax_category": "standard", "custom_data": [1]}, "custom_data"),
        ({"name": "P", "tax_category": "standard", "custom_data": {"k": "\x00"}}, "custom_data"),
        ({"name": "P", "tax_category": "standard", "status": "archived"}, "status"),
        ({"name": "P", "tax_category": "standard", "id": MISSING_PRODUCT}, "id"),
    ],
)
async def test_every_bad_product_field_is_invalid_field_naming_it(
    client: httpx.AsyncClient, alice: Member, body: dict[str, Any], field: str
) -> None:
    err = error(await client.post(PRODUCTS, json=body, headers=alice.auth()), 400, "invalid_field", PRODUCTS)
    assert list(field_errors(err)) == [field]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"description": "x"}, "description"),
        ({"description": None}, "description"),
        ({"product_id": "pro_x"}, "product_id"),
        ({"name": ""}, "name"),
        ({"type": "x"}, "type"),
        ({"tax_mode": "x"}, "tax_mode"),
        ({"billing_cycle": {"interval": "fortnight", "frequency": 1}}, "billing_cycle.interval"),
        ({"billing_cycle": {"interval": "day", "frequency": 0}}, "billing_cycle.frequency"),
        ({"billing_cycle": {"interval": "day", "frequency": 10**30}}, "billing_cycle.frequency"),
        ({"trial_period": {"interval": "day", "frequency": 7}}, "trial_period"),
        ({"unit_price": {"amount": 100, "currency_code": "USD"}}, "unit_price.amount"),
        ({"unit_price": {"amount": "-100", "currency_code": "USD"}}, "unit_price.amount"),
        ({"unit_price": {"amount": "1.00", "currency_code": "USD"}}, "unit_price.amount"),
        ({"unit_price": {"amount": "9" * 5000, "currency_code": "USD"}}, "unit_price.amount"),
        ({"unit_price": {"amount": "100", "currency_code": "XYZ"}}, "unit_price.currency_code"),
        ({"unit_price": {"amount": "100"}}, "unit_price.currency_code"),
        ({"unit_price": "100 USD"}, "unit_price"),
        ({"quantity": {"minimum": 10, "maximum": 1}}, "quantity.maximum"),
        ({"quantity": {"minimum": 0, "maximum": 1}}, "quantity.minimum"),
        ({"quantity": {"minimum": 1, "maximum": 10**12}}, "quantity.maximum"),
        (
            {
                "unit_price_overrides": [
                    {"country_codes": ["XX"], "unit_price": {"amount": "1", "currency_code": "EUR"}}
                ]
            },
            "unit_price_overrides[0].country_codes",
        ),
        ({"unit_price_overrides": "none"}, "unit_price_overrides"),
        ({"custom_data": "x"}, "custom_data"),
        ({"status": "archived"}, "status"),
    ],
)
async def test_every_bad_price_field_is_invalid_field_naming_it(
    client: httpx.AsyncClient, alice: Member, extra: dict[str, Any], field: str
) -> None:
    product = await create_product(client, alice.auth())
    body = {
        "description": "Monthly",
        "product_id": product["id"],
        "unit_price": {"amount": "1000", "currency_code": "USD"},
        **extra,
    }
    err = error(await client.post(PRICES, json=body, headers=alice.auth()), 400, "invalid_field", PRICES)
    assert list(field_errors(err)) == [field]


async def test_a_price_body_missing_everything_names_every_required_field(
    client: httpx.AsyncClient, alice: Member
) -> None:
    err = error(await client.post(PRICES, json={}, headers=alice.auth()), 400, "invalid_field", PRICES)
    assert field_errors(err) == {"description": REQUIRED, "product_id": REQUIRED, "unit_price": REQUIRED}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", None),
        ("status", "deleted"),
        ("tax_category", "x"),
        ("image_url", 3),
        ("type", None),
    ],
)
async def test_a_bad_product_update_is_invalid_field_and_changes_nothing(
    client: httpx.AsyncClient, alice: Member, field: str, value: Any
) -> None:
    created = await create_product(client, alice.auth())
    response = await client.patch(f"/products/{created['id']}", json={field: value}, headers=alice.auth())
    assert list(field_errors(error(response, 400, "invalid_field", PRODUCT))) == [field]
    assert (
        ok(await client.get(f"/products/{created['id']}", headers=alice.auth()), PRODUCT)["data"] == created
    )


async def test_a_bad_price_update_is_invalid_field_and_changes_nothing(
    client: httpx.AsyncClient, alice: Member
) -> None:
    product = await create_product(client, alice.auth())
    created = await create_price(client, alice.auth(), product["id"])
    response = await client.patch(
        f"/prices/{created['id']}",
        json={"unit_price": {"amount": "x", "currency_code": "USD"}, "status": "gone"},
        headers=alice.auth(),
    )
    assert set(field_errors(error(response, 400, "invalid_field", PRICE))) == {"unit_price.amount", "status"}
    assert ok(await client.get(f"/prices/{created['id']}", headers=alice.auth()), PRICE)["data"] == created


def _write_routes(product_id: str, price_id: str) -> list[tuple[str, str, str]]:
    return [
        ("POST", PRODUCTS, PRODUCTS),
        ("PATCH", f"/products/{product_id}", PRODUCT),
        ("POST", PRICES, PRICES),
        ("PATCH", f"/prices/{price_id}", PRICE),
    ]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        (b'{"name": "P", "tax_category": "standard"}', "text/plain"),
        (b'{"name": "P", "tax_category": "standard"}', None),
        (b'{"name": "P", ', "application/json"),
        (b"", "application/json"),
        (b'["name"]', "application/json"),
        (b'"name"', "application/json"),
        (b"null", "application/json"),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_bad_request(
    client: httpx.AsyncClient, alice: Member, content: bytes, content_type: str | None
) -> None:
    product = await create_product(client, alice.auth())
    price = await create_price(client, alice.auth(), product["id"])
    headers = alice.auth() | ({"Content-Type": content_type} if content_type else {})
    for method, url, template in _write_routes(product["id"], price["id"]):
        response = await client.request(method, url, content=content, headers=headers)
        error(response, 400, "bad_request", template)


@pytest.mark.parametrize(
    ("url", "template", "detail"),
    [
        (f"/products/{MISSING_PRODUCT}", PRODUCT, f"Product {MISSING_PRODUCT} not found."),
        ("/products/pro_short", PRODUCT, "Product pro_short not found."),
        (
            "/products/pri_01gsz8x8sawmvhz1pv30nge1ke",
            PRODUCT,
            "Product pri_01gsz8x8sawmvhz1pv30nge1ke not found.",
        ),
        (f"/prices/{MISSING_PRICE}", PRICE, f"Price {MISSING_PRICE} not found."),
        ("/prices/PRI_01GSZ8X8SAWMVHZ1PV30NGE1KE", PRICE, "Price PRI_01GSZ8X8SAWMVHZ1PV30NGE1KE not found."),
    ],
)
async def test_an_unknown_or_malformed_id_is_not_found(
    client: httpx.AsyncClient, alice: Member, url: str, template: str, detail: str
) -> None:
    assert error(await client.get(url, headers=alice.auth()), 404, "not_found", template)["detail"] == detail
    response = await client.patch(url, json={"status": "archived"}, headers=alice.auth())
    assert error(response, 404, "not_found", template)["detail"] == detail


# --- permissions ----------------------------------------------------------------------------------


READS = {"product": Permission.PRODUCT_READ, "price": Permission.PRICE_READ}
WRITES = {"product": Permission.PRODUCT_WRITE, "price": Permission.PRICE_WRITE}
ROUTES = [
    ("GET", PRODUCTS, "product", False),
    ("POST", PRODUCTS, "product", True),
    ("GET", PRODUCT, "product", False),
    ("PATCH", PRODUCT, "product", True),
    ("GET", PRICES, "price", False),
    ("POST", PRICES, "price", True),
    ("GET", PRICE, "price", False),
    ("PATCH", PRICE, "price", True),
]


async def _request(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    auth: dict[str, str],
    product_id: str,
    price_id: str,
) -> httpx.Response:
    url = template.format(product_id=product_id, price_id=price_id)
    body: dict[str, Any] | None = None
    if method == "POST" and template == PRODUCTS:
        body = {"name": "P", "tax_category": "standard"}
    elif method == "POST":
        body = {
            "description": "Monthly",
            "product_id": product_id,
            "unit_price": {"amount": "1", "currency_code": "USD"},
        }
    elif method == "PATCH":
        body = {"description": "Renamed"} if template == PRICE else {"name": "Renamed"}
    return await client.request(method, url, json=body, headers=auth)


@pytest.mark.parametrize(("method", "template", "entity", "writes"), ROUTES)
@pytest.mark.parametrize("grant", ["none", "other", "read", "write"])
async def test_each_route_needs_its_permission_and_write_includes_read(
    client: httpx.AsyncClient,
    deps: services.Deps,
    alice: Member,
    method: str,
    template: str,
    entity: str,
    writes: bool,
    grant: str,
) -> None:
    product = await create_product(client, alice.auth())
    price = await create_price(client, alice.auth(), product["id"])
    other = "price" if entity == "product" else "product"
    permissions = {
        "none": (Permission.CLIENT_TOKEN_WRITE,),
        "other": (WRITES[other],),  # product.write grants nothing on prices, and the reverse
        "read": (READS[entity],),
        "write": (WRITES[entity],),
    }[grant]
    auth = await scoped_key(deps, alice, *permissions)
    response = await _request(client, method, template, auth, product["id"], price["id"])
    allowed = grant == "write" or (grant == "read" and not writes)
    if allowed:
        ok(response, template, 201 if method == "POST" else 200)
    else:
        err = error(response, 403, "forbidden", template)
        needed = WRITES[entity] if writes else READS[entity]
        assert needed.value in err["detail"]


@pytest.mark.parametrize(("method", "template", "entity", "writes"), ROUTES)
async def test_every_route_refuses_a_missing_or_bad_credential(
    client: httpx.AsyncClient, alice: Member, method: str, template: str, entity: str, writes: bool
) -> None:
    response = await _request(client, method, template, {}, MISSING_PRODUCT, MISSING_PRICE)
    error(response, 403, "authentication_missing", template)
    response = await _request(
        client, method, template, {"Authorization": "Bearer nope"}, MISSING_PRODUCT, MISSING_PRICE
    )
    error(response, 403, "invalid_token", template)


# --- tenancy --------------------------------------------------------------------------------------


async def test_charlie_sees_none_of_alices_catalogue(
    client: httpx.AsyncClient, alice: Member, charlie: Member
) -> None:
    product = await create_product(client, alice.auth())
    price = await create_price(client, alice.auth(), product["id"])
    for path, template in ((f"/products/{product['id']}", PRODUCT), (f"/prices/{price['id']}", PRICE)):
        error(await client.get(path, headers=charlie.auth()), 404, "not_found", template)
        response = await client.patch(path, json={"status": "archived"}, headers=charlie.auth())
        error(response, 404, "not_found", template)
    assert await listed(client, PRODUCTS, charlie.auth(), status="active,archived") == []
    assert await listed(client, PRICES, charlie.auth(), product_id=product["id"]) == []
    response = await client.post(
        PRICES,
        json={
            "description": "Stolen",
            "product_id": product["id"],
            "unit_price": {"amount": "1", "currency_code": "USD"},
        },
        headers=charlie.auth(),
    )
    assert list(field_errors(error(response, 400, "invalid_field", PRICES))) == ["product_id"]
    # Nothing of alice's changed.
    assert (
        ok(await client.get(f"/products/{product['id']}", headers=alice.auth()), PRODUCT)["data"] == product
    )


async def test_sandbox_and_live_catalogues_are_separate(client: httpx.AsyncClient, alice: Member) -> None:
    sandbox = await create_product(client, alice.auth(SANDBOX), name="Sandbox")
    live = await create_product(client, alice.auth(LIVE), name="Live")
    assert await listed(client, PRODUCTS, alice.auth(SANDBOX)) == [sandbox["id"]]
    assert await listed(client, PRODUCTS, alice.auth(LIVE)) == [live["id"]]
    error(await client.get(f"/products/{sandbox['id']}", headers=alice.auth(LIVE)), 404, "not_found", PRODUCT)
    response = await client.post(
        PRICES,
        json={
            "description": "Cross",
            "product_id": sandbox["id"],
            "unit_price": {"amount": "1", "currency_code": "USD"},
        },
        headers=alice.auth(LIVE),
    )
    assert list(field_errors(error(response, 400, "invalid_field", PRICES))) == ["product_id"]
    price = await create_price(client, alice.auth(SANDBOX), sandbox["id"])
    error(await client.get(f"/prices/{price['id']}", headers=alice.auth(LIVE)), 404, "not_found", PRICE)
    assert await listed(client, PRICES, alice.auth(LIVE)) == []


# --- pagination -----------------------------------------------------------------------------------


@pytest.mark.parametrize("order", ["id[DESC]", "id[ASC]", None])
async def test_pages_walk_every_product_once_in_either_order(
    client: httpx.AsyncClient, alice: Member, order: str | None
) -> None:
    made = [(await create_product(client, alice.auth(), name=f"P{i}"))["id"] for i in range(5)]
    params: dict[str, str] = {"per_page": "2"} | ({"order_by": order} if order else {})
    seen: list[str] = []
    url: str | None = PRODUCTS
    pages = 0
    while url is not None:
        body = ok(
            await client.get(url, params=params if pages == 0 else None, headers=alice.auth()), PRODUCTS
        )
        pagination = body["meta"]["pagination"]
        assert (pagination["per_page"], pagination["estimated_total"]) == (2, 5)
        seen += [p["id"] for p in body["data"]]
        pages += 1
        next_url = urlsplit(pagination["next"])
        assert next_url.scheme == "http"
        assert parse_qs(next_url.query)["per_page"] == ["2"]
        url = f"{next_url.path}?{next_url.query}" if pagination["has_more"] else None
    assert pages == 3
    assert seen == (sorted(made) if order == "id[ASC]" else sorted(made, reverse=True))


async def test_price_pages_keep_the_product_filter(client: httpx.AsyncClient, alice: Member) -> None:
    product = await create_product(client, alice.auth())
    other = await create_product(client, alice.auth())
    made = [(await create_price(client, alice.auth(), product["id"]))["id"] for _ in range(3)]
    await create_price(client, alice.auth(), other["id"])
    first = ok(
        await client.get(PRICES, params={"per_page": "2", "product_id": product["id"]}, headers=alice.auth()),
        PRICES,
    )
    assert first["meta"]["pagination"]["has_more"] is True
    assert first["meta"]["pagination"]["estimated_total"] == 3
    next_url = urlsplit(first["meta"]["pagination"]["next"])
    assert parse_qs(next_url.query)["product_id"] == [product["id"]]
    second = ok(await client.get(f"{next_url.path}?{next_url.query}", headers=alice.auth()), PRICES)
    assert second["meta"]["pagination"]["has_more"] is False
    assert [p["id"] for p in first["data"] + second["data"]] == sorted(made, reverse=True)


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        (PRODUCTS, {"per_page": "0"}, "per_page"),
        (PRODUCTS, {"per_page": "x"}, "per_page"),
        (PRODUCTS, {"order_by": "name[ASC]"}, "order_by"),
        (PRODUCTS, {"after": MISSING_PRICE}, "after"),
        (PRICES, {"after": MISSING_PRODUCT}, "after"),
        (PRICES, {"order_by": "id"}, "order_by"),
    ],
)
async def test_bad_list_parameters_are_invalid_field(
    client: httpx.AsyncClient, alice: Member, path: str, params: dict[str, str], field: str
) -> None:
    err = error(await client.get(path, params=params, headers=alice.auth()), 400, "invalid_field", path)
    assert list(field_errors(err)) == [field]


async def test_per_page_above_the_maximum_is_clamped(client: httpx.AsyncClient, alice: Member) -> None:
    body = ok(await client.get(PRICES, params={"per_page": "5000"}, headers=alice.auth()), PRICES)
    assert body["meta"]["pagination"]["per_page"] == 200


# --- what previews call ---------------------------------------------------------------------------


async def test_prices_for_preview_returns_only_the_scopes_prices_with_their_products(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, charlie: Member
) -> None:
    product = await create_product(client, alice.auth())
    active = await create_price(client, alice.auth(), product["id"])
    archived = await create_price(client, alice.auth(), product["id"])
    await client.patch(f"/prices/{archived['id']}", json={"status": "archived"}, headers=alice.auth())
    live_product = await create_product(client, alice.auth(LIVE))
    live_price = await create_price(client, alice.auth(LIVE), live_product["id"])
    charlies = await create_price(
        client, charlie.auth(), (await create_product(client, charlie.auth()))["id"]
    )

    asked = [
        active["id"],
        archived["id"],
        live_price["id"],
        charlies["id"],
        MISSING_PRICE,
        "garbage",
        active["id"],
    ]
    found = await catalogue_services.prices_for_preview(deps, alice.account_id, SANDBOX, asked)
    assert set(found) == {active["id"], archived["id"]}
    price, owner = found[archived["id"]]
    assert (price.status, owner.id, owner.name) == (CatalogStatus.ARCHIVED, product["id"], "AeroEdit Pro")
    assert found[active["id"]][0].unit_price.amount == "1000"
    assert await catalogue_services.prices_for_preview(deps, alice.account_id, SANDBOX, []) == {}


async def test_the_openapi_document_lists_the_catalogue_routes(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    assert set(document["paths"]["/products"]) == {"get", "post"}
    assert set(document["paths"]["/products/{product_id}"]) == {"get", "patch"}
    assert set(document["paths"]["/prices"]) == {"get", "post"}
    assert set(document["paths"]["/prices/{price_id}"]) == {"get", "patch"}
    create = document["paths"]["/prices"]["post"]
    assert create["operationId"] == "create-price"
    assert create["requestBody"]["content"]["application/json"]["schema"]["required"] == [
        "description",
        "product_id",
        "unit_price",
    ]
