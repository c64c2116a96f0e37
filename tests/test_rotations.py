"""API-key rotation over HTTP on every store (paddle-api.md §2.3): ``POST/GET
/api-keys/{api_key_id}/rotations`` and ``GET .../rotations/{rotation_id}``, through the real ASGI app,
every response checked against Paddle's spec.

The contract: a rotatable key rotates only itself. Both secrets work until the new one is first used;
that use completes the rotation, and the old secret works ``grace_period_seconds`` longer (never past
the key's expiry), after which its refusal says it was replaced. A new rotation cancels a pending one,
whose secret stops working at once. The key keeps its id, name, permissions and expiry, unless the
rotation names a new expiry (applied on completion, with ``api_key.updated``).

Concurrency: simultaneous rotations leave one pending; simultaneous first uses complete once; a
rotation racing a completion (held open by a hand-written fake store) must not undo it. The last
test runs ``keyhouse serve`` as a process under continuous load across a switch of secrets.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import InvalidToken
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.domain.rotations import Rotation, RotationStatus
from keyhouse.domain.times import rfc3339
from keyhouse.services import rotations
from keyhouse.services.rotations import ONLY_ITSELF
from keyhouse.store import Transaction
from keyhouse.web import WebOptions, create_app
from tests import spec
from tests.conftest import FakeClock, Member
from tests.test_api import POSTGRES_STALE_CACHE, add_key, bearer, error, ok

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from keyhouse.store.sql import SqlStore
    from tests.conftest import TestDatabase
    from tests.servers import Keyhouse, Server

pytest_plugins = ["tests.servers"]

SANDBOX = Environment.SANDBOX
MICROSECOND = timedelta(microseconds=1)
KEY = "/api-keys/{api_key_id}"
ROTATIONS = "/api-keys/{api_key_id}/rotations"
ROTATION = "/api-keys/{api_key_id}/rotations/{rotation_id}"
FULL_KEY = re.compile(r"pdl_sdbx_apikey_([a-z0-9]{26})_[A-Za-z0-9]{22}_[A-Za-z0-9]{3}")
EVENT_TYPES = ("api_key.created", "api_key.updated", "api_key_rotation.created", "api_key_rotation.updated")


def replaced(at: datetime) -> str:
    """The refusal detail of an old secret whose grace period ended at ``at``."""
    return (
        "This API key's secret was replaced by a rotation; the old secret stopped working "
        f"at {rfc3339(at)}. Use the new secret."
    )


# --- helpers --------------------------------------------------------------------------------------


async def rotatable(deps: services.Deps, member: Member, **kwargs: Any) -> tuple[ApiKey, str]:
    """A rotatable sandbox key of ``member`` (every permission unless told) and its secret."""
    return await add_key(deps, member, rotatable=True, **kwargs)


def created(response: httpx.Response) -> dict[str, Any]:
    """A 201 from POST .../rotations in the spec's shape; returns ``data``."""
    assert response.status_code == 201, response.text
    body: dict[str, Any] = spec.check(response, ROTATIONS, "POST")
    assert response.headers["request-id"] == body["meta"]["request_id"]
    data: dict[str, Any] = body["data"]
    return data


async def post_rotation(
    client: httpx.AsyncClient, key_id: str, secret: str, body: Any = None, **fields: Any
) -> httpx.Response:
    return await client.post(
        ROTATIONS.format(api_key_id=key_id),
        json=body if body is not None else {"grace_period_seconds": 300, **fields},
        headers=bearer(secret),
    )


async def rotate(client: httpx.AsyncClient, key_id: str, secret: str, **fields: Any) -> dict[str, Any]:
    """Rotate ``key_id`` as itself; the new rotation (with its full secret in ``new_key``)."""
    return created(await post_rotation(client, key_id, secret, **fields))


async def get_self(client: httpx.AsyncClient, key_id: str, secret: str) -> httpx.Response:
    return await client.get(KEY.format(api_key_id=key_id), headers=bearer(secret))


async def works(client: httpx.AsyncClient, key_id: str, secret: str) -> dict[str, Any]:
    """The key read with ``secret``, which must be accepted."""
    data: dict[str, Any] = ok(await get_self(client, key_id, secret), KEY)["data"]
    assert data["id"] == key_id
    return data


async def refused(client: httpx.AsyncClient, key_id: str, secret: str) -> str:
    """``secret`` refused as invalid_token; the detail."""
    detail: str = error(await get_self(client, key_id, secret), 403, "invalid_token", KEY)["detail"]
    return detail


async def rotation_of(
    client: httpx.AsyncClient, key_id: str, secret: str, rotation_id: str
) -> dict[str, Any]:
    url = ROTATION.format(api_key_id=key_id, rotation_id=rotation_id)
    data: dict[str, Any] = ok(await client.get(url, headers=bearer(secret)), ROTATION)["data"]
    return data


async def rotations_of(client: httpx.AsyncClient, key_id: str, secret: str) -> list[dict[str, Any]]:
    """Every rotation of the key, newest first (one page of 200)."""
    url = ROTATIONS.format(api_key_id=key_id) + "?per_page=200"
    data: list[dict[str, Any]] = ok(await client.get(url, headers=bearer(secret)), ROTATIONS)["data"]
    return data


async def events_about(
    client: httpx.AsyncClient, member: Member, key_id: str
) -> list[tuple[str, dict[str, Any]]]:
    """Key and rotation events about ``key_id`` as GET /events shows them, oldest first.

    Read with the account owner's key (it holds ``notification.read``).
    """
    response = await client.get("/events?order_by=id[ASC]&per_page=200", headers=member.auth())
    body = ok(response, "/events")
    return [
        (e["event_type"], e["data"])
        for e in body["data"]
        if e["event_type"] in EVENT_TYPES and key_id in (e["data"].get("id"), e["data"].get("api_key_id"))
    ]


# --- rotating -------------------------------------------------------------------------------------


async def test_rotating_answers_201_with_the_new_secret_in_full_and_a_pending_rotation(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    clock.advance(minutes=5)
    rotation = await rotate(client, key.id, old, grace_period_seconds=120)

    assert re.fullmatch(r"apkrot_[a-z0-9]{26}", rotation["id"])
    match = FULL_KEY.fullmatch(rotation["new_key"])
    assert match is not None, rotation["new_key"]
    assert match.group(1) == key.id.removeprefix("apikey_")  # the same key: its id is in the secret
    assert rotation["new_key"] != old
    assert rotation == {
        "id": rotation["id"],
        "api_key_id": key.id,
        "new_key": rotation["new_key"],
        "grace_period_seconds": 120,
        "status": "pending",
        "expires_at": None,
        "new_key_expires_at": None,
        "created_at": rfc3339(clock()),
        "updated_at": rfc3339(clock()),
    }


async def test_both_secrets_work_while_the_rotation_is_pending(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    rotation = await rotate(client, key.id, old)
    clock.advance(days=3)  # however long the new secret waits to be deployed
    for _ in range(3):
        await works(client, key.id, old)
    assert (await rotation_of(client, key.id, old, rotation["id"]))["status"] == "pending"
    await works(client, key.id, rotation["new_key"])
    await works(client, key.id, old)


async def test_the_new_secrets_first_use_completes_the_rotation_and_starts_the_grace_period(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    rotation = await rotate(client, key.id, old, grace_period_seconds=600)
    clock.advance(minutes=10)
    first_use = clock()
    await works(client, key.id, rotation["new_key"])
    clock.advance(seconds=1)
    await works(client, key.id, rotation["new_key"])

    done = await rotation_of(client, key.id, rotation["new_key"], rotation["id"])
    assert (done["status"], done["expires_at"], done["updated_at"]) == (
        "completed",
        rfc3339(first_use + timedelta(seconds=600)),
        rfc3339(first_use),
    )
    assert done["created_at"] == rotation["created_at"]
    assert done["grace_period_seconds"] == 600


async def test_the_old_secret_works_through_the_grace_period_and_is_then_refused_as_replaced(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    new = (await rotate(client, key.id, old, grace_period_seconds=300))["new_key"]
    await works(client, key.id, new)
    ends = clock() + timedelta(seconds=300)

    clock.now = ends - MICROSECOND
    await works(client, key.id, old)
    clock.now = ends
    assert await refused(client, key.id, old) == replaced(ends)
    await works(client, key.id, new)
    clock.advance(days=1)
    assert await refused(client, key.id, old) == replaced(ends)
    await works(client, key.id, new)


async def test_with_zero_grace_the_old_secret_is_refused_from_the_new_ones_first_use(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    rotation = await rotate(client, key.id, old, grace_period_seconds=0)
    await works(client, key.id, old)  # pending: still fine
    await works(client, key.id, rotation["new_key"])
    assert await refused(client, key.id, old) == replaced(clock())
    done = await rotation_of(client, key.id, rotation["new_key"], rotation["id"])
    assert (done["status"], done["expires_at"]) == ("completed", rfc3339(clock()))


async def test_the_grace_period_ends_at_the_keys_expiry_at_the_latest(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(hours=1)
    key, old = await rotatable(deps, alice, expires_at=expires)
    rotation = await rotate(client, key.id, old, grace_period_seconds=86_400)
    clock.now = expires - timedelta(seconds=100)
    await works(client, key.id, rotation["new_key"])

    done = await rotation_of(client, key.id, rotation["new_key"], rotation["id"])
    assert done["expires_at"] == rfc3339(expires)
    clock.now = expires - MICROSECOND
    await works(client, key.id, old)
    clock.now = expires
    await refused(client, key.id, old)
    assert (
        await refused(client, key.id, rotation["new_key"]) == f"This API key expired at {rfc3339(expires)}."
    )


async def test_a_new_key_expiry_is_applied_when_the_rotation_completes_with_api_key_updated(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    old_expiry, new_expiry = clock() + timedelta(days=10), clock() + timedelta(days=90)
    key, old = await rotatable(deps, alice, expires_at=old_expiry)
    rotation = await rotate(client, key.id, old, new_key_expires_at=rfc3339(new_expiry))
    assert rotation["new_key_expires_at"] == rfc3339(new_expiry)
    clock.advance(hours=1)
    assert (await works(client, key.id, old))["expires_at"] == rfc3339(old_expiry)  # not before completion

    clock.advance(hours=1)
    completed_at = clock()
    shown = await works(client, key.id, rotation["new_key"])
    assert (shown["expires_at"], shown["updated_at"]) == (rfc3339(new_expiry), rfc3339(completed_at))

    seen = await events_about(client, alice, key.id)
    assert [t for t, _ in seen] == [
        "api_key.created",
        "api_key_rotation.created",
        "api_key.updated",
        "api_key_rotation.updated",
    ]
    updated = seen[2][1]
    assert (updated["id"], updated["expires_at"], updated["updated_at"]) == (
        key.id,
        rfc3339(new_expiry),
        rfc3339(completed_at),
    )
    assert seen[3][1]["new_key_expires_at"] == rfc3339(new_expiry)

    clock.now = old_expiry + timedelta(days=1)  # past the old expiry: the key lives on
    await works(client, key.id, rotation["new_key"])
    await refused(client, key.id, old)


async def test_a_new_rotation_cancels_the_pending_one_whose_secret_is_refused_at_once(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    first = await rotate(client, key.id, old)
    clock.advance(minutes=1)
    second = await rotate(client, key.id, old)

    # Never used (or the rotation would not have been pending): nothing to tell its holder.
    assert await refused(client, key.id, first["new_key"]) == "Invalid or revoked API key."
    canceled = await rotation_of(client, key.id, old, first["id"])
    assert (canceled["status"], canceled["expires_at"], canceled["updated_at"]) == (
        "canceled",
        None,
        rfc3339(clock()),
    )
    assert (await rotation_of(client, key.id, old, second["id"]))["status"] == "pending"

    seen = await events_about(client, alice, key.id)
    assert [(t, d["id"], d["status"]) for t, d in seen[1:]] == [
        ("api_key_rotation.created", first["id"], "pending"),
        ("api_key_rotation.updated", first["id"], "canceled"),
        ("api_key_rotation.created", second["id"], "pending"),
    ]
    await works(client, key.id, second["new_key"])
    await works(client, key.id, old)  # in its grace period
    await refused(client, key.id, first["new_key"])


async def test_rotating_again_with_the_new_secret_completes_the_first_rotation_and_chains(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    first = await rotate(client, key.id, old, grace_period_seconds=60)
    clock.advance(minutes=1)
    second = await rotate(client, key.id, first["new_key"], grace_period_seconds=60)  # its first use
    assert (await rotation_of(client, key.id, first["new_key"], first["id"]))["status"] == "completed"
    await works(client, key.id, old)  # its minute of grace has only begun
    clock.advance(minutes=1)
    assert await refused(client, key.id, old) == replaced(clock())

    clock.advance(minutes=5)
    await works(client, key.id, second["new_key"])
    ends = clock() + timedelta(seconds=60)
    await works(client, key.id, first["new_key"])
    clock.now = ends
    assert await refused(client, key.id, first["new_key"]) == replaced(ends)
    await refused(client, key.id, old)
    await works(client, key.id, second["new_key"])


async def test_rotation_keeps_the_keys_id_name_description_permissions_and_expiry(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(
        deps,
        alice,
        name="CRM sync",
        description="Reads customers.",
        permissions=frozenset({Permission.CUSTOMER_READ, Permission.PRODUCT_WRITE}),
        expires_at=clock() + timedelta(days=30),
    )
    before = await works(client, key.id, old)
    new = (await rotate(client, key.id, old, grace_period_seconds=0))["new_key"]
    clock.advance(hours=2)
    after = await works(client, key.id, new)

    assert after.pop("last_used_at") == rfc3339(clock())
    before.pop("last_used_at")
    assert after == before
    assert (after["name"], after["description"], after["permissions"]) == (
        "CRM sync",
        "Reads customers.",
        ["customer.read", "product.write"],
    )
    # The new secret carries the same permissions: still no api_key.read to list keys.
    response = await client.get("/api-keys", headers=bearer(new))
    assert "api_key.read" in error(response, 403, "forbidden", "/api-keys")["detail"]


# --- self only, rotatable only ---------------------------------------------------------------------

ROUTES = [
    pytest.param("POST", ROTATIONS, id="create"),
    pytest.param("GET", ROTATIONS, id="list"),
    pytest.param("GET", ROTATION, id="get"),
]


async def call(
    client: httpx.AsyncClient, method: str, route: str, key_id: str, rotation_id: str, secret: str
) -> httpx.Response:
    url = route.format(api_key_id=key_id, rotation_id=rotation_id)
    body = {"grace_period_seconds": 300} if method == "POST" else None
    return await client.request(method, url, json=body, headers=bearer(secret))


@pytest.mark.parametrize(("method", "route"), ROUTES)
@pytest.mark.parametrize("caller", ["sibling", "owner-with-every-permission", "other-account"])
async def test_a_key_cannot_rotate_list_or_read_the_rotations_of_another_key(
    client: httpx.AsyncClient,
    deps: services.Deps,
    alice: Member,
    charlie: Member,
    method: str,
    route: str,
    caller: str,
) -> None:
    target, target_secret = await rotatable(deps, alice, name="target")
    rotation = await rotate(client, target.id, target_secret)
    secret = {
        "sibling": (await rotatable(deps, alice, name="sibling"))[1],
        "owner-with-every-permission": alice.keys[SANDBOX],
        "other-account": (await rotatable(deps, charlie))[1],
    }[caller]

    response = await call(client, method, route, target.id, rotation["id"], secret)
    assert error(response, 403, "forbidden", route, method)["detail"] == ONLY_ITSELF
    assert [r["id"] for r in await rotations_of(client, target.id, target_secret)] == [rotation["id"]]


@pytest.mark.parametrize(("method", "route"), ROUTES)
async def test_asking_about_an_unknown_key_is_forbidden_like_any_other_key(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, method: str, route: str
) -> None:
    """The same 403 whether or not the key exists: nothing is told about keys one does not hold."""
    _, secret = await rotatable(deps, alice)
    unknown = "apikey_01jkdpbhazdpn3wpcya45as9tg"
    response = await call(client, method, route, unknown, "apkrot_01jkdpbhazdpn3wpcya45as9tg", secret)
    assert error(response, 403, "forbidden", route, method)["detail"] == ONLY_ITSELF


async def test_a_key_not_created_as_rotatable_cannot_rotate_with_409_conflict(
    client: httpx.AsyncClient, alice: Member
) -> None:
    key_id, secret = alice.key_ids[SANDBOX], alice.keys[SANDBOX]
    err = error(await post_rotation(client, key_id, secret), 409, "conflict", ROTATIONS, "POST")
    assert "not created as rotatable" in err["detail"]
    assert await rotations_of(client, key_id, secret) == []
    await works(client, key_id, secret)


# --- the request body ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"grace_period_seconds": -1}, id="negative"),
        pytest.param({"grace_period_seconds": 86_401}, id="over-a-day"),
        pytest.param({"grace_period_seconds": "300"}, id="string"),
        pytest.param({"grace_period_seconds": True}, id="true"),
        pytest.param({"grace_period_seconds": None}, id="null"),
        pytest.param({"grace_period_seconds": 1.5}, id="fraction"),
        pytest.param({}, id="missing"),
        pytest.param({"new_key_expires_at": "2027-01-01T00:00:00Z"}, id="missing-with-expiry"),
    ],
)
async def test_a_grace_that_is_not_an_integer_from_0_to_86400_is_invalid_field(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, body: dict[str, Any]
) -> None:
    key, secret = await rotatable(deps, alice)
    err = error(await post_rotation(client, key.id, secret, body), 400, "invalid_field", ROTATIONS, "POST")
    assert [e["field"] for e in err["errors"]] == ["grace_period_seconds"]
    assert await rotations_of(client, key.id, secret) == []
    assert [t for t, _ in await events_about(client, alice, key.id)] == ["api_key.created"]


@pytest.mark.parametrize("grace", [0, 86_400])
async def test_the_grace_bounds_themselves_are_accepted(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, grace: int
) -> None:
    key, secret = await rotatable(deps, alice)
    assert (await rotate(client, key.id, secret, grace_period_seconds=grace))["grace_period_seconds"] == grace


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("2026-05-31T12:00:00Z", id="past"),
        pytest.param("2026-06-01T12:00:00Z", id="now"),
        pytest.param("next year", id="garbage"),
        pytest.param(1_800_000_000, id="number"),
    ],
)
async def test_a_new_key_expiry_that_is_not_a_future_rfc3339_time_is_invalid_field(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, value: object
) -> None:
    key, secret = await rotatable(deps, alice)
    body = {"grace_period_seconds": 300, "new_key_expires_at": value}
    err = error(await post_rotation(client, key.id, secret, body), 400, "invalid_field", ROTATIONS, "POST")
    assert [e["field"] for e in err["errors"]] == ["new_key_expires_at"]


async def test_an_unknown_field_is_invalid_field_and_a_body_that_is_not_an_object_is_bad_request(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, secret = await rotatable(deps, alice)
    body = {"grace_period_seconds": 300, "grace_period": 300}
    err = error(await post_rotation(client, key.id, secret, body), 400, "invalid_field", ROTATIONS, "POST")
    assert [e["field"] for e in err["errors"]] == ["grace_period"]
    error(await post_rotation(client, key.id, secret, [300]), 400, "bad_request", ROTATIONS, "POST")
    assert await rotations_of(client, key.id, secret) == []


# --- list and get ----------------------------------------------------------------------------------


async def test_list_and_get_show_rotations_newest_first_with_the_new_key_obfuscated(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    made = []
    for grace in (10, 20, 30):
        made.append(await rotate(client, key.id, old, grace_period_seconds=grace))
        clock.advance(minutes=1)

    listed = await rotations_of(client, key.id, old)
    assert [(r["id"], r["status"], r["grace_period_seconds"]) for r in listed] == [
        (made[2]["id"], "pending", 30),
        (made[1]["id"], "canceled", 20),
        (made[0]["id"], "canceled", 10),
    ]
    obfuscated = "pdl_sdbx_" + key.id[: len("apikey_") + 10] + "****"
    assert {r["new_key"] for r in listed} == {obfuscated}
    for rotation in made:
        fetched = await rotation_of(client, key.id, old, rotation["id"])
        assert fetched == next(r for r in listed if r["id"] == rotation["id"])
        assert fetched["new_key"] == obfuscated

    url = ROTATIONS.format(api_key_id=key.id) + "?per_page=2"
    page = ok(await client.get(url, headers=bearer(old)), ROTATIONS)
    assert [r["id"] for r in page["data"]] == [made[2]["id"], made[1]["id"]]
    pagination = page["meta"]["pagination"]
    assert (pagination["per_page"], pagination["has_more"], pagination["estimated_total"]) == (2, True, 3)
    rest = ok(await client.get(pagination["next"], headers=bearer(old)), ROTATIONS)
    assert [r["id"] for r in rest["data"]] == [made[0]["id"]]
    assert rest["meta"]["pagination"]["has_more"] is False

    ascending = ok(await client.get(url + "&order_by=id[ASC]", headers=bearer(old)), ROTATIONS)
    assert [r["id"] for r in ascending["data"]] == [made[0]["id"], made[1]["id"]]

    everything = (await client.get(ROTATIONS.format(api_key_id=key.id), headers=bearer(old))).text
    everything += (await client.get("/events", headers=alice.auth())).text
    for rotation in made:
        assert rotation["new_key"] not in everything


async def test_the_list_can_be_narrowed_to_given_rotation_ids(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    """Paddle's ``id`` query (a comma-separated list), which the spec lists for this operation."""
    key, old = await rotatable(deps, alice)
    made = [await rotate(client, key.id, old) for _ in range(3)]
    url = ROTATIONS.format(api_key_id=key.id)
    wanted = f"{made[0]['id']},{made[2]['id']}"
    body = ok(await client.get(url, params={"id": wanted}, headers=bearer(old)), ROTATIONS)
    assert [r["id"] for r in body["data"]] == [made[2]["id"], made[0]["id"]]
    response = await client.get(url, params={"id": "apikey_01jkdpbhazdpn3wpcya45as9tg"}, headers=bearer(old))
    assert [e["field"] for e in error(response, 400, "invalid_field", ROTATIONS)["errors"]] == ["id"]


@pytest.mark.parametrize(
    "rotation_id",
    [
        pytest.param("apkrot_01jkdpbhazdpn3wpcya45as9tg", id="unknown"),
        pytest.param("x", id="malformed"),
        pytest.param("apikey_01jkdpbhazdpn3wpcya45as9tg", id="other-prefix"),
    ],
)
async def test_an_unknown_rotation_is_not_found(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, rotation_id: str
) -> None:
    key, secret = await rotatable(deps, alice)
    url = ROTATION.format(api_key_id=key.id, rotation_id=rotation_id)
    error(await client.get(url, headers=bearer(secret)), 404, "not_found", ROTATION)


async def test_another_keys_rotation_under_ones_own_path_is_not_found(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    mine, my_secret = await rotatable(deps, alice, name="mine")
    theirs, their_secret = await rotatable(deps, alice, name="theirs")
    rotation = await rotate(client, theirs.id, their_secret)
    url = ROTATION.format(api_key_id=mine.id, rotation_id=rotation["id"])
    error(await client.get(url, headers=bearer(my_secret)), 404, "not_found", ROTATION)


# --- events ----------------------------------------------------------------------------------------


async def test_rotation_events_come_in_order_and_never_carry_the_secret(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    clock.advance(minutes=1)
    rotation = await rotate(client, key.id, old, grace_period_seconds=45)
    clock.advance(minutes=1)
    await works(client, key.id, rotation["new_key"])
    completed_at = clock()

    seen = await events_about(client, alice, key.id)
    assert [t for t, _ in seen] == ["api_key.created", "api_key_rotation.created", "api_key_rotation.updated"]
    (_, started), (_, completed) = seen[1], seen[2]
    assert started == {**rotation, "new_key": started["new_key"]}
    assert completed == {
        **rotation,
        "new_key": completed["new_key"],
        "status": "completed",
        "expires_at": rfc3339(completed_at + timedelta(seconds=45)),
        "updated_at": rfc3339(completed_at),
    }
    obfuscated = "pdl_sdbx_" + key.id[: len("apikey_") + 10] + "****"
    assert started["new_key"] == completed["new_key"] == obfuscated

    newest_first = ok(await client.get("/events", headers=alice.auth()), "/events")
    assert [e["event_type"] for e in newest_first["data"][:2]] == [
        "api_key_rotation.updated",
        "api_key_rotation.created",
    ]
    assert rotation["new_key"] not in str(newest_first)
    assert old not in str(newest_first)


# --- concurrency -----------------------------------------------------------------------------------


async def test_concurrent_rotations_leave_exactly_one_pending_and_cancel_every_other(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, old = await rotatable(deps, alice)
    responses = await asyncio.gather(*(post_rotation(client, key.id, old) for _ in range(6)))
    made = [created(r) for r in responses]

    statuses = {r["id"]: r["status"] for r in await rotations_of(client, key.id, old)}
    assert set(statuses) == {r["id"] for r in made}
    pending = [r for r in made if statuses[r["id"]] == "pending"]
    assert len(pending) == 1, statuses
    assert sorted(statuses.values()) == ["canceled"] * 5 + ["pending"]

    for rotation in made:
        if rotation is pending[0]:
            continue
        assert await refused(client, key.id, rotation["new_key"]) == "Invalid or revoked API key."
    await works(client, key.id, pending[0]["new_key"])

    seen = await events_about(client, alice, key.id)
    assert sorted(d["id"] for t, d in seen if t == "api_key_rotation.created") == sorted(statuses)
    canceled = [d["id"] for t, d in seen if t == "api_key_rotation.updated" and d["status"] == "canceled"]
    assert sorted(canceled) == sorted(i for i, s in statuses.items() if s == "canceled")


@pytest.fixture
async def second_client(
    database: TestDatabase, deps: services.Deps, clock: FakeClock
) -> AsyncIterator[httpx.AsyncClient]:
    """Another app on the same database with a store and caches of its own: a second server process."""
    store = database.open()
    await store.start()
    other = services.Deps(store=store, peppers=deps.peppers, clock=clock)
    transport = httpx.ASGITransport(app=create_app(other, WebOptions()))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    await store.close()


@pytest.mark.parametrize("servers", [1, 2])
async def test_concurrent_first_uses_complete_the_rotation_exactly_once(
    client: httpx.AsyncClient,
    second_client: httpx.AsyncClient,
    deps: services.Deps,
    clock: FakeClock,
    alice: Member,
    servers: int,
) -> None:
    key, old = await rotatable(deps, alice)
    clients = [client, second_client][:servers]
    for each in clients:  # every server has the key (and the pending rotation) in its cache
        await works(each, key.id, old)
    rotation = await rotate(client, key.id, old, grace_period_seconds=30)
    for each in clients:
        await works(each, key.id, old)

    responses = await asyncio.gather(
        *(get_self(clients[n % servers], key.id, rotation["new_key"]) for n in range(8))
    )
    for response in responses:
        ok(response, KEY)

    seen = await events_about(client, alice, key.id)
    completions = [d for t, d in seen if t == "api_key_rotation.updated"]
    assert [(d["id"], d["status"]) for d in completions] == [(rotation["id"], "completed")]
    assert completions[0]["expires_at"] == rfc3339(clock() + timedelta(seconds=30))
    for each in clients:
        await works(each, key.id, old)
    clock.advance(seconds=30)
    for each in clients:
        assert await refused(each, key.id, old) == replaced(clock())
        await works(each, key.id, rotation["new_key"])


def rotate_elsewhere(database: TestDatabase, deps: services.Deps, key: ApiKey) -> None:
    """Rotate as another process would: its own store and event loop, on a thread.

    This test's event loop is blocked meanwhile, so nothing it listens to is processed until the
    next ``await``: only a check made by the next authentication itself can notice the change.
    """

    async def work() -> None:
        store = database.open()
        try:
            other = services.Deps(store=store, peppers=deps.peppers, clock=deps.clock)
            await rotations.rotate(other, key, key.id, grace_period_seconds=300)
        finally:
            await store.close()

    thread = threading.Thread(target=asyncio.run, args=(work(),))
    thread.start()
    thread.join()


async def test_a_secret_canceled_by_another_process_is_refused_by_the_very_next_authentication(
    request: pytest.FixtureRequest, database: TestDatabase, deps: services.Deps, alice: Member
) -> None:
    if database.kind == "postgres":
        request.applymarker(pytest.mark.xfail(strict=True, reason=POSTGRES_STALE_CACHE))
    key, old = await rotatable(deps, alice)
    _, _, pending = await rotations.rotate(deps, key, key.id, grace_period_seconds=300)
    for _ in range(40):  # cache the key with both secrets, once no news of a write is on its way
        before = deps.store.change_marker()
        await deps.authenticator.authenticate(old)
        await asyncio.sleep(0.05)
        if deps.store.change_marker() == before:
            break
    rotate_elsewhere(database, deps, key)
    with pytest.raises(InvalidToken):
        await deps.authenticator.authenticate(pending)


class _PausingTransaction:
    """A real transaction that, having marked a rotation completed, holds on (uncommitted) until
    released: the moment another writer must not miss."""

    def __init__(self, tx: Transaction, store: PausingStore) -> None:
        self._tx = tx
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    async def update_rotation(self, rotation: Rotation, *, only_if_pending: bool = False) -> bool:
        changed = await self._tx.update_rotation(rotation, only_if_pending=only_if_pending)
        if rotation.status is RotationStatus.COMPLETED:
            self._store.holding.set()
            await self._store.release.wait()
        return changed


class PausingStore:
    """A second process's store whose completions can be held open (a hand-written fake around the
    real one; everything else passes through)."""

    def __init__(self, real: SqlStore) -> None:
        self.real = real
        self.holding = asyncio.Event()
        self.release = asyncio.Event()

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[Transaction]:
        async with self.real.transaction() as tx:
            yield cast(Transaction, _PausingTransaction(tx, self))

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._transaction()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        return cast(AbstractAsyncContextManager[Transaction], self.real.read())

    def change_marker(self) -> int | None:
        return self.real.change_marker()

    async def ping(self) -> bool:
        return await self.real.ping()

    async def start(self) -> None:
        await self.real.start()

    async def close(self) -> None:
        await self.real.close()


async def test_a_rotation_started_while_another_completes_never_cancels_the_completed_one(
    client: httpx.AsyncClient,
    database: TestDatabase,
    deps: services.Deps,
    clock: FakeClock,
    alice: Member,
) -> None:
    """The new secret's first use (on one server) races a new rotation (on another). Whichever
    commits first wins, but a completed rotation stays completed and its secret keeps working: the
    fleet has begun to use it, and the old secret's grace period is already running."""
    key, old = await rotatable(deps, alice)
    first = await rotate(client, key.id, old, grace_period_seconds=300)
    paused = PausingStore(database.open())
    await paused.start()
    try:
        other = services.Deps(store=paused, peppers=deps.peppers, clock=clock)
        first_use = asyncio.create_task(other.authenticator.authenticate(first["new_key"]))
        await asyncio.wait_for(paused.holding.wait(), 10)  # completed, not yet committed
        second = asyncio.create_task(post_rotation(client, key.id, old))
        await asyncio.sleep(0.3)  # the new rotation reads, and waits for the completion's locks
        paused.release.set()
        assert (await first_use).id == key.id
        second_rotation = created(await second)
    finally:
        paused.release.set()
        await paused.close()

    statuses = {r["id"]: r["status"] for r in await rotations_of(client, key.id, old)}
    assert statuses == {first["id"]: "completed", second_rotation["id"]: "pending"}
    await works(client, key.id, first["new_key"])
    seen = await events_about(client, alice, key.id)
    assert [d["status"] for t, d in seen if t == "api_key_rotation.updated"] == ["completed"]


# --- a real server under load ----------------------------------------------------------------------


@dataclass
class Load:
    """Threads reading the key over and over with whatever secret is current, each request on a new
    connection (so with several workers any of them may answer it)."""

    server: Server
    key_id: str
    secret: str
    threads: int = 4
    results: list[tuple[str, int, str]] = field(default_factory=list)  # (secret, status, body if not 200)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _running: list[threading.Thread] = field(default_factory=list)

    def _loop(self) -> None:
        limits = httpx.Limits(max_keepalive_connections=0)
        with httpx.Client(base_url=self.server.url, timeout=10, limits=limits) as client:
            while not self._stop.is_set():
                secret = self.secret
                try:
                    response = client.get(f"/api-keys/{self.key_id}", headers=bearer(secret))
                    outcome = (
                        secret,
                        response.status_code,
                        "" if response.status_code == 200 else response.text,
                    )
                except httpx.HTTPError as exc:
                    outcome = (secret, 0, repr(exc))
                with self._lock:
                    self.results.append(outcome)

    def __enter__(self) -> Load:
        self._running = [threading.Thread(target=self._loop, daemon=True) for _ in range(self.threads)]
        for thread in self._running:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._running:
            thread.join(15)

    def wait_for(self, more: int, timeout: float = 30.0) -> None:
        """Until ``more`` further requests have been answered."""
        target = len(self.results) + more
        deadline = time.monotonic() + timeout
        while len(self.results) < target:
            assert time.monotonic() < deadline, f"only {len(self.results)} of {target} requests answered"
            time.sleep(0.01)


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_switching_secrets_under_continuous_load_fails_not_a_single_request(
    keyhouse: Keyhouse, workers: int
) -> None:
    async def make(deps: services.Deps) -> tuple[str, str]:
        account = await services.create_account(deps, "Alice's shop")
        key, plaintext = await services.create_key(
            deps,
            account_id=account.id,
            environment=SANDBOX,
            name="fleet",
            permissions=frozenset({Permission.PRODUCT_READ}),
            rotatable=True,
        )
        return key.id, plaintext

    key_id, old = keyhouse.call(make)
    server = keyhouse.server if workers == 1 else keyhouse.serve(workers=workers)
    with Load(server, key_id, old) as load:
        load.wait_for(20)
        with server.client() as client:
            response = client.post(
                f"/api-keys/{key_id}/rotations", json={"grace_period_seconds": 5}, headers=bearer(old)
            )
        assert response.status_code == 201, response.text
        spec.check(response, ROTATIONS, "POST")
        rotation = response.json()["data"]
        load.wait_for(20)  # pending: the old secret goes on working
        load.secret = rotation["new_key"]
        load.wait_for(40)

    failures = [r for r in load.results if r[1] != 200]
    assert failures == [], failures[:5]
    used = {secret for secret, _, _ in load.results}
    assert used == {old, rotation["new_key"]}
    with server.client() as client:
        url = f"/api-keys/{key_id}/rotations/{rotation['id']}"
        done = client.get(url, headers=bearer(rotation["new_key"]))
    assert done.status_code == 200, done.text
    assert done.json()["data"]["status"] == "completed"
