"""Webhooks over HTTP (``/notification-settings``, ``/notifications``), through the real ASGI app on
both stores, and the delivery worker's queue at the service level (claim, record_attempt).

The cast: **alice** owns account A (merchant keys with every permission, sandbox and live); **bob**
and **dave** are partner integrations installed in alice's sandbox with the webhook and client-token
permissions; **charlie** owns account B. Every response body is checked against Paddle's spec subset
(``tests/spec.py``), except where a keyhouse extension (``notification_setting.disabled``) is not in
Paddle's catalogue. No HTTP leaves the process: attempts are recorded with a hand-made ``Outcome``.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind
from keyhouse.domain.errors import NotificationMaximumActiveSettingsReached
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.notifications import (
    MAX_ACTIVE_SETTINGS,
    Notification,
    NotificationSetting,
    NotificationStatus,
    Outcome,
)
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339
from keyhouse.services import client_tokens as token_services
from keyhouse.services import events, integrations
from keyhouse.services import notifications as service
from keyhouse.services.client_tokens import TokenScope
from tests import spec
from tests.conftest import FakeClock, Member, make_member

SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
SETTINGS, SETTING = "/notification-settings", "/notification-settings/{notification_setting_id}"
NOTIFICATIONS, NOTIFICATION = "/notifications", "/notifications/{notification_id}"
LOGS, REPLAY = "/notifications/{notification_id}/logs", "/notifications/{notification_id}/replay"
SETTING_ID = re.compile(r"ntfset_[a-z\d]{26}")
NOTIFICATION_ID = re.compile(r"ntf_[a-z\d]{26}")
SECRET = re.compile(r"^pdl_ntfset_[a-zA-Z0-9]{26}_[a-zA-Z0-9]{32}$")
NOT_PERMITTED = "You aren't permitted to perform this request. The API key lacks the {} permission."
HOOK = "https://hooks.example.com/paddle"
TOKEN_EVENTS = ["client_token.created", "client_token.revoked"]
PARTNER_PERMISSIONS = frozenset(
    {
        Permission.CLIENT_TOKEN_READ,
        Permission.CLIENT_TOKEN_WRITE,
        Permission.NOTIFICATION_READ,
        Permission.NOTIFICATION_WRITE,
        Permission.NOTIFICATION_SETTING_READ,
        Permission.NOTIFICATION_SETTING_WRITE,
    }
)
LEASE = timedelta(seconds=30)


# --- the cast -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Partner:
    """One installation of a partner integration in alice's sandbox and the key it was given."""

    installation_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    @property
    def creator(self) -> Creator:
        return Creator(CreatorKind.INSTALLATION, self.installation_id)


async def install(deps: services.Deps, alice: Member, name: str) -> Partner:
    integration = await integrations.register_integration(deps, name, early_access=True, actor="test")
    installation, _key, plaintext = await integrations.install(
        deps,
        account_id=alice.account_id,
        environment=SANDBOX,
        integration_id=integration.id,
        permissions=PARTNER_PERMISSIONS,
    )
    return Partner(installation.id, plaintext)


@pytest.fixture
async def bob(deps: services.Deps, alice: Member) -> Partner:
    return await install(deps, alice, "Bob's paywalls")


@pytest.fixture
async def dave(deps: services.Deps, alice: Member) -> Partner:
    return await install(deps, alice, "Dave's analytics")


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


def error(
    response: httpx.Response, status: int, code: str, path: str, group: str = "shared"
) -> dict[str, Any]:
    """The ``error`` object of a refusal in Paddle's full envelope."""
    assert response.status_code == status, response.text
    err: dict[str, Any] = checked(response, path)["error"]
    assert (err["type"], err["code"]) == ("request_error", code)
    assert err["detail"]
    assert err["documentation_url"] == f"https://developer.paddle.com/v1/errors/{group}/{code}"
    return err


def field_errors(err: dict[str, Any]) -> dict[str, str]:
    return {e["field"]: e["message"] for e in err["errors"]}


def setting_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "description": "Token audit",
        "type": "url",
        "destination": HOOK,
        "subscribed_events": TOKEN_EVENTS,
    }
    return body | overrides


async def create_setting(client: httpx.AsyncClient, auth: dict[str, str], **overrides: Any) -> dict[str, Any]:
    """POST a destination (alice's token hook unless overridden); it must be created."""
    response = await client.post(SETTINGS, json=setting_body(**overrides), headers=auth)
    data: dict[str, Any] = ok(response, SETTINGS, 201)["data"]
    return data


async def get_setting(client: httpx.AsyncClient, auth: dict[str, str], setting_id: str) -> dict[str, Any]:
    data: dict[str, Any] = ok(await client.get(f"{SETTINGS}/{setting_id}", headers=auth), SETTING)["data"]
    return data


async def list_notifications(
    client: httpx.AsyncClient, auth: dict[str, str], **params: str
) -> list[dict[str, Any]]:
    response = await client.get(NOTIFICATIONS, params={"per_page": "200", **params}, headers=auth)
    data: list[dict[str, Any]] = ok(response, NOTIFICATIONS)["data"]
    return data


async def get_notification(
    client: httpx.AsyncClient, auth: dict[str, str], notification_id: str
) -> dict[str, Any]:
    response = await client.get(f"{NOTIFICATIONS}/{notification_id}", headers=auth)
    data: dict[str, Any] = ok(response, NOTIFICATION)["data"]
    return data


async def make_token(
    deps: services.Deps, alice: Member, partner: Partner | None = None, name: str = "Pricing page"
) -> ClientToken:
    """A client-side token in alice's sandbox, by alice at the CLI or by a partner."""
    if partner is None:
        scope = TokenScope(alice.account_id, SANDBOX)
        creator = Creator(CreatorKind.CLI, "alice")
    else:
        scope = TokenScope(alice.account_id, SANDBOX, partner.installation_id)
        creator = partner.creator
    return await token_services.create_token(deps, scope, name=name, description=None, created_by=creator)


async def revoke_token(deps: services.Deps, alice: Member, token: ClientToken) -> None:
    await token_services.revoke_token(deps, TokenScope(alice.account_id, SANDBOX), token.id)


async def attempt(
    deps: services.Deps, outcome: Outcome, owner: str = "worker-1"
) -> list[Notification | None]:
    """One worker round: claim what is due, record ``outcome`` for each."""
    claimed = await service.claim(deps, owner, 50, LEASE)
    return [await service.record_attempt(deps, n, s, owner, outcome, jitter=0.5) for n, s in claimed]


OK = Outcome(200, "text/plain", "ok")
BROKEN = Outcome(500, "text/html", "<h1>Internal Server Error</h1>")


# --- create ---------------------------------------------------------------------------------------


async def test_creating_a_setting_is_201_with_the_secret_and_paddles_defaults(
    client: httpx.AsyncClient, alice: Member
) -> None:
    data = await create_setting(client, alice.auth())
    assert SETTING_ID.fullmatch(data["id"])
    assert SECRET.fullmatch(data["endpoint_secret_key"])
    assert data["endpoint_secret_key"].startswith("pdl_ntfset_" + data["id"].removeprefix("ntfset_"))
    assert (data["description"], data["type"], data["destination"]) == ("Token audit", "url", HOOK)
    assert data["active"] is True
    assert data["api_version"] == 1
    assert data["traffic_source"] == "platform"
    assert data["include_sensitive_fields"] is False
    assert [e["name"] for e in data["subscribed_events"]] == TOKEN_EVENTS
    assert all(
        set(e) == {"name", "description", "group", "available_versions"} and e["available_versions"] == [1]
        for e in data["subscribed_events"]
    )
    # the secret is retrievable: signing needs it, and Paddle's GET shows it too
    assert await get_setting(client, alice.auth(), data["id"]) == data


async def test_create_takes_every_optional_field(client: httpx.AsyncClient, alice: Member) -> None:
    data = await create_setting(
        client, alice.auth(), api_version=1, include_sensitive_fields=True, traffic_source="all"
    )
    assert (data["api_version"], data["include_sensitive_fields"], data["traffic_source"]) == (1, True, "all")


async def test_a_live_setting_may_point_at_a_public_https_url(
    client: httpx.AsyncClient, alice: Member
) -> None:
    data = await create_setting(client, alice.auth(LIVE))
    assert data["destination"] == HOOK
    # live and sandbox settings are apart
    assert await get_setting(client, alice.auth(LIVE), data["id"])
    error(await client.get(f"{SETTINGS}/{data['id']}", headers=alice.auth()), 404, "not_found", SETTING)


async def test_a_sandbox_setting_may_point_at_localhost(client: httpx.AsyncClient, alice: Member) -> None:
    data = await create_setting(client, alice.auth(), destination="http://localhost:8080/webhooks")
    assert data["destination"] == "http://localhost:8080/webhooks"


@pytest.mark.parametrize(
    ("environment", "destination"),
    [
        (LIVE, "http://hooks.example.com/paddle"),
        (LIVE, "https://10.0.0.1/hook"),
        (LIVE, "https://169.254.169.254/latest/meta-data"),
        (LIVE, "http://localhost:8080/webhooks"),
        (LIVE, "https://metadata.google.internal/"),
        (SANDBOX, "http://192.168.1.20/hook"),
        (SANDBOX, "not a url"),
        (SANDBOX, "ftp://hooks.example.com/"),
        (SANDBOX, "https://user:pass@hooks.example.com/"),
        (SANDBOX, ""),
    ],
)
async def test_an_unusable_destination_is_400_url_notification_setting_incorrect(
    client: httpx.AsyncClient, alice: Member, environment: Environment, destination: str
) -> None:
    response = await client.post(
        SETTINGS, json=setting_body(destination=destination), headers=alice.auth(environment)
    )
    err = error(response, 400, "url_notification_setting_incorrect", SETTINGS, group="notifications")
    assert list(field_errors(err)) == ["destination"]
    body = ok(await client.get(SETTINGS, headers=alice.auth(environment)), SETTINGS)
    assert body["data"] == []


#: (case, body, the fields the refusal names)
BAD_CREATE: list[tuple[str, dict[str, Any], list[str]]] = [
    ("unknown event type", setting_body(subscribed_events=["transaction.billed"]), ["subscribed_events"]),
    ("events not a list", setting_body(subscribed_events="client_token.created"), ["subscribed_events"]),
    ("email type", setting_body(type="email", destination="ops@example.com"), ["type"]),
    ("other type", setting_body(type="sms"), ["type"]),
    ("empty description", setting_body(description=""), ["description"]),
    ("501-char description", setting_body(description="d" * 501), ["description"]),
    ("api_version 2", setting_body(api_version=2), ["api_version"]),
    ("traffic_source bad", setting_body(traffic_source="real"), ["traffic_source"]),
    (
        "include_sensitive_fields bad",
        setting_body(include_sensitive_fields="no"),
        ["include_sensitive_fields"],
    ),
    ("unknown field", setting_body(colour="blue"), ["colour"]),
    ("active is read-only on create", setting_body(active=False), ["active"]),
    ("secret is read-only", setting_body(endpoint_secret_key="pdl_ntfset_x"), ["endpoint_secret_key"]),
    ("missing everything", {}, ["type", "description", "destination", "subscribed_events"]),
    (
        "missing subscribed_events",
        {"description": "x", "type": "url", "destination": HOOK},
        ["subscribed_events"],
    ),
]


@pytest.mark.parametrize(("body", "fields"), [c[1:] for c in BAD_CREATE], ids=[c[0] for c in BAD_CREATE])
async def test_bad_input_on_create_is_400_invalid_field_naming_the_fields(
    client: httpx.AsyncClient, alice: Member, body: dict[str, Any], fields: list[str]
) -> None:
    err = error(await client.post(SETTINGS, json=body, headers=alice.auth()), 400, "invalid_field", SETTINGS)
    assert sorted(field_errors(err)) == sorted(fields)


@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"[]", {"Content-Type": "application/json"}),
        (b"{", {"Content-Type": "application/json"}),
        (b"{}", {"Content-Type": "text/plain"}),
    ],
)
async def test_a_body_that_is_not_a_json_object_is_400_bad_request(
    client: httpx.AsyncClient, alice: Member, content: bytes, headers: dict[str, str]
) -> None:
    response = await client.post(SETTINGS, content=content, headers={**alice.auth(), **headers})
    error(response, 400, "bad_request", SETTINGS)


# --- list, get ------------------------------------------------------------------------------------


async def test_the_list_pages_200_by_default_and_filters_by_active(
    client: httpx.AsyncClient, alice: Member
) -> None:
    first = await create_setting(client, alice.auth(), description="one")
    second = await create_setting(client, alice.auth(), description="two")
    third = await create_setting(client, alice.auth(), description="three")
    response = await client.patch(f"{SETTINGS}/{second['id']}", json={"active": False}, headers=alice.auth())
    ok(response, SETTING)

    body = ok(await client.get(SETTINGS, headers=alice.auth()), SETTINGS)
    assert body["meta"]["pagination"]["per_page"] == 200
    assert body["meta"]["pagination"]["has_more"] is False
    assert {s["id"] for s in body["data"]} == {first["id"], second["id"], third["id"]}
    assert all(SECRET.fullmatch(s["endpoint_secret_key"]) for s in body["data"])

    active = ok(await client.get(SETTINGS, params={"active": "true"}, headers=alice.auth()), SETTINGS)
    assert {s["id"] for s in active["data"]} == {first["id"], third["id"]}
    inactive = ok(await client.get(SETTINGS, params={"active": "false"}, headers=alice.auth()), SETTINGS)
    assert [s["id"] for s in inactive["data"]] == [second["id"]]

    err = error(
        await client.get(SETTINGS, params={"active": "maybe"}, headers=alice.auth()),
        400,
        "invalid_field",
        SETTINGS,
    )
    assert list(field_errors(err)) == ["active"]


async def test_the_list_filters_by_traffic_source(client: httpx.AsyncClient, alice: Member) -> None:
    # Paddle's list takes ``traffic_source`` (spec: traffic_source_query); ignoring it would hand a
    # client filtering for simulation destinations its platform ones too.
    platform = await create_setting(client, alice.auth())
    simulation = await create_setting(client, alice.auth(), traffic_source="simulation")
    response = await client.get(SETTINGS, params={"traffic_source": "simulation"}, headers=alice.auth())
    assert [s["id"] for s in ok(response, SETTINGS)["data"]] == [simulation["id"]]
    response = await client.get(SETTINGS, params={"traffic_source": "platform"}, headers=alice.auth())
    assert [s["id"] for s in ok(response, SETTINGS)["data"]] == [platform["id"]]


async def test_the_list_pages_with_per_page_and_next(client: httpx.AsyncClient, alice: Member) -> None:
    made = [(await create_setting(client, alice.auth(), description=f"hook {n}"))["id"] for n in range(5)]
    url = f"{SETTINGS}?per_page=2"
    seen: list[str] = []
    while True:
        body = ok(await client.get(url, headers=alice.auth()), SETTINGS)
        assert len(body["data"]) <= 2
        assert body["meta"]["pagination"]["per_page"] == 2
        assert body["meta"]["pagination"]["estimated_total"] == 5
        seen += [s["id"] for s in body["data"]]
        if not body["meta"]["pagination"]["has_more"]:
            break
        url = body["meta"]["pagination"]["next"].removeprefix("http://testserver")
    assert sorted(seen) == sorted(made)
    assert len(seen) == 5


@pytest.mark.parametrize(
    "setting_id", ["ntfset_01gkpjp8bkm3tm53kdgkx6sms7", "nope", "ntf_01hv97zsr34dfd2e6wd9cswxmr"]
)
async def test_an_unknown_setting_is_404_not_found(
    client: httpx.AsyncClient, alice: Member, setting_id: str
) -> None:
    for response in (
        await client.get(f"{SETTINGS}/{setting_id}", headers=alice.auth()),
        await client.patch(f"{SETTINGS}/{setting_id}", json={"active": False}, headers=alice.auth()),
        await client.delete(f"{SETTINGS}/{setting_id}", headers=alice.auth()),
    ):
        error(response, 404, "not_found", SETTING)


# --- update, delete -------------------------------------------------------------------------------


async def test_patch_replaces_subscribed_events_and_keeps_the_rest(
    client: httpx.AsyncClient, alice: Member
) -> None:
    made = await create_setting(client, alice.auth())
    response = await client.patch(
        f"{SETTINGS}/{made['id']}", json={"subscribed_events": ["api_key.revoked"]}, headers=alice.auth()
    )
    data = ok(response, SETTING)["data"]
    assert [e["name"] for e in data["subscribed_events"]] == ["api_key.revoked"]
    assert data == {**made, "subscribed_events": data["subscribed_events"]}
    assert await get_setting(client, alice.auth(), made["id"]) == data


async def test_patch_changes_the_other_fields(client: httpx.AsyncClient, alice: Member) -> None:
    made = await create_setting(client, alice.auth())
    changes = {
        "description": "Renamed",
        "destination": "https://other.example.com/hook",
        "active": False,
        "include_sensitive_fields": True,
        "traffic_source": "all",
        "type": "url",  # the same type is allowed: only a change is refused
    }
    data = ok(await client.patch(f"{SETTINGS}/{made['id']}", json=changes, headers=alice.auth()), SETTING)[
        "data"
    ]
    assert (data["description"], data["destination"], data["active"]) == (
        "Renamed",
        "https://other.example.com/hook",
        False,
    )
    assert (data["include_sensitive_fields"], data["traffic_source"]) == (True, "all")
    assert data["endpoint_secret_key"] == made["endpoint_secret_key"]
    data = ok(
        await client.patch(f"{SETTINGS}/{made['id']}", json={"active": True}, headers=alice.auth()), SETTING
    )["data"]
    assert data["active"] is True


@pytest.mark.parametrize(
    ("changes", "code", "field"),
    [
        ({"type": "email"}, "invalid_field", "type"),
        ({"subscribed_events": ["nope.created"]}, "invalid_field", "subscribed_events"),
        ({"active": "yes"}, "invalid_field", "active"),
        ({"endpoint_secret_key": "pdl_ntfset_x"}, "invalid_field", "endpoint_secret_key"),
        ({"destination": "http://hooks.example.com/"}, "url_notification_setting_incorrect", "destination"),
        ({"destination": "http://10.0.0.1/"}, "url_notification_setting_incorrect", "destination"),
    ],
)
async def test_a_bad_patch_is_refused_and_changes_nothing(
    client: httpx.AsyncClient, alice: Member, changes: dict[str, Any], code: str, field: str
) -> None:
    made = await create_setting(client, alice.auth())
    response = await client.patch(f"{SETTINGS}/{made['id']}", json=changes, headers=alice.auth())
    group = "notifications" if code.startswith("url_") else "shared"
    err = error(response, 400, code, SETTING, group=group)
    assert list(field_errors(err)) == [field]
    assert await get_setting(client, alice.auth(), made["id"]) == made


async def test_a_live_setting_cannot_be_moved_to_localhost(client: httpx.AsyncClient, alice: Member) -> None:
    made = await create_setting(client, alice.auth(LIVE))
    response = await client.patch(
        f"{SETTINGS}/{made['id']}", json={"destination": "http://localhost:8080/"}, headers=alice.auth(LIVE)
    )
    error(response, 400, "url_notification_setting_incorrect", SETTING, group="notifications")


async def test_delete_is_204_then_the_setting_and_its_notifications_are_gone(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    doomed = await create_setting(client, alice.auth())
    kept = await create_setting(client, alice.auth())
    await make_token(deps, alice)
    before = await list_notifications(client, alice.auth())
    assert {n["notification_setting_id"] for n in before} == {doomed["id"], kept["id"]}
    doomed_notification = next(n["id"] for n in before if n["notification_setting_id"] == doomed["id"])

    response = await client.delete(f"{SETTINGS}/{doomed['id']}", headers=alice.auth())
    assert response.status_code == 204, response.text
    assert response.content == b""

    error(await client.get(f"{SETTINGS}/{doomed['id']}", headers=alice.auth()), 404, "not_found", SETTING)
    error(await client.delete(f"{SETTINGS}/{doomed['id']}", headers=alice.auth()), 404, "not_found", SETTING)
    response = await client.get(f"{NOTIFICATIONS}/{doomed_notification}", headers=alice.auth())
    error(response, 404, "not_found", NOTIFICATION)
    after = await list_notifications(client, alice.auth())
    assert [n["notification_setting_id"] for n in after] == [kept["id"]]


# --- permissions ----------------------------------------------------------------------------------

ROUTES: list[tuple[str, str, Permission]] = [
    ("GET", SETTINGS, Permission.NOTIFICATION_SETTING_READ),
    ("POST", SETTINGS, Permission.NOTIFICATION_SETTING_WRITE),
    ("GET", SETTING, Permission.NOTIFICATION_SETTING_READ),
    ("PATCH", SETTING, Permission.NOTIFICATION_SETTING_WRITE),
    ("DELETE", SETTING, Permission.NOTIFICATION_SETTING_WRITE),
    ("GET", NOTIFICATIONS, Permission.NOTIFICATION_READ),
    ("GET", NOTIFICATION, Permission.NOTIFICATION_READ),
    ("GET", LOGS, Permission.NOTIFICATION_READ),
    ("POST", REPLAY, Permission.NOTIFICATION_WRITE),
]


def concrete(path: str) -> str:
    return path.replace("{notification_setting_id}", "ntfset_01gkpjp8bkm3tm53kdgkx6sms7").replace(
        "{notification_id}", "ntf_01hv97zsr34dfd2e6wd9cswxmr"
    )


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
async def test_each_route_is_403_forbidden_without_its_permission(
    client: httpx.AsyncClient, deps: services.Deps, method: str, path: str, needed: Permission
) -> None:
    # every permission except the one needed and the write that implies it
    write = Permission(needed.value.replace(".read", ".write"))
    member = await make_member(deps, "Lacking", frozenset(Permission) - {needed, write})
    body = setting_body() if method in ("POST", "PATCH") else None
    response = await client.request(method, concrete(path), json=body, headers=member.auth())
    err = error(response, 403, "forbidden", path)
    assert err["detail"] == NOT_PERMITTED.format(needed.value)


@pytest.mark.parametrize(("method", "path", "needed"), ROUTES)
async def test_each_route_passes_with_its_permission_alone(
    client: httpx.AsyncClient, deps: services.Deps, method: str, path: str, needed: Permission
) -> None:
    member = await make_member(deps, "Exact", frozenset({needed}))
    body = setting_body() if method in ("POST", "PATCH") else None
    response = await client.request(method, concrete(path), json=body, headers=member.auth())
    assert response.status_code in (200, 201, 404), response.text  # the example ids do not exist


async def test_write_includes_read(client: httpx.AsyncClient, deps: services.Deps) -> None:
    member = await make_member(
        deps, "Writer", frozenset({Permission.NOTIFICATION_SETTING_WRITE, Permission.NOTIFICATION_WRITE})
    )
    ok(await client.get(SETTINGS, headers=member.auth()), SETTINGS)
    ok(await client.get(NOTIFICATIONS, headers=member.auth()), NOTIFICATIONS)


async def test_without_credentials_every_route_is_403_authentication_missing(
    client: httpx.AsyncClient,
) -> None:
    for method, path, _ in ROUTES:
        response = await client.request(method, concrete(path))
        error(response, 403, "authentication_missing", path)


# --- ownership ------------------------------------------------------------------------------------


async def test_a_partner_sees_only_its_own_settings(
    client: httpx.AsyncClient, alice: Member, charlie: Member, bob: Partner, dave: Partner
) -> None:
    mine = await create_setting(client, bob.auth, description="Bob's hook")
    daves = await create_setting(client, dave.auth, description="Dave's hook")
    merchants = await create_setting(client, alice.auth(), description="Alice's hook")
    charlies = await create_setting(client, charlie.auth(), description="Charlie's hook")

    listed = ok(await client.get(SETTINGS, headers=bob.auth), SETTINGS)["data"]
    assert [s["id"] for s in listed] == [mine["id"]]
    for other in (daves, merchants, charlies):
        path = f"{SETTINGS}/{other['id']}"
        error(await client.get(path, headers=bob.auth), 404, "not_found", SETTING)
        error(await client.patch(path, json={"active": False}, headers=bob.auth), 404, "not_found", SETTING)
        error(await client.delete(path, headers=bob.auth), 404, "not_found", SETTING)

    # the merchant sees every setting of its environment, the partners' too; charlie sees none of them
    everything = ok(await client.get(SETTINGS, headers=alice.auth()), SETTINGS)["data"]
    assert {s["id"] for s in everything} == {mine["id"], daves["id"], merchants["id"]}
    error(await client.get(f"{SETTINGS}/{mine['id']}", headers=charlie.auth()), 404, "not_found", SETTING)
    assert (await get_setting(client, alice.auth(), daves["id"]))["active"] is True


async def test_a_partners_setting_receives_only_events_about_its_installations_tokens(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, bob: Partner, dave: Partner
) -> None:
    bobs = await create_setting(client, bob.auth)
    daves = await create_setting(client, dave.auth)
    merchants = await create_setting(client, alice.auth())
    await make_token(deps, alice, bob, "Bob's page")
    await make_token(deps, alice, dave, "Dave's page")
    await make_token(deps, alice, None, "Alice's page")

    def names(found: list[dict[str, Any]], setting: dict[str, Any]) -> list[str]:
        return sorted(
            n["payload"]["data"]["name"] for n in found if n["notification_setting_id"] == setting["id"]
        )

    everything = await list_notifications(client, alice.auth())
    assert names(everything, merchants) == ["Alice's page", "Bob's page", "Dave's page"]
    assert names(everything, bobs) == ["Bob's page"]
    assert names(everything, daves) == ["Dave's page"]

    bobs_view = await list_notifications(client, bob.auth)
    assert [(n["notification_setting_id"], n["payload"]["data"]["name"]) for n in bobs_view] == [
        (bobs["id"], "Bob's page")
    ]
    for other in everything:
        if other["notification_setting_id"] == bobs["id"]:
            continue
        error(
            await client.get(f"{NOTIFICATIONS}/{other['id']}", headers=bob.auth),
            404,
            "not_found",
            NOTIFICATION,
        )
        error(
            await client.get(f"{NOTIFICATIONS}/{other['id']}/logs", headers=bob.auth), 404, "not_found", LOGS
        )
        error(
            await client.post(f"{NOTIFICATIONS}/{other['id']}/replay", headers=bob.auth),
            404,
            "not_found",
            REPLAY,
        )


async def test_another_account_never_sees_alices_notifications(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, charlie: Member
) -> None:
    await create_setting(client, alice.auth())
    await create_setting(client, charlie.auth())
    await make_token(deps, alice)
    [notification] = await list_notifications(client, alice.auth())
    assert await list_notifications(client, charlie.auth()) == []
    response = await client.get(f"{NOTIFICATIONS}/{notification['id']}", headers=charlie.auth())
    error(response, 404, "not_found", NOTIFICATION)


async def test_uninstalling_deactivates_the_partners_settings_and_stops_its_deliveries(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, bob: Partner
) -> None:
    bobs = await create_setting(client, bob.auth)
    merchants = await create_setting(client, alice.auth())
    token = await make_token(deps, alice, bob, "Bob's page")
    pending = await list_notifications(client, alice.auth(), notification_setting_id=bobs["id"])
    assert [n["status"] for n in pending] == ["not_attempted"]

    await integrations.uninstall(deps, bob.installation_id)

    assert (await get_setting(client, alice.auth(), bobs["id"]))["active"] is False
    assert (await get_setting(client, alice.auth(), merchants["id"]))["active"] is True
    claimed = await service.claim(deps, "worker-1", 50, LEASE)
    assert {n.setting_id for n, _ in claimed} == {merchants["id"]}
    # the merchant hears about the revocation of bob's token; bob's switched-off hook does not
    merchant_types = sorted(n.type for n, _ in claimed)
    assert merchant_types == ["client_token.created", "client_token.revoked"]
    assert all(n.payload["data"]["id"] == token.id for n, _ in claimed)
    still = await list_notifications(client, alice.auth(), notification_setting_id=bobs["id"])
    assert [n["status"] for n in still] == ["not_attempted"]


# --- fan-out --------------------------------------------------------------------------------------


async def test_each_token_event_makes_one_notification_per_subscribed_active_setting(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    both = await create_setting(client, alice.auth(), description="both")
    created_only = await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    keys_only = await create_setting(client, alice.auth(), subscribed_events=["api_key.created"])
    off = await create_setting(client, alice.auth())
    ok(await client.patch(f"{SETTINGS}/{off['id']}", json={"active": False}, headers=alice.auth()), SETTING)
    simulation = await create_setting(client, alice.auth(), traffic_source="simulation")
    live = await create_setting(client, alice.auth(LIVE))

    token = await make_token(deps, alice)
    clock.advance(minutes=1)
    await revoke_token(deps, alice, token)

    found = await list_notifications(client, alice.auth(), order_by="id[ASC]")
    assert sorted((n["notification_setting_id"], n["type"]) for n in found) == sorted(
        [
            (both["id"], "client_token.created"),
            (both["id"], "client_token.revoked"),
            (created_only["id"], "client_token.created"),
        ]
    )
    untouched = {keys_only["id"], off["id"], simulation["id"], live["id"]}
    assert not untouched & {n["notification_setting_id"] for n in found}
    assert await list_notifications(client, alice.auth(LIVE)) == []

    events = ok(await client.get("/events", params={"order_by": "id[ASC]"}, headers=alice.auth()), "/events")
    by_type = {e["event_type"]: e for e in events["data"] if e["event_type"].startswith("client_token.")}
    for notification in found:
        event = by_type[notification["type"]]
        body = notification["payload"]
        assert list(body) == ["event_id", "event_type", "occurred_at", "notification_id", "data"]
        assert body == {**event, "notification_id": notification["id"]}
        assert notification["occurred_at"] == event["occurred_at"]
        assert notification["status"] == "not_attempted"
        assert notification["origin"] == "event"
        assert notification["times_attempted"] == 0
        assert (
            notification["delivered_at"]
            is notification["last_attempt_at"]
            is notification["retry_at"]
            is None
        )
    assert by_type["client_token.revoked"]["occurred_at"] == rfc3339(clock.now)


async def test_an_event_and_its_notifications_commit_or_roll_back_together(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await create_setting(client, alice.auth())
    event = new_event(
        EventType.CLIENT_TOKEN_CREATED,
        {"id": "ctkn_01ghbkd0frb9k95cnhwd1bxpvk", "name": "Pricing page"},
        account_id=alice.account_id,
        environment=SANDBOX,
        installation_id=None,
        now=clock(),
    )

    async def change_that_fails() -> None:
        async with deps.store.transaction() as tx:
            await events.record(tx, event)
            raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError, match="the change failed"):
        await change_that_fails()
    assert await list_notifications(client, alice.auth()) == []

    async with deps.store.transaction() as tx:
        await events.record(tx, event)
    [notification] = await list_notifications(client, alice.auth())
    assert notification["payload"]["event_id"] == event.id


# --- GET /notifications: filters, one, logs -------------------------------------------------------


async def test_notifications_filter_by_setting_status_search_and_time(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    first = await create_setting(client, alice.auth(), description="first")
    second = await create_setting(
        client, alice.auth(), description="second", subscribed_events=["client_token.revoked"]
    )
    start = clock.now
    token = await make_token(deps, alice)  # -> first
    await attempt(deps, OK)  # first's created notification is delivered
    clock.advance(hours=1)
    await revoke_token(deps, alice, token)  # -> first and second
    everything = await list_notifications(client, alice.auth())
    assert len(everything) == 3

    only_second = await list_notifications(client, alice.auth(), notification_setting_id=second["id"])
    assert [n["type"] for n in only_second] == ["client_token.revoked"]
    both = await list_notifications(
        client, alice.auth(), notification_setting_id=f"{first['id']},{second['id']}"
    )
    assert len(both) == 3

    delivered = await list_notifications(client, alice.auth(), status="delivered")
    assert [(n["type"], n["notification_setting_id"]) for n in delivered] == [
        ("client_token.created", first["id"])
    ]
    pending = await list_notifications(client, alice.auth(), status="not_attempted,needs_retry")
    assert len(pending) == 2

    assert len(await list_notifications(client, alice.auth(), search="revoked")) == 2
    one = everything[0]["id"]
    assert [n["id"] for n in await list_notifications(client, alice.auth(), search=one)] == [one]
    assert await list_notifications(client, alice.auth(), search="%") == []
    # LIKE's wildcards are matched literally: "_" must not stand for the "." in "token.created"
    assert await list_notifications(client, alice.auth(), search="token_created") == []

    later = rfc3339(start + timedelta(minutes=30))
    assert len(await list_notifications(client, alice.auth(), **{"from": later})) == 2
    assert [n["type"] for n in await list_notifications(client, alice.auth(), to=later)] == [
        "client_token.created"
    ]
    exactly = rfc3339(start)
    assert len(await list_notifications(client, alice.auth(), **{"from": exactly})) == 3  # inclusive
    assert await list_notifications(client, alice.auth(), to=exactly) == []  # exclusive
    assert len(await list_notifications(client, alice.auth(), **{"from": start.date().isoformat()})) == 3


@pytest.mark.parametrize(
    ("params", "code", "field"),
    [
        ({"from": "yesterday"}, "invalid_time_query_parameter", None),
        ({"to": "2026-13-01T00:00:00Z"}, "invalid_time_query_parameter", None),
        ({"from": "2026-06-01T12:00:00"}, "invalid_time_query_parameter", None),
        ({"status": "lost"}, "invalid_field", "status"),
        ({"status": ","}, "invalid_field", "status"),
        (
            {"notification_setting_id": "ntf_01hv97zsr34dfd2e6wd9cswxmr"},
            "invalid_field",
            "notification_setting_id",
        ),
        ({"search": "s" * 101}, "invalid_field", "search"),
        ({"after": "evt_01hv97zsr34dfd2e6wd9cswxmr"}, "invalid_field", "after"),
    ],
)
async def test_a_bad_notifications_query_is_400(
    client: httpx.AsyncClient, alice: Member, params: dict[str, str], code: str, field: str | None
) -> None:
    err = error(
        await client.get(NOTIFICATIONS, params=params, headers=alice.auth()), 400, code, NOTIFICATIONS
    )
    if code == "invalid_time_query_parameter":
        assert err["detail"] == "Invalid timestamp as a query parameter."
    else:
        assert list(field_errors(err)) == [field]


async def test_a_notification_and_its_logs_show_each_attempt(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    await make_token(deps, alice)
    [failed] = await attempt(deps, BROKEN)
    assert failed is not None
    first_attempt = clock.now
    clock.advance(seconds=61)
    [delivered] = await attempt(deps, OK)
    assert delivered is not None

    data = await get_notification(client, alice.auth(), delivered.id)
    assert data["status"] == "delivered"
    assert data["times_attempted"] == 2
    assert data["delivered_at"] == data["last_attempt_at"] == rfc3339(clock.now)
    assert data["retry_at"] is None

    logs = ok(await client.get(f"{NOTIFICATIONS}/{delivered.id}/logs", headers=alice.auth()), LOGS)
    assert [(log["response_code"], log["response_body"]) for log in logs["data"]] == [
        (200, "ok"),
        (500, "<h1>Internal Server Error</h1>"),
    ]
    assert logs["data"][1]["response_content_type"] == "text/html"
    assert logs["data"][1]["attempted_at"] == rfc3339(first_attempt)
    assert all(log["id"].startswith("ntflog_") for log in logs["data"])
    assert logs["meta"]["pagination"]["estimated_total"] == 2


@pytest.mark.parametrize("notification_id", ["ntf_01hv97zsr34dfd2e6wd9cswxmr", "nope"])
async def test_an_unknown_notification_is_404(
    client: httpx.AsyncClient, alice: Member, notification_id: str
) -> None:
    error(
        await client.get(f"{NOTIFICATIONS}/{notification_id}", headers=alice.auth()),
        404,
        "not_found",
        NOTIFICATION,
    )
    error(
        await client.get(f"{NOTIFICATIONS}/{notification_id}/logs", headers=alice.auth()),
        404,
        "not_found",
        LOGS,
    )
    error(
        await client.post(f"{NOTIFICATIONS}/{notification_id}/replay", headers=alice.auth()),
        404,
        "not_found",
        REPLAY,
    )


# --- replay ---------------------------------------------------------------------------------------


async def test_a_delivered_notification_is_replayed_202_as_a_new_one(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    await make_token(deps, alice)
    [original] = await attempt(deps, OK)
    assert original is not None
    clock.advance(minutes=5)

    response = await client.post(f"{NOTIFICATIONS}/{original.id}/replay", headers=alice.auth())
    body = ok(response, REPLAY, 202)
    assert list(body["data"]) == ["notification_id"]
    fresh_id = body["data"]["notification_id"]
    assert NOTIFICATION_ID.fullmatch(fresh_id)
    assert fresh_id != original.id

    fresh = await get_notification(client, alice.auth(), fresh_id)
    assert (fresh["origin"], fresh["status"], fresh["times_attempted"]) == ("replay", "not_attempted", 0)
    assert fresh["payload"] == {**original.payload, "notification_id": fresh_id}
    assert fresh["notification_setting_id"] == original.setting_id
    assert fresh["occurred_at"] == rfc3339(original.occurred_at)
    again = await get_notification(client, alice.auth(), original.id)
    assert again["replayed_at"] == rfc3339(clock.now)
    assert again["status"] == "delivered"

    # the worker delivers the replay like any other notification
    claimed = await service.claim(deps, "worker-1", 50, LEASE)
    assert [n.id for n, _ in claimed] == [fresh_id]


async def test_only_delivered_or_failed_notifications_of_origin_event_can_be_replayed(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    await make_token(deps, alice)
    [pending] = await list_notifications(client, alice.auth())
    response = await client.post(f"{NOTIFICATIONS}/{pending['id']}/replay", headers=alice.auth())
    error(response, 400, "notification_cannot_replay", REPLAY, group="notifications")

    await attempt(deps, Outcome.no_response("blocked", permanent=True))
    assert (await get_notification(client, alice.auth(), pending["id"]))["status"] == "failed"
    response = await client.post(f"{NOTIFICATIONS}/{pending['id']}/replay", headers=alice.auth())
    replay_id = ok(response, REPLAY, 202)["data"]["notification_id"]

    response = await client.post(f"{NOTIFICATIONS}/{replay_id}/replay", headers=alice.auth())
    error(response, 400, "notification_replay_invalid_origin_type", REPLAY, group="notifications")
    await attempt(deps, OK)
    assert (await get_notification(client, alice.auth(), replay_id))["status"] == "delivered"
    response = await client.post(f"{NOTIFICATIONS}/{replay_id}/replay", headers=alice.auth())
    error(response, 400, "notification_replay_invalid_origin_type", REPLAY, group="notifications")


async def test_a_partner_replays_its_own_notifications(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, bob: Partner
) -> None:
    await create_setting(client, bob.auth)
    await make_token(deps, alice, bob)
    await attempt(deps, OK)
    [mine] = await list_notifications(client, bob.auth)
    response = await client.post(f"{NOTIFICATIONS}/{mine['id']}/replay", headers=bob.auth)
    fresh = ok(response, REPLAY, 202)["data"]["notification_id"]
    assert {n["id"] for n in await list_notifications(client, bob.auth)} == {mine["id"], fresh}


# --- the worker's queue ---------------------------------------------------------------------------


async def one_due(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> tuple[dict[str, Any], ClientToken]:
    setting = await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    return setting, await make_token(deps, alice)


async def test_a_claim_is_a_lease_that_comes_back_when_it_expires(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    setting, _ = await one_due(client, deps, alice)
    [(notification, claimed_setting)] = await service.claim(deps, "worker-1", 10, LEASE)
    assert claimed_setting.id == setting["id"]
    assert claimed_setting.endpoint_secret_key == setting["endpoint_secret_key"]
    assert notification.status is NotificationStatus.NOT_ATTEMPTED

    assert await service.claim(deps, "worker-2", 10, LEASE) == []
    clock.advance(seconds=29)
    assert await service.claim(deps, "worker-2", 10, LEASE) == []
    clock.advance(seconds=2)
    [(again, _)] = await service.claim(deps, "worker-2", 10, LEASE)
    assert again.id == notification.id


async def test_a_worker_that_lost_its_lease_records_nothing(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await one_due(client, deps, alice)
    [(notification, setting)] = await service.claim(deps, "worker-1", 10, LEASE)
    clock.advance(seconds=31)
    [(taken, _)] = await service.claim(deps, "worker-2", 10, LEASE)

    late = await service.record_attempt(deps, notification, setting, "worker-1", OK, jitter=0.5)
    assert late is None
    shown = await get_notification(client, alice.auth(), notification.id)
    assert (shown["status"], shown["times_attempted"], shown["delivered_at"]) == ("not_attempted", 0, None)
    # the attempt did happen, so its log is kept
    logs = ok(await client.get(f"{NOTIFICATIONS}/{notification.id}/logs", headers=alice.auth()), LOGS)["data"]
    assert [log["response_code"] for log in logs] == [200]

    recorded = await service.record_attempt(deps, taken, setting, "worker-2", OK, jitter=0.5)
    assert recorded is not None
    assert recorded.status is NotificationStatus.DELIVERED
    assert (await get_notification(client, alice.auth(), notification.id))["status"] == "delivered"
    # a finished notification is not claimed again, even after its lease would have run out
    clock.advance(hours=1)
    assert await service.claim(deps, "worker-3", 10, LEASE) == []


async def test_a_failed_attempt_is_retried_when_due_then_delivered(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await one_due(client, deps, alice)
    [failed] = await attempt(deps, BROKEN)
    assert failed is not None
    assert failed.status is NotificationStatus.NEEDS_RETRY
    assert failed.retry_at == failed.due_at == clock.now + timedelta(seconds=60)  # sandbox, no jitter at 0.5
    shown = await get_notification(client, alice.auth(), failed.id)
    assert (shown["status"], shown["retry_at"], shown["times_attempted"]) == (
        "needs_retry",
        rfc3339(clock.now + timedelta(seconds=60)),
        1,
    )

    clock.advance(seconds=59)
    assert await service.claim(deps, "worker-1", 10, LEASE) == []  # not due yet
    clock.advance(seconds=1)
    [delivered] = await attempt(deps, OK)
    assert delivered is not None
    assert (delivered.status, delivered.times_attempted, delivered.retry_at) == (
        NotificationStatus.DELIVERED,
        2,
        None,
    )


async def fail_until_exhausted(deps: services.Deps, clock: FakeClock) -> list[Notification | None]:
    """Sandbox: the first attempt and three retries, each failing; returns the last round's results."""
    results: list[Notification | None] = []
    for wait in (60, 180, 540, None):
        results = await attempt(deps, BROKEN)
        assert results
        if wait is not None:
            clock.advance(seconds=wait)
    return results


async def test_a_destination_dead_for_the_whole_window_is_disabled_with_an_event(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    dead = await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    watcher = await create_setting(
        client, alice.auth(), description="watcher", subscribed_events=["notification_setting.disabled"]
    )
    # a delivery before the failures began does not keep the destination alive
    await make_token(deps, alice, name="delivered")
    await attempt(deps, OK)
    clock.advance(minutes=1)
    await make_token(deps, alice, name="doomed")

    [failed] = await fail_until_exhausted(deps, clock)
    assert failed is not None
    assert (failed.status, failed.times_attempted) == (NotificationStatus.FAILED, 4)

    shown = await get_setting(client, alice.auth(), dead["id"])
    assert shown["active"] is False
    events = ok(await client.get("/events", headers=alice.auth()), "/events")["data"]
    [disabled] = [e for e in events if e["event_type"] == "notification_setting.disabled"]
    assert disabled["data"]["id"] == dead["id"]
    assert disabled["data"]["active"] is False
    assert "endpoint_secret_key" not in disabled["data"]
    assert dead["endpoint_secret_key"] not in str(disabled)
    assert disabled["occurred_at"] == rfc3339(clock.now)

    # a destination subscribed to the extension hears about it
    told = await list_notifications(client, alice.auth(), notification_setting_id=watcher["id"])
    assert [n["payload"]["event_id"] for n in told] == [disabled["event_id"]]
    # and the disabled one gets nothing more
    await make_token(deps, alice)
    assert len(await list_notifications(client, alice.auth(), notification_setting_id=dead["id"])) == 2


async def test_a_partner_hears_that_its_own_destination_was_disabled(
    client: httpx.AsyncClient,
    deps: services.Deps,
    alice: Member,
    bob: Partner,
    dave: Partner,
    clock: FakeClock,
) -> None:
    dead = await create_setting(client, bob.auth, subscribed_events=["client_token.created"])
    await make_token(deps, alice, bob)
    await fail_until_exhausted(deps, clock)
    assert (await get_setting(client, bob.auth, dead["id"]))["active"] is False
    bobs = ok(await client.get("/events", headers=bob.auth), "/events")["data"]
    assert [e["data"]["id"] for e in bobs if e["event_type"] == "notification_setting.disabled"] == [
        dead["id"]
    ]
    daves = ok(await client.get("/events", headers=dave.auth), "/events")["data"]
    assert "notification_setting.disabled" not in {e["event_type"] for e in daves}


async def test_a_destination_that_delivered_since_the_failures_began_stays_active(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    setting = await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    await make_token(deps, alice, name="first")
    [(doomed, record_setting)] = await service.claim(deps, "worker-1", 10, LEASE)
    failed = await service.record_attempt(deps, doomed, record_setting, "worker-1", BROKEN, jitter=0.5)
    assert failed is not None
    # another notification to the same destination gets through while the first is retrying
    await make_token(deps, alice, name="second")
    [(other, other_setting)] = await service.claim(deps, "worker-1", 10, LEASE)
    assert other.id != doomed.id
    assert await service.record_attempt(deps, other, other_setting, "worker-1", OK, jitter=0.5) is not None
    for wait in (60, 180, 540):
        clock.advance(seconds=wait)
        [result] = await attempt(deps, BROKEN)
        assert result is not None
        assert result.id == doomed.id
    assert result is not None
    assert result.status is NotificationStatus.FAILED
    assert (await get_setting(client, alice.auth(), setting["id"]))["active"] is True
    events = (await client.get("/events", headers=alice.auth())).json()["data"]
    assert "notification_setting.disabled" not in {e["event_type"] for e in events}


async def test_a_permanent_failure_fails_the_notification_but_keeps_the_destination(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    setting, _ = await one_due(client, deps, alice)
    [failed] = await attempt(deps, Outcome.no_response("blocked: resolves to 10.0.0.1", permanent=True))
    assert failed is not None
    assert (failed.status, failed.times_attempted) == (NotificationStatus.FAILED, 1)
    assert (await get_setting(client, alice.auth(), setting["id"]))["active"] is True
    logs = ok(await client.get(f"{NOTIFICATIONS}/{failed.id}/logs", headers=alice.auth()), LOGS)["data"]
    assert [(log["response_code"], log["response_content_type"]) for log in logs] == [(0, None)]


async def test_an_inactive_destinations_notifications_are_not_claimed_until_it_is_reactivated(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    setting, _ = await one_due(client, deps, alice)
    ok(
        await client.patch(f"{SETTINGS}/{setting['id']}", json={"active": False}, headers=alice.auth()),
        SETTING,
    )
    assert await service.claim(deps, "worker-1", 10, LEASE) == []
    ok(
        await client.patch(f"{SETTINGS}/{setting['id']}", json={"active": True}, headers=alice.auth()),
        SETTING,
    )
    assert len(await service.claim(deps, "worker-1", 10, LEASE)) == 1


async def test_a_claim_takes_at_most_its_limit_oldest_due_first(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    for n in range(3):
        await make_token(deps, alice, name=f"page {n}")
        clock.advance(seconds=1)
    first = await service.claim(deps, "worker-1", 2, LEASE)
    assert [n.payload["data"]["name"] for n, _ in first] == ["page 0", "page 1"]
    rest = await service.claim(deps, "worker-2", 2, LEASE)
    assert [n.payload["data"]["name"] for n, _ in rest] == ["page 2"]


async def test_concurrent_claims_never_lease_one_notification_twice(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, clock: FakeClock
) -> None:
    await create_setting(client, alice.auth(), subscribed_events=["client_token.created"])
    for n in range(12):
        await make_token(deps, alice, name=f"page {n}")
    rounds = await asyncio.gather(*(service.claim(deps, f"worker-{w}", 3, LEASE) for w in range(6)))
    claimed = [n.id for found in rounds for n, _ in found]
    assert len(claimed) == len(set(claimed)) == 12


# --- the cap on active destinations ---------------------------------------------------------------


async def test_concurrent_creators_cannot_pass_the_cap_together(deps: services.Deps, alice: Member) -> None:
    scope = TokenScope(alice.account_id, SANDBOX)
    merchant = Creator(CreatorKind.API_KEY, alice.key_ids[SANDBOX])
    outcomes = await asyncio.gather(
        *(
            service.create_setting(deps, scope, merchant, setting_body(description=f"hook {n}"))
            for n in range(MAX_ACTIVE_SETTINGS + 5)
        ),
        return_exceptions=True,
    )
    made = [o for o in outcomes if isinstance(o, NotificationSetting)]
    refused = [o for o in outcomes if isinstance(o, NotificationMaximumActiveSettingsReached)]
    assert (len(made), len(refused)) == (MAX_ACTIVE_SETTINGS, 5)


async def test_an_environment_holds_at_most_25_active_settings(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, bob: Partner
) -> None:
    assert MAX_ACTIVE_SETTINGS == 25
    merchant = Creator(CreatorKind.API_KEY, alice.key_ids[SANDBOX])
    made: list[NotificationSetting] = [
        await service.create_setting(
            deps, TokenScope(alice.account_id, SANDBOX), merchant, setting_body(description=f"hook {n}")
        )
        for n in range(MAX_ACTIVE_SETTINGS - 1)
    ]
    await create_setting(client, bob.auth)  # a partner's setting counts toward the account's cap

    response = await client.post(SETTINGS, json=setting_body(), headers=alice.auth())
    error(response, 400, "notification_maximum_active_settings_reached", SETTINGS, group="notifications")
    response = await client.post(SETTINGS, json=setting_body(), headers=bob.auth)
    error(response, 400, "notification_maximum_active_settings_reached", SETTINGS, group="notifications")
    # live is another environment, with its own room
    await create_setting(client, alice.auth(LIVE))

    # an inactive setting makes room; reactivating it past the cap is refused
    ok(await client.patch(f"{SETTINGS}/{made[0].id}", json={"active": False}, headers=alice.auth()), SETTING)
    extra = await create_setting(client, alice.auth())
    response = await client.patch(f"{SETTINGS}/{made[0].id}", json={"active": True}, headers=alice.auth())
    error(response, 400, "notification_maximum_active_settings_reached", SETTING, group="notifications")
    assert (await get_setting(client, alice.auth(), made[0].id))["active"] is False
    # a change that leaves an active setting active is never refused by the cap
    response = await client.patch(
        f"{SETTINGS}/{extra['id']}", json={"description": "renamed"}, headers=alice.auth()
    )
    ok(response, SETTING)


# --- retention ---------------------------------------------------------------------------------------


async def test_events_older_than_90_days_go_with_their_notifications_and_logs(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    """The worker's retention job keeps Paddle's 90 days: older events, their notifications and
    their delivery logs are deleted; newer ones stay, and the setting itself is untouched."""
    setting = await create_setting(client, alice.auth())
    old = await make_token(deps, alice, name="Old")
    assert await attempt(deps, OK)  # a delivered notification with one log
    clock.advance(days=60)
    await make_token(deps, alice, name="New")
    clock.advance(days=31)  # the first token's event is now 91 days old, the second's 31
    assert await events.purge(deps) == 3  # alice's two api_key.created and the old token's event
    kept = ok(await client.get("/events", headers=alice.auth()), "/events")["data"]
    assert old.id not in {e["data"]["id"] for e in kept if e["event_type"].startswith("client_token.")}
    assert {e["data"]["name"] for e in kept if e["event_type"] == "client_token.created"} == {"New"}
    [left] = await list_notifications(client, alice.auth())
    assert left["payload"]["data"]["name"] == "New"
    assert (await get_setting(client, alice.auth(), setting["id"]))["active"] is True
    assert await events.purge(deps) == 0
