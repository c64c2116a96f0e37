"""The client-side tokens API (``/client-tokens``) over HTTP, through the real ASGI app, on both stores.

The cast: **alice** owns account A (merchant keys with every permission, sandbox and live);
**bob** is a partner integration on the early-access allow-list, installed in alice's sandbox with
``client_token.read`` and ``client_token.write``; **dave** is another partner installed the same way
but not allow-listed (unless a test says so); **charlie** owns account B. Every response body is
checked against Paddle's spec subset (``tests/spec.py``).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind
from keyhouse.domain.credentials import new_client_token
from keyhouse.domain.errors import Conflict
from keyhouse.domain.events import EventType
from keyhouse.domain.ids import new_id
from keyhouse.domain.integrations import EARLY_ACCESS_DETAIL, Availability, Feature
from keyhouse.domain.keys import KeyStatus
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339
from keyhouse.services import client_tokens as token_services
from keyhouse.services import integrations
from keyhouse.services.client_tokens import TokenScope
from keyhouse.web import WebOptions, create_app
from tests import spec
from tests.conftest import FakeClock, Member

SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
READ, WRITE = Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE
READ_WRITE = frozenset({READ, WRITE})
LIST, ONE = "/client-tokens", "/client-tokens/{client_token_id}"
TOKEN_ID = re.compile(r"ctkn_[a-z0-9]{26}")
NOT_PERMITTED = "You aren't permitted to perform this request. The API key lacks the {} permission."


# --- the cast -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """One installation of a partner integration and the API key it was given."""

    integration_id: str
    installation_id: str
    key_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


async def register(deps: services.Deps, name: str, *, early_access: bool) -> str:
    integration = await integrations.register_integration(deps, name, early_access=early_access, actor="test")
    return integration.id


async def install(
    deps: services.Deps,
    integration_id: str,
    account_id: str,
    *,
    environment: Environment = SANDBOX,
    permissions: frozenset[Permission] = READ_WRITE,
) -> Partner:
    installation, key, plaintext = await integrations.install(
        deps,
        account_id=account_id,
        environment=environment,
        integration_id=integration_id,
        permissions=permissions,
    )
    return Partner(integration_id, installation.id, key.id, plaintext)


@pytest.fixture
async def bob(deps: services.Deps, alice: Member) -> Partner:
    """An allow-listed partner installed in alice's sandbox with client_token.read and .write."""
    return await install(deps, await register(deps, "Bob's paywalls", early_access=True), alice.account_id)


@pytest.fixture
async def dave(deps: services.Deps, alice: Member) -> Partner:
    """A partner that is not on the allow-list, installed in alice's sandbox like bob."""
    return await install(deps, await register(deps, "Dave's analytics", early_access=False), alice.account_id)


async def general_availability(deps: services.Deps) -> None:
    await integrations.set_feature(
        deps, Feature.CLIENT_TOKENS_API, Availability.GENERAL_AVAILABILITY, actor="test"
    )


async def early_access(deps: services.Deps) -> None:
    await integrations.set_feature(deps, Feature.CLIENT_TOKENS_API, Availability.EARLY_ACCESS, actor="test")


async def legacy_key(deps: services.Deps, member: Member) -> dict[str, str]:
    _, plaintext = await services.import_legacy_key(
        deps, account_id=member.account_id, environment=SANDBOX, name="Old", secret=None
    )
    return {"Authorization": f"Bearer {plaintext}"}


async def merchant_key(
    deps: services.Deps, member: Member, permissions: frozenset[Permission]
) -> dict[str, str]:
    _, plaintext = await services.create_key(
        deps, account_id=member.account_id, environment=SANDBOX, name="Scoped", permissions=permissions
    )
    return {"Authorization": f"Bearer {plaintext}"}


# --- helpers --------------------------------------------------------------------------------------


def checked(response: httpx.Response, path: str) -> dict[str, Any]:
    """The body, after the spec, the envelope and the Request-Id header are checked."""
    body: dict[str, Any] = spec.check(response, path)
    assert body["meta"]["request_id"]
    assert response.headers["request-id"] == body["meta"]["request_id"]
    return body


def ok(response: httpx.Response, path: str, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return checked(response, path)


def error(response: httpx.Response, status: int, code: str, path: str) -> dict[str, Any]:
    """The ``error`` object of a refusal in Paddle's full envelope."""
    assert response.status_code == status, response.text
    err: dict[str, Any] = checked(response, path)["error"]
    assert (err["type"], err["code"]) == ("request_error", code)
    assert err["detail"]
    assert err["documentation_url"] == f"https://developer.paddle.com/v1/errors/shared/{code}"
    return err


def field_errors(err: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in err["errors"]}


async def create(client: httpx.AsyncClient, auth: dict[str, str], **body: Any) -> dict[str, Any]:
    """POST a token (name defaults to "Pricing page"); it must be created. Returns the entity."""
    response = await client.post(LIST, json={"name": "Pricing page", **body}, headers=auth)
    data: dict[str, Any] = ok(response, LIST, 201)["data"]
    return data


async def listed(client: httpx.AsyncClient, auth: dict[str, str], **params: str) -> list[str]:
    """The ids on the first page of ``GET /client-tokens`` (per_page 200 unless given)."""
    response = await client.get(LIST, params={"per_page": "200", **params}, headers=auth)
    return [t["id"] for t in ok(response, LIST)["data"]]


async def revoke(client: httpx.AsyncClient, auth: dict[str, str], token_id: str) -> httpx.Response:
    return await client.patch(f"/client-tokens/{token_id}", json={"status": "revoked"}, headers=auth)


async def bulk_create(
    deps: services.Deps, scope: TokenScope, creator: Creator, count: int, *, prefix: str = "Token"
) -> list[ClientToken]:
    """Tokens made through the services layer: the HTTP path is covered elsewhere; this is for volume."""
    return [
        await token_services.create_token(
            deps, scope, name=f"{prefix} {i}", description=None, created_by=creator
        )
        for i in range(count)
    ]


def partner_scope(alice: Member, partner: Partner, environment: Environment = SANDBOX) -> TokenScope:
    return TokenScope(alice.account_id, environment, partner.installation_id)


def partner_creator(partner: Partner) -> Creator:
    return Creator(CreatorKind.INSTALLATION, partner.installation_id)


# --- create ---------------------------------------------------------------------------------------


async def test_a_partner_creates_a_sandbox_token_201_in_paddles_shape(
    client: httpx.AsyncClient, bob: Partner, clock: FakeClock
) -> None:
    response = await client.post(LIST, json={"name": "Pricing page"}, headers=bob.auth)
    token = ok(response, LIST, 201)["data"]
    assert TOKEN_ID.fullmatch(token["id"])
    assert re.fullmatch(r"test_[0-9a-f]{27}", token["token"])
    assert token["name"] == "Pricing page"
    assert token["description"] is None
    assert token["status"] == "active"
    assert token["revoked_at"] is None
    assert token["created_at"] == token["updated_at"] == rfc3339(clock.now)
    assert list(token) == [
        "id",
        "token",
        "name",
        "description",
        "status",
        "revoked_at",
        "created_at",
        "updated_at",
        "allowed_origins",  # keyhouse extension, last; null unless the token is origin-restricted
    ]
    assert token["allowed_origins"] is None


async def test_a_live_installation_creates_live_tokens(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    bob_live = await install(deps, bob.integration_id, alice.account_id, environment=LIVE)
    token = await create(client, bob_live.auth)
    assert re.fullmatch(r"live_[0-9a-f]{27}", token["token"])


async def test_description_is_kept_and_the_limits_are_inclusive(
    client: httpx.AsyncClient, bob: Partner
) -> None:
    token = await create(client, bob.auth, name="n" * 150, description="d" * 500)
    assert (token["name"], token["description"]) == ("n" * 150, "d" * 500)
    token = await create(client, bob.auth, name="x", description=None)
    assert (token["name"], token["description"]) == ("x", None)


async def test_every_token_is_new_even_with_the_same_name(client: httpx.AsyncClient, bob: Partner) -> None:
    first, second = await create(client, bob.auth), await create(client, bob.auth)
    assert first["id"] != second["id"]
    assert first["token"] != second["token"]


#: (case, body, the field the refusal names)
BAD_CREATE_FIELDS: list[tuple[str, dict[str, Any], str]] = [
    ("empty name", {"name": ""}, "name"),
    ("151-char name", {"name": "n" * 151}, "name"),
    ("name a number", {"name": 5}, "name"),
    ("name null", {"name": None}, "name"),
    ("name a list", {"name": ["a"]}, "name"),
    ("missing name", {}, "name"),
    ("description without name", {"description": "only"}, "name"),
    ("501-char description", {"name": "ok", "description": "d" * 501}, "description"),
    ("empty description", {"name": "ok", "description": ""}, "description"),
    ("description a number", {"name": "ok", "description": 5}, "description"),
    ("description an object", {"name": "ok", "description": {"a": 1}}, "description"),
    ("unknown field status", {"name": "ok", "status": "revoked"}, "status"),
    ("unknown field token", {"name": "ok", "token": "test_" + "0" * 27}, "token"),
]


async def test_every_bad_create_field_is_invalid_field_naming_it_and_creates_nothing(
    client: httpx.AsyncClient, bob: Partner
) -> None:
    for case, body, field in BAD_CREATE_FIELDS:
        response = await client.post(LIST, json=body, headers=bob.auth)
        assert field in field_errors(error(response, 400, "invalid_field", LIST)), case
    response = await client.post(LIST, json={"name": 5, "description": 5}, headers=bob.auth)
    assert set(field_errors(error(response, 400, "invalid_field", LIST))) == {"name", "description"}
    assert await listed(client, bob.auth, status="active,revoked") == []


#: (case, raw body, content type)
BAD_BODIES = [
    ("a list", b"[]", "application/json"),
    ("a string", b'"name"', "application/json"),
    ("a number", b"5", "application/json"),
    ("null", b"null", "application/json"),
    ("broken JSON", b'{"name": "x"', "application/json"),
    ("empty", b"", "application/json"),
    ("JSON as text/plain", b'{"name": "x"}', "text/plain"),
    ("a form", b"name=x", "application/x-www-form-urlencoded"),
    ("no content type", b'{"name": "x"}', ""),
]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
async def test_a_body_that_is_not_a_json_object_is_bad_request(
    client: httpx.AsyncClient, bob: Partner, method: str
) -> None:
    token = await create(client, bob.auth)
    path, template = (LIST, LIST) if method == "POST" else (f"/client-tokens/{token['id']}", ONE)
    for case, raw, content_type in BAD_BODIES:
        headers = {**bob.auth, "Content-Type": content_type}
        response = await client.request(method, path, content=raw, headers=headers)
        assert response.status_code == 400, (case, response.text)
        error(response, 400, "bad_request", template)
    assert await listed(client, bob.auth) == [token["id"]]  # nothing created, nothing revoked


async def test_json_with_a_charset_parameter_is_accepted(client: httpx.AsyncClient, bob: Partner) -> None:
    headers = {**bob.auth, "Content-Type": "application/json; charset=utf-8"}
    response = await client.post(LIST, content=b'{"name": "x"}', headers=headers)
    ok(response, LIST, 201)


# --- read -----------------------------------------------------------------------------------------


async def test_get_returns_the_token_with_its_publishable_value(
    client: httpx.AsyncClient, bob: Partner
) -> None:
    token = await create(client, bob.auth, description="Checkout on the pricing page")
    response = await client.get(f"/client-tokens/{token['id']}", headers=bob.auth)
    assert ok(response, ONE)["data"] == token


async def test_a_list_shows_active_tokens_only_by_default(client: httpx.AsyncClient, bob: Partner) -> None:
    kept, gone = await create(client, bob.auth), await create(client, bob.auth)
    ok(await revoke(client, bob.auth, gone["id"]), ONE)
    response = await client.get(LIST, headers=bob.auth)
    body = ok(response, LIST)
    assert [t["id"] for t in body["data"]] == [kept["id"]]
    assert body["data"][0] == kept


async def test_the_status_filter_selects_revoked_or_both(client: httpx.AsyncClient, bob: Partner) -> None:
    kept, gone = await create(client, bob.auth), await create(client, bob.auth)
    ok(await revoke(client, bob.auth, gone["id"]), ONE)
    assert await listed(client, bob.auth, status="revoked") == [gone["id"]]
    assert await listed(client, bob.auth, status="active") == [kept["id"]]
    newest_first = sorted([kept["id"], gone["id"]], reverse=True)
    assert await listed(client, bob.auth, status="active,revoked") == newest_first
    assert await listed(client, bob.auth, status="revoked,active") == newest_first


async def test_an_unknown_status_filter_is_invalid_field(client: httpx.AsyncClient, bob: Partner) -> None:
    for status in ["expired", "active,expired", "", ",", "ACTIVE", "active;revoked", "active revoked"]:
        response = await client.get(LIST, params={"status": status}, headers=bob.auth)
        assert "status" in field_errors(error(response, 400, "invalid_field", LIST)), status


async def test_bad_pagination_parameters_are_invalid_field(client: httpx.AsyncClient, bob: Partner) -> None:
    for params, field in [
        ({"after": "apikey_01hzx3k9q8w7v6t5r4p3n2m1ab"}, "after"),
        ({"after": "ctkn_short"}, "after"),
        ({"per_page": "0"}, "per_page"),
        ({"per_page": "-1"}, "per_page"),
        ({"per_page": "ten"}, "per_page"),
        ({"order_by": "name[ASC]"}, "order_by"),
        ({"order_by": "id"}, "order_by"),
    ]:
        response = await client.get(LIST, params=params, headers=bob.auth)
        assert field in field_errors(error(response, 400, "invalid_field", LIST)), params


MALFORMED_IDS = [
    "ctkn_123",
    "ctkn_" + "A" * 26,
    "ctkn_" + "a" * 27,
    "apikey_01hzx3k9q8w7v6t5r4p3n2m1ab",
    "01hzx3k9q8w7v6t5r4p3n2m1ab",
    "test_" + "0" * 27,  # a token's value is not its id
    "ctkn_01hzx3k9q8w7v6t5r4p3n2m1a%21",
]


async def test_a_malformed_id_is_not_found_on_get_and_patch(client: httpx.AsyncClient, bob: Partner) -> None:
    for token_id in MALFORMED_IDS:
        path = f"/client-tokens/{token_id}"
        assert error(await client.get(path, headers=bob.auth), 404, "not_found", ONE), token_id
        error(await client.patch(path, json={"status": "revoked"}, headers=bob.auth), 404, "not_found", ONE)


async def test_an_unknown_id_is_not_found_on_get_and_patch(client: httpx.AsyncClient, bob: Partner) -> None:
    unknown = new_id("ctkn")
    err = error(await client.get(f"/client-tokens/{unknown}", headers=bob.auth), 404, "not_found", ONE)
    assert unknown in err["detail"]
    error(await revoke(client, bob.auth, unknown), 404, "not_found", ONE)


# --- update (revoke) ------------------------------------------------------------------------------


async def test_patch_revokes_a_token_and_stamps_revoked_at(
    client: httpx.AsyncClient, bob: Partner, clock: FakeClock
) -> None:
    token = await create(client, bob.auth)
    clock.advance(minutes=5)
    revoked = ok(await revoke(client, bob.auth, token["id"]), ONE)["data"]
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] == revoked["updated_at"] == rfc3339(clock.now)
    assert revoked["created_at"] == token["created_at"]
    assert {k: v for k, v in revoked.items() if k not in {"status", "revoked_at", "updated_at"}} == {
        k: v for k, v in token.items() if k not in {"status", "revoked_at", "updated_at"}
    }
    assert ok(await client.get(f"/client-tokens/{token['id']}", headers=bob.auth), ONE)["data"] == revoked


async def test_revoking_twice_is_fine_and_changes_nothing(
    client: httpx.AsyncClient, bob: Partner, clock: FakeClock
) -> None:
    token = await create(client, bob.auth)
    first = ok(await revoke(client, bob.auth, token["id"]), ONE)["data"]
    clock.advance(minutes=1)
    again = ok(await revoke(client, bob.auth, token["id"]), ONE)["data"]
    assert again == first


async def test_patch_active_on_an_active_token_changes_nothing(
    client: httpx.AsyncClient, bob: Partner
) -> None:
    token = await create(client, bob.auth)
    response = await client.patch(
        f"/client-tokens/{token['id']}", json={"status": "active"}, headers=bob.auth
    )
    assert ok(response, ONE)["data"] == token


async def test_a_revoked_token_stays_revoked(client: httpx.AsyncClient, bob: Partner) -> None:
    token = await create(client, bob.auth)
    revoked = ok(await revoke(client, bob.auth, token["id"]), ONE)["data"]
    path = f"/client-tokens/{token['id']}"
    response = await client.patch(path, json={"status": "active"}, headers=bob.auth)
    assert "status" in field_errors(error(response, 400, "invalid_field", ONE))
    assert ok(await client.get(path, headers=bob.auth), ONE)["data"] == revoked


#: (case, PATCH body, the field the refusal names)
BAD_PATCHES: list[tuple[str, dict[str, Any], str]] = [
    ("name", {"name": "Renamed"}, "name"),
    ("description", {"description": "New words"}, "description"),
    ("status and name", {"status": "revoked", "name": "Renamed"}, "name"),
    ("token", {"token": "test_" + "0" * 27}, "token"),
    ("empty object", {}, "status"),
    ("unknown status", {"status": "expired"}, "status"),
    ("status in capitals", {"status": "REVOKED"}, "status"),
    ("status a number", {"status": 5}, "status"),
    ("status null", {"status": None}, "status"),
    ("status a list", {"status": ["revoked"]}, "status"),
    ("status an object", {"status": {"revoked": True}}, "status"),
]


async def test_name_and_description_are_immutable_and_status_is_checked(
    client: httpx.AsyncClient, bob: Partner
) -> None:
    token = await create(client, bob.auth)
    path = f"/client-tokens/{token['id']}"
    for case, body, field in BAD_PATCHES:
        err = error(await client.patch(path, json=body, headers=bob.auth), 400, "invalid_field", ONE)
        assert field in field_errors(err), case
    assert ok(await client.get(path, headers=bob.auth), ONE)["data"] == token


# --- pagination -----------------------------------------------------------------------------------


async def walk(
    client: httpx.AsyncClient, auth: dict[str, str], params: dict[str, str]
) -> tuple[list[str], int]:
    """Follow ``meta.pagination.next`` exactly as returned until ``has_more`` is false."""
    response = await client.get(LIST, params=params, headers=auth)
    ids: list[str] = []
    pages = 0
    while True:
        body = ok(response, LIST)
        pages += 1
        ids += [t["id"] for t in body["data"]]
        pagination = body["meta"]["pagination"]
        next_url = httpx.URL(pagination["next"])
        assert str(next_url).startswith("http://testserver/client-tokens?")
        assert {**dict(next_url.params), "after": ""} == {**params, "after": ""}  # every filter kept
        if not pagination["has_more"]:
            return ids, pages
        assert next_url.params["after"] == ids[-1]
        assert pages < 50, "pagination does not end"
        response = await client.get(pagination["next"], headers=auth)


async def test_pagination_walks_more_than_200_tokens_in_both_orders_following_next(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    made = await bulk_create(deps, partner_scope(alice, bob), partner_creator(bob), 215)
    for token in made[::10]:  # 22 revoked, spread over the whole range
        await token_services.revoke_token(deps, partner_scope(alice, bob), token.id)
    everything = sorted(t.id for t in made)
    revoked = sorted(t.id for t in made[::10])
    active = [i for i in everything if i not in set(revoked)]
    assert len(active) == 193

    assert await walk(client, bob.auth, {}) == (active[::-1], 4)  # default: active, newest first, 50 a page
    assert await walk(client, bob.auth, {"order_by": "id[asc]", "per_page": "25"}) == (active, 8)
    assert await walk(client, bob.auth, {"order_by": "id[DESC]", "per_page": "37"}) == (active[::-1], 6)
    both = {"order_by": "id[ASC]", "per_page": "200", "status": "active,revoked"}
    assert await walk(client, bob.auth, both) == (everything, 2)
    both["order_by"] = "id[desc]"
    assert await walk(client, bob.auth, both) == (everything[::-1], 2)
    assert await walk(client, bob.auth, {"status": "revoked", "per_page": "7"}) == (revoked[::-1], 4)

    # per_page above the maximum is clamped to 200; estimated_total counts what the filter selects
    body = ok(
        await client.get(LIST, params={"per_page": "500", "status": "active,revoked"}, headers=bob.auth), LIST
    )
    assert len(body["data"]) == 200
    pagination = body["meta"]["pagination"]
    assert (pagination["per_page"], pagination["has_more"], pagination["estimated_total"]) == (200, True, 215)


async def test_an_empty_list_still_has_pagination(client: httpx.AsyncClient, bob: Partner) -> None:
    body = ok(await client.get(LIST, headers=bob.auth), LIST)
    assert body["data"] == []
    pagination = body["meta"]["pagination"]
    assert (pagination["has_more"], pagination["estimated_total"]) == (False, 0)


# --- ownership ------------------------------------------------------------------------------------


async def test_a_partner_sees_and_manages_only_its_own_installations_tokens(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    # A second allow-listed installation in the same account and environment (dave, allow-listed).
    other = await install(deps, await register(deps, "Dave's analytics", early_access=True), alice.account_id)
    bobs, others = await create(client, bob.auth), await create(client, other.auth)
    await general_availability(deps)
    merchants = await create(client, alice.auth())

    assert await listed(client, bob.auth, status="active,revoked") == [bobs["id"]]
    assert await listed(client, other.auth, status="active,revoked") == [others["id"]]
    for token_id in (others["id"], merchants["id"]):
        path = f"/client-tokens/{token_id}"
        error(await client.get(path, headers=bob.auth), 404, "not_found", ONE)
        error(await revoke(client, bob.auth, token_id), 404, "not_found", ONE)
    # nothing was revoked by the refused PATCHes
    assert sorted(await listed(client, alice.auth())) == sorted([bobs["id"], others["id"], merchants["id"]])


async def test_another_installation_of_the_same_integration_is_another_owner(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    second = await install(deps, bob.integration_id, alice.account_id)
    token = await create(client, second.auth)
    error(await client.get(f"/client-tokens/{token['id']}", headers=bob.auth), 404, "not_found", ONE)
    assert await listed(client, bob.auth) == []


async def test_a_merchant_key_sees_every_token_of_its_environment_at_general_availability(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, charlie: Member, bob: Partner
) -> None:
    bobs = await create(client, bob.auth)
    await general_availability(deps)
    merchants = await create(client, alice.auth())
    charlies = await create(client, charlie.auth())
    assert sorted(await listed(client, alice.auth())) == sorted([bobs["id"], merchants["id"]])
    assert ok(await client.get(f"/client-tokens/{bobs['id']}", headers=alice.auth()), ONE)["data"] == bobs
    revoked = ok(await revoke(client, alice.auth(), bobs["id"]), ONE)["data"]
    assert revoked["status"] == "revoked"
    # ...but never another account's
    assert await listed(client, alice.auth(), status="active,revoked") == sorted(
        [bobs["id"], merchants["id"]], reverse=True
    )
    error(await client.get(f"/client-tokens/{charlies['id']}", headers=alice.auth()), 404, "not_found", ONE)
    error(await revoke(client, alice.auth(), charlies["id"]), 404, "not_found", ONE)
    error(
        await client.get(f"/client-tokens/{merchants['id']}", headers=charlie.auth()), 404, "not_found", ONE
    )


async def test_sandbox_and_live_are_separate(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    bob_live = await install(deps, bob.integration_id, alice.account_id, environment=LIVE)
    sandbox, live = await create(client, bob.auth), await create(client, bob_live.auth)
    assert sandbox["token"].startswith("test_")
    assert live["token"].startswith("live_")
    assert await listed(client, bob.auth) == [sandbox["id"]]
    assert await listed(client, bob_live.auth) == [live["id"]]
    error(await client.get(f"/client-tokens/{live['id']}", headers=bob.auth), 404, "not_found", ONE)
    error(await revoke(client, bob.auth, live["id"]), 404, "not_found", ONE)
    await general_availability(deps)
    assert await listed(client, alice.auth(SANDBOX)) == [sandbox["id"]]
    assert await listed(client, alice.auth(LIVE)) == [live["id"]]
    error(
        await client.get(f"/client-tokens/{sandbox['id']}", headers=alice.auth(LIVE)), 404, "not_found", ONE
    )


# --- authentication, permissions and the early-access gate ---------------------------------------


ROUTES = [
    pytest.param("GET", LIST, None, READ, id="list"),
    pytest.param("POST", LIST, {"name": "x"}, WRITE, id="create"),
    pytest.param("GET", ONE, None, READ, id="get"),
    pytest.param("PATCH", ONE, {"status": "revoked"}, WRITE, id="update"),
]


async def call(
    client: httpx.AsyncClient,
    method: str,
    template: str,
    body: dict[str, Any] | None,
    auth: dict[str, str],
    token_id: str,
) -> httpx.Response:
    path = template.replace("{client_token_id}", token_id)
    return await client.request(method, path, json=body, headers=auth)


@pytest.fixture
async def bobs_token(client: httpx.AsyncClient, bob: Partner) -> dict[str, Any]:
    return await create(client, bob.auth)


@pytest.mark.parametrize(("method", "template", "body", "needed"), ROUTES)
async def test_in_early_access_merchant_keys_and_other_partners_are_refused_by_the_gate(
    client: httpx.AsyncClient,
    alice: Member,
    dave: Partner,
    bobs_token: dict[str, Any],
    method: str,
    template: str,
    body: dict[str, Any] | None,
    needed: Permission,
) -> None:
    for auth in (alice.auth(), dave.auth):
        response = await call(client, method, template, body, auth, bobs_token["id"])
        assert error(response, 403, "forbidden", template)["detail"] == EARLY_ACCESS_DETAIL


@pytest.mark.parametrize(("method", "template", "body", "needed"), ROUTES)
async def test_the_permission_is_checked_before_the_gate(
    deps: services.Deps,
    client: httpx.AsyncClient,
    alice: Member,
    bob: Partner,
    bobs_token: dict[str, Any],
    method: str,
    template: str,
    body: dict[str, Any] | None,
    needed: Permission,
) -> None:
    no_tokens = frozenset(Permission) - READ_WRITE
    callers = {
        "merchant": await merchant_key(deps, alice, no_tokens),
        "legacy": await legacy_key(deps, alice),
        "other partner": (
            await install(
                deps,
                await register(deps, "Eve", early_access=False),
                alice.account_id,
                permissions=frozenset({Permission.PRODUCT_READ}),
            )
        ).auth,
        "allow-listed partner": (
            await install(deps, bob.integration_id, alice.account_id, permissions=no_tokens)
        ).auth,
    }
    for phase in ("early access", "general availability"):
        for who, auth in callers.items():
            response = await call(client, method, template, body, auth, bobs_token["id"])
            err = error(response, 403, "forbidden", template)
            assert err["detail"] == NOT_PERMITTED.format(needed.value), (phase, who)
        await general_availability(deps)


@pytest.mark.parametrize(("method", "template", "body", "needed"), ROUTES)
async def test_at_general_availability_every_key_with_the_permission_passes(
    deps: services.Deps,
    client: httpx.AsyncClient,
    alice: Member,
    dave: Partner,
    bobs_token: dict[str, Any],
    method: str,
    template: str,
    body: dict[str, Any] | None,
    needed: Permission,
) -> None:
    await general_availability(deps)
    alices = await create(client, alice.auth())
    daves = await create(client, dave.auth)
    for auth, token_id in ((alice.auth(), alices["id"]), (dave.auth, daves["id"])):
        response = await call(client, method, template, body, auth, token_id)
        assert response.status_code in {200, 201}, response.text
    await early_access(deps)  # and back: the switch works both ways, at once in this process
    for auth, token_id in ((alice.auth(), alices["id"]), (dave.auth, daves["id"])):
        response = await call(client, method, template, body, auth, token_id)
        assert error(response, 403, "forbidden", template)["detail"] == EARLY_ACCESS_DETAIL


async def test_taking_an_integration_off_the_allow_list_closes_the_gate_for_its_installations(
    deps: services.Deps, client: httpx.AsyncClient, bob: Partner, dave: Partner
) -> None:
    await integrations.set_early_access(deps, bob.integration_id, False, actor="test")
    await integrations.set_early_access(deps, dave.integration_id, True, actor="test")
    refused = error(await client.get(LIST, headers=bob.auth), 403, "forbidden", LIST)
    assert refused["detail"] == EARLY_ACCESS_DETAIL
    ok(await client.get(LIST, headers=dave.auth), LIST)
    await integrations.set_early_access(deps, bob.integration_id, True, actor="test")
    ok(await client.get(LIST, headers=bob.auth), LIST)


async def test_the_gate_reads_the_store_again_within_a_second(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    """A change written by another process (no ``forget()`` here) is seen once the 1 s cache expires."""
    error(await client.get(LIST, headers=alice.auth()), 403, "forbidden", LIST)  # state now cached
    other_process = services.Deps(store=deps.store, peppers=deps.peppers, clock=deps.clock)
    await general_availability(other_process)
    await asyncio.sleep(integrations.Gate.TTL_SECONDS + 0.05)
    ok(await client.get(LIST, headers=alice.auth()), LIST)


async def test_a_legacy_key_never_reaches_the_api_even_at_general_availability(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member
) -> None:
    await general_availability(deps)
    err = error(await client.get(LIST, headers=await legacy_key(deps, alice)), 403, "forbidden", LIST)
    assert err["detail"] == NOT_PERMITTED.format("client_token.read")


async def test_a_read_only_key_reads_but_cannot_write(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner, bobs_token: dict[str, Any]
) -> None:
    reader = await install(deps, bob.integration_id, alice.account_id, permissions=frozenset({READ}))
    ok(await client.get(LIST, headers=reader.auth), LIST)
    error(await client.get(f"/client-tokens/{bobs_token['id']}", headers=reader.auth), 404, "not_found", ONE)
    for response in (
        await client.post(LIST, json={"name": "x"}, headers=reader.auth),
        await revoke(client, reader.auth, bobs_token["id"]),
    ):
        assert error(response, 403, "forbidden", LIST)["detail"] == NOT_PERMITTED.format("client_token.write")


async def test_write_includes_read(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    writer = await install(deps, bob.integration_id, alice.account_id, permissions=frozenset({WRITE}))
    token = await create(client, writer.auth)
    assert await listed(client, writer.auth) == [token["id"]]
    assert ok(await client.get(f"/client-tokens/{token['id']}", headers=writer.auth), ONE)["data"] == token
    ok(await revoke(client, writer.auth, token["id"]), ONE)


@pytest.mark.parametrize(("method", "template", "body", "needed"), ROUTES)
async def test_a_client_token_is_never_accepted_on_the_server_api(
    deps: services.Deps,
    client: httpx.AsyncClient,
    alice: Member,
    bobs_token: dict[str, Any],
    method: str,
    template: str,
    body: dict[str, Any] | None,
    needed: Permission,
) -> None:
    await general_availability(deps)
    live = (await create(client, alice.auth(LIVE)))["token"]
    for credential, scheme in [
        (bobs_token["token"], "Bearer"),
        (bobs_token["token"], "bearer"),
        (live, "Bearer"),
        (new_client_token(SANDBOX), "Bearer"),  # well-formed but unknown: refused just the same
    ]:
        auth = {"Authorization": f"{scheme} {credential}"}
        response = await call(client, method, template, body, auth, bobs_token["id"])
        err = error(response, 403, "forbidden", template)
        assert "client-side operations" in err["detail"]
        assert credential not in json.dumps(err)


async def test_a_lowercase_bearer_scheme_is_accepted(client: httpx.AsyncClient, bob: Partner) -> None:
    """The Node SDK sends ``bearer``."""
    ok(await client.get(LIST, headers={"Authorization": f"bearer {bob.key}"}), LIST)


async def test_requests_without_a_valid_key_are_refused_before_anything_else(
    client: httpx.AsyncClient,
) -> None:
    for headers, code in [
        ({}, "authentication_missing"),
        ({"Authorization": "Basic abc"}, "authentication_malformed"),
        ({"Authorization": "Bearer " + "x" * 50}, "invalid_token"),
    ]:
        error(await client.post(LIST, json={"name": "x"}, headers=headers), 403, code, LIST)
        error(await client.get(f"/client-tokens/{new_id('ctkn')}", headers=headers), 403, code, ONE)


# --- uninstalling ---------------------------------------------------------------------------------


async def test_uninstalling_revokes_the_installations_key_and_tokens_and_nothing_else(
    deps: services.Deps,
    client: httpx.AsyncClient,
    alice: Member,
    bob: Partner,
    clock: FakeClock,
) -> None:
    other = await install(deps, await register(deps, "Other", early_access=True), alice.account_id)
    kept = await create(client, bob.auth)  # bob's key is now verified and cached
    already = ok(await revoke(client, bob.auth, (await create(client, bob.auth))["id"]), ONE)["data"]
    others = await create(client, other.auth)
    clock.advance(hours=1)

    installation = await integrations.uninstall(deps, bob.installation_id)
    assert installation.uninstalled_at == clock.now

    async with deps.store.read() as tx:
        bobs_key = await tx.get_key(bob.key_id)
    assert bobs_key is not None
    assert (bobs_key.status, bobs_key.revoked_at) == (KeyStatus.REVOKED, clock.now)
    error(await client.get(LIST, headers=bob.auth), 403, "invalid_token", LIST)
    await general_availability(deps)
    after = {
        t["id"]: t
        for t in ok(await client.get(LIST, params={"status": "active,revoked"}, headers=alice.auth()), LIST)[
            "data"
        ]
    }
    assert after[kept["id"]]["status"] == "revoked"
    assert after[kept["id"]]["revoked_at"] == rfc3339(clock.now)
    assert after[already["id"]] == already  # revoked earlier: untouched
    assert after[others["id"]] == others  # another installation's token: untouched
    async with deps.store.read() as tx:
        events = await tx.list_events(alice.account_id, SANDBOX)
    revoked_events = [e for e in events if e.type is EventType.CLIENT_TOKEN_REVOKED]
    assert [e.data["id"] for e in revoked_events] == [already["id"], kept["id"]]
    assert [e.data["id"] for e in events if e.type is EventType.API_KEY_REVOKED] == [bob.key_id]


async def test_uninstalling_twice_is_a_conflict(deps: services.Deps, bob: Partner) -> None:
    await integrations.uninstall(deps, bob.installation_id)
    with pytest.raises(Conflict):
        await integrations.uninstall(deps, bob.installation_id)


# --- caps -----------------------------------------------------------------------------------------


@pytest.fixture
async def capped(
    store: Any, clock: FakeClock, deps: services.Deps
) -> AsyncIterator[tuple[services.Deps, httpx.AsyncClient]]:
    """An app whose Deps allow 3 active tokens per installation and 5 per environment."""
    capped_deps = services.Deps(
        store=store,
        peppers=deps.peppers,
        clock=clock,
        token_cap_per_installation=3,
        token_cap_per_environment=5,
    )
    transport = httpx.ASGITransport(app=create_app(capped_deps, WebOptions()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as capped_client:
        yield capped_deps, capped_client


async def test_the_installation_cap_refuses_the_next_create_with_conflict_naming_the_limit(
    capped: tuple[services.Deps, httpx.AsyncClient], bob: Partner
) -> None:
    _, client = capped
    made = [await create(client, bob.auth) for _ in range(3)]
    err = error(await client.post(LIST, json={"name": "fourth"}, headers=bob.auth), 409, "conflict", LIST)
    assert "installation" in err["detail"]
    assert "(3)" in err["detail"]
    assert len(await listed(client, bob.auth)) == 3
    ok(await revoke(client, bob.auth, made[0]["id"]), ONE)  # revoked tokens do not count
    await create(client, bob.auth)


async def test_the_environment_cap_counts_every_creator(
    capped: tuple[services.Deps, httpx.AsyncClient], alice: Member, bob: Partner
) -> None:
    capped_deps, client = capped
    other = await install(capped_deps, bob.integration_id, alice.account_id)
    for _ in range(3):
        await create(client, bob.auth)
    await token_services.create_token(
        capped_deps,
        TokenScope(alice.account_id, SANDBOX),
        name="From the CLI",
        description=None,
        created_by=Creator(CreatorKind.CLI, "alice"),
    )
    await create(client, other.auth)  # the fifth
    err = error(await client.post(LIST, json={"name": "sixth"}, headers=other.auth), 409, "conflict", LIST)
    assert "environment" in err["detail"]
    assert "(5)" in err["detail"]
    # the live environment has its own count
    bob_live = await install(capped_deps, bob.integration_id, alice.account_id, environment=LIVE)
    await create(client, bob_live.auth)


# --- events ---------------------------------------------------------------------------------------


async def test_create_and_revoke_write_events_with_the_entity_and_the_owning_installation(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner, clock: FakeClock
) -> None:
    token = await create(client, bob.auth)
    clock.advance(seconds=30)
    revoked = ok(await revoke(client, bob.auth, token["id"]), ONE)["data"]
    ok(await revoke(client, bob.auth, token["id"]), ONE)  # a no-op writes no event
    await general_availability(deps)
    merchants = await create(client, alice.auth())

    async with deps.store.read() as tx:
        events = [
            e for e in await tx.list_events(alice.account_id, SANDBOX) if e.type.startswith("client_token.")
        ]
    assert [(e.type, e.data, e.installation_id) for e in events] == [
        (EventType.CLIENT_TOKEN_CREATED, token, bob.installation_id),
        (EventType.CLIENT_TOKEN_REVOKED, revoked, bob.installation_id),
        (EventType.CLIENT_TOKEN_CREATED, merchants, None),
    ]
    assert events[1].occurred_at - events[0].occurred_at == timedelta(seconds=30)
    assert all(e.account_id == alice.account_id and e.environment is SANDBOX for e in events)
    for event in events:
        spec.validate_component("client_token", event.data)


async def test_a_refused_create_writes_no_event(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    error(await client.post(LIST, json={"name": ""}, headers=bob.auth), 400, "invalid_field", LIST)
    async with deps.store.read() as tx:
        events = await tx.list_events(alice.account_id, SANDBOX)
    assert [e for e in events if e.type.startswith("client_token.")] == []


# --- concurrency (PostgreSQL: real parallel transactions) -----------------------------------------


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_fifty_parallel_creates_make_fifty_tokens_and_fifty_events(
    deps: services.Deps, client: httpx.AsyncClient, alice: Member, bob: Partner
) -> None:
    responses = await asyncio.gather(
        *(client.post(LIST, json={"name": f"Parallel {i}"}, headers=bob.auth) for i in range(50))
    )
    assert [r.status_code for r in responses] == [201] * 50, [
        r.text for r in responses if r.status_code != 201
    ]
    tokens = [r.json()["data"] for r in responses]
    assert len({t["id"] for t in tokens}) == len({t["token"] for t in tokens}) == 50
    assert sorted(await listed(client, bob.auth)) == sorted(t["id"] for t in tokens)
    async with deps.store.read() as tx:
        events = await tx.list_events(alice.account_id, SANDBOX)
    created = [e for e in events if e.type is EventType.CLIENT_TOKEN_CREATED]
    assert sorted(e.data["id"] for e in created) == sorted(t["id"] for t in tokens)


@pytest.mark.parametrize("database", ["postgres"], indirect=True)
async def test_creates_racing_the_cap_never_exceed_it(
    store: Any, clock: FakeClock, deps: services.Deps, alice: Member, bob: Partner
) -> None:
    capped_deps = services.Deps(store=store, peppers=deps.peppers, clock=clock, token_cap_per_installation=10)
    transport = httpx.ASGITransport(app=create_app(capped_deps, WebOptions()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        responses = await asyncio.gather(
            *(client.post(LIST, json={"name": f"Racing {i}"}, headers=bob.auth) for i in range(30))
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 10 + [409] * 20
        assert len(await listed(client, bob.auth)) == 10
    async with deps.store.read() as tx:
        events = await tx.list_events(alice.account_id, SANDBOX)
    assert len([e for e in events if e.type is EventType.CLIENT_TOKEN_CREATED]) == 10
