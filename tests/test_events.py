"""GET /event-types and GET /events: the outbox as the API shows it, ownership applied."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.events import EventType
from keyhouse.domain.permissions import Permission
from keyhouse.services import client_tokens, integrations
from keyhouse.services.client_tokens import TokenScope
from tests import spec
from tests.conftest import Member, make_member

SANDBOX = Environment.SANDBOX
READ_WRITE = frozenset(
    {Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE, Permission.NOTIFICATION_READ}
)


async def partner_key(deps: services.Deps, alice: Member, name: str) -> tuple[str, str]:
    """An allow-listed partner installed in alice's sandbox: (installation id, key plaintext)."""
    integration = await integrations.register_integration(deps, name, early_access=True, actor="test")
    installation, _key, plaintext = await integrations.install(
        deps,
        account_id=alice.account_id,
        environment=SANDBOX,
        integration_id=integration.id,
        permissions=READ_WRITE,
    )
    return installation.id, plaintext


def body(response: httpx.Response, path: str) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    spec.check(response, path)
    assert response.headers["request-id"] == response.json()["meta"]["request_id"]
    data: dict[str, Any] = response.json()
    return data


async def test_event_types_need_no_credentials_and_list_every_type_keyhouse_emits(
    client: httpx.AsyncClient,
) -> None:
    data = body(await client.get("/event-types"), "/event-types")["data"]
    assert [t["name"] for t in data] == [t.value for t in EventType]
    assert all(t["available_versions"] == [1] and t["group"] and t["description"] for t in data)


async def test_events_need_notification_read(client: httpx.AsyncClient, deps: services.Deps) -> None:
    member = await make_member(deps, "Reader-less", frozenset({Permission.PRODUCT_READ}))
    response = await client.get("/events", headers=member.auth())
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert "notification.read" in response.json()["error"]["detail"]


async def test_a_merchant_sees_every_event_of_the_environment_newest_first(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, charlie: Member
) -> None:
    await partner_key(deps, alice, "Bob's paywalls")
    data = body(await client.get("/events", headers=alice.auth()), "/events")
    types = [e["event_type"] for e in data["data"]]
    # alice's two keys (sandbox and live) were created, then the partner's sandbox key: sandbox only
    assert types == ["api_key.created", "api_key.created"]
    assert data["data"][0]["event_id"] > data["data"][1]["event_id"]
    assert all(e["data"]["id"].startswith("apikey_") for e in data["data"])
    assert data["meta"]["pagination"]["estimated_total"] == 2
    # charlie's events never appear in alice's list
    assert not {e["data"]["id"] for e in data["data"]} & set(charlie.key_ids.values())


async def test_a_partner_sees_only_events_about_its_own_installations_entities(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    bob_installation, bob = await partner_key(deps, alice, "Bob's paywalls")
    _dave_installation, dave = await partner_key(deps, alice, "Dave's analytics")
    await client_tokens.create_token(
        deps,
        TokenScope(alice.account_id, SANDBOX, bob_installation),
        name="Bob's page",
        description=None,
        created_by=Creator(CreatorKind.INSTALLATION, bob_installation),
    )
    await client_tokens.create_token(
        deps,
        TokenScope(alice.account_id, SANDBOX),
        name="Merchant's page",
        description=None,
        created_by=Creator(CreatorKind.CLI, "alice"),
    )
    bobs = body(await client.get("/events", headers={"Authorization": f"Bearer {bob}"}), "/events")["data"]
    assert [e["event_type"] for e in bobs] == ["client_token.created", "api_key.created"]
    assert bobs[0]["data"]["name"] == "Bob's page"
    daves = body(await client.get("/events", headers={"Authorization": f"Bearer {dave}"}), "/events")["data"]
    assert [e["event_type"] for e in daves] == ["api_key.created"]


async def test_events_filter_by_type_and_page_with_next(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    scope = TokenScope(alice.account_id, SANDBOX)
    for n in range(5):
        await client_tokens.create_token(
            deps, scope, name=f"page {n}", description=None, created_by=Creator(CreatorKind.CLI, "alice")
        )
    url = "/events?event_type=client_token.created&per_page=2&order_by=id[ASC]"
    seen: list[str] = []
    while True:
        data = body(await client.get(url, headers=alice.auth()), "/events")
        seen += [e["data"]["name"] for e in data["data"]]
        assert all(e["event_type"] == "client_token.created" for e in data["data"])
        if not data["meta"]["pagination"]["has_more"]:
            break
        url = data["meta"]["pagination"]["next"].removeprefix("http://testserver")
    assert seen == [f"page {n}" for n in range(5)]


@pytest.mark.parametrize("value", ["nope", "client_token.created,nope", ",", "event.created"])
async def test_an_unknown_event_type_filter_is_invalid_field(
    client: httpx.AsyncClient, alice: Member, value: str
) -> None:
    response = await client.get("/events", params={"event_type": value}, headers=alice.auth())
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_field"
    assert error["errors"][0]["field"] == "event_type"
