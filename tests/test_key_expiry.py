"""Key expiry on every store (paddle-api.md §2.4): refusal from the first microsecond at
``expires_at``, and the expiry job (``services.keys.run_expiry``) that sends ``api_key.expiring`` once,
7 days ahead, and ``api_key.expired`` with the status change. Refusal never waits for the job.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyhouse import services
from keyhouse.domain import keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.events import Event, EventType
from keyhouse.domain.keys import EXPIRING_NOTICE, ApiKey, KeyStatus
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339
from keyhouse.services.keys import run_expiry
from tests.conftest import FakeClock, Member
from tests.test_api import add_key, bearer, error, ok

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from tests.conftest import TestDatabase

SANDBOX = Environment.SANDBOX
MICROSECOND = timedelta(microseconds=1)
KEY_PATH = "/api-keys/{api_key_id}"
EXPIRY_TYPES = (EventType.API_KEY_EXPIRING, EventType.API_KEY_EXPIRED)


async def events_of(deps: services.Deps, member: Member, key_id: str) -> list[Event]:
    """The events about one key, oldest first, as the store holds them."""
    async with deps.store.read() as tx:
        found = await tx.list_events(member.account_id, SANDBOX)
    return [e for e in found if e.data.get("id") == key_id]


async def types_of(deps: services.Deps, member: Member, key_id: str) -> list[EventType]:
    return [e.type for e in await events_of(deps, member, key_id)]


async def stored(deps: services.Deps, key_id: str) -> ApiKey:
    async with deps.store.read() as tx:
        key = await tx.get_key(key_id)
    assert key is not None
    return key


async def api_events(client: httpx.AsyncClient, member: Member) -> list[dict[str, Any]]:
    """GET /events with the merchant's key (it holds notification.read), oldest first."""
    body = ok(await client.get("/events?order_by=id[ASC]&per_page=200", headers=member.auth()), "/events")
    data: list[dict[str, Any]] = body["data"]
    return data


# --- refusal at the boundary ----------------------------------------------------------------------


async def test_a_key_works_one_microsecond_before_expires_at_and_is_refused_at_expires_at_exactly(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(days=2, microseconds=250)
    key, plaintext = await add_key(
        deps, alice, permissions=frozenset({Permission.PRODUCT_READ}), expires_at=expires
    )
    clock.now = expires - MICROSECOND
    body = ok(await client.get(f"/api-keys/{key.id}", headers=bearer(plaintext)), KEY_PATH)
    assert (body["data"]["id"], body["data"]["status"]) == (key.id, "active")
    clock.now = expires
    response = await client.get(f"/api-keys/{key.id}", headers=bearer(plaintext))
    err = error(response, 403, "invalid_token", KEY_PATH)
    assert err["detail"] == f"This API key expired at {rfc3339(expires)}."


async def test_an_expired_key_is_refused_and_shown_expired_before_the_job_runs(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice, expires_at=clock() + timedelta(days=30))
    clock.advance(days=30)
    error(await client.get(f"/api-keys/{key.id}", headers=bearer(plaintext)), 403, "invalid_token", KEY_PATH)
    # The job has not run: the row still says active, yet every view says expired.
    assert (await stored(deps, key.id)).status is KeyStatus.ACTIVE
    body = ok(await client.get(f"/api-keys/{key.id}", headers=alice.auth()), KEY_PATH)
    assert body["data"]["status"] == "expired"
    assert EventType.API_KEY_EXPIRED not in await types_of(deps, alice, key.id)


# --- the job --------------------------------------------------------------------------------------


async def test_the_job_sends_api_key_expiring_once_seven_days_ahead(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(days=30)
    key, _ = await add_key(deps, alice, expires_at=expires)
    clock.now = expires - EXPIRING_NOTICE - MICROSECOND
    assert await run_expiry(deps) == 0
    assert await types_of(deps, alice, key.id) == [EventType.API_KEY_CREATED]

    clock.now = expires - EXPIRING_NOTICE
    assert await run_expiry(deps) == 1
    noticed_at = clock()
    clock.advance(days=1)
    assert await run_expiry(deps) == 0  # the second run sends nothing
    assert await types_of(deps, alice, key.id) == [EventType.API_KEY_CREATED, EventType.API_KEY_EXPIRING]

    after = await stored(deps, key.id)
    assert (after.status, after.expiring_noticed_at, after.updated_at) == (
        KeyStatus.ACTIVE,
        noticed_at,
        key.updated_at,
    )
    seen = [e for e in await api_events(client, alice) if e["data"]["id"] == key.id]
    assert [e["event_type"] for e in seen] == ["api_key.created", "api_key.expiring"]
    expiring = seen[1]
    assert expiring["occurred_at"] == rfc3339(noticed_at)
    assert expiring["data"]["status"] == "active"
    assert expiring["data"]["expires_at"] == rfc3339(expires)
    assert expiring["data"]["key"].endswith("****")


async def test_at_expiry_the_job_sends_api_key_expired_and_stores_status_expired(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(days=30)
    key, _ = await add_key(deps, alice, expires_at=expires)
    clock.now = expires - timedelta(days=6)
    assert await run_expiry(deps) == 1
    clock.now = expires - MICROSECOND
    assert await run_expiry(deps) == 0
    assert (await stored(deps, key.id)).status is KeyStatus.ACTIVE

    clock.now = expires
    assert await run_expiry(deps) == 1
    after = await stored(deps, key.id)
    assert (after.status, after.updated_at) == (KeyStatus.EXPIRED, expires)
    clock.advance(days=1)
    assert await run_expiry(deps) == 0

    seen = [e for e in await api_events(client, alice) if e["data"]["id"] == key.id]
    assert [e["event_type"] for e in seen] == ["api_key.created", "api_key.expiring", "api_key.expired"]
    assert seen[2]["occurred_at"] == rfc3339(expires)
    assert seen[2]["data"]["status"] == "expired"
    body = ok(await client.get(f"/api-keys/{key.id}", headers=alice.auth()), KEY_PATH)
    assert (body["data"]["status"], body["data"]["updated_at"]) == ("expired", rfc3339(expires))


async def test_a_key_created_with_three_days_left_gets_api_key_expiring_at_once(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    created_at = clock()
    expires = created_at + timedelta(days=3)
    key, _ = await add_key(deps, alice, expires_at=expires)
    found = await events_of(deps, alice, key.id)
    assert [(e.type, e.occurred_at) for e in found] == [
        (EventType.API_KEY_CREATED, created_at),
        (EventType.API_KEY_EXPIRING, created_at),
    ]
    assert found[1].data["status"] == "active"
    assert (await stored(deps, key.id)).expiring_noticed_at == created_at
    # The job never repeats it; at expiry only api_key.expired follows.
    assert await run_expiry(deps) == 0
    clock.now = expires
    assert await run_expiry(deps) == 1
    assert await types_of(deps, alice, key.id) == [
        EventType.API_KEY_CREATED,
        EventType.API_KEY_EXPIRING,
        EventType.API_KEY_EXPIRED,
    ]
    seen = [e["event_type"] for e in await api_events(client, alice) if e["data"]["id"] == key.id]
    assert seen == ["api_key.created", "api_key.expiring", "api_key.expired"]


@pytest.mark.parametrize(
    ("left", "expiring"),
    [
        pytest.param(EXPIRING_NOTICE, True, id="exactly-7-days"),
        pytest.param(EXPIRING_NOTICE + MICROSECOND, False, id="7-days-and-a-microsecond"),
        pytest.param(timedelta(days=90), False, id="90-days"),
    ],
)
async def test_a_key_created_with_more_than_seven_days_left_gets_no_notice_at_creation(
    deps: services.Deps, clock: FakeClock, alice: Member, left: timedelta, expiring: bool
) -> None:
    key, _ = await add_key(deps, alice, expires_at=clock() + left)
    expected = [EventType.API_KEY_CREATED] + ([EventType.API_KEY_EXPIRING] if expiring else [])
    assert await types_of(deps, alice, key.id) == expected


async def test_a_key_the_job_first_sees_past_its_expiry_gets_only_api_key_expired(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await add_key(deps, alice, expires_at=clock() + timedelta(days=30))
    clock.advance(days=31)  # no job ran for the whole week before
    assert await run_expiry(deps) == 1
    assert await types_of(deps, alice, key.id) == [EventType.API_KEY_CREATED, EventType.API_KEY_EXPIRED]
    assert (await stored(deps, key.id)).status is KeyStatus.EXPIRED
    assert await run_expiry(deps) == 0


async def test_the_job_leaves_keys_without_expiry_and_revoked_keys_alone(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    forever, _ = await add_key(deps, alice)
    revoked, _ = await add_key(deps, alice, expires_at=clock() + timedelta(days=10))
    await services.revoke_key(deps, revoked.id)
    for days in (5, 10):
        clock.advance(days=days)
        assert await run_expiry(deps) == 0
    assert await types_of(deps, alice, forever.id) == [EventType.API_KEY_CREATED]
    assert await types_of(deps, alice, revoked.id) == [EventType.API_KEY_CREATED, EventType.API_KEY_REVOKED]
    assert (await stored(deps, revoked.id)).status is KeyStatus.REVOKED


async def test_the_job_works_through_more_keys_than_one_batch(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    made = [await add_key(deps, alice, expires_at=clock() + timedelta(days=21 + n)) for n in range(5)]
    clock.advance(days=20)
    assert await run_expiry(deps, batch=2) == 5
    for key, _ in made:
        assert await types_of(deps, alice, key.id) == [EventType.API_KEY_CREATED, EventType.API_KEY_EXPIRING]
    clock.advance(days=5)
    assert await run_expiry(deps, batch=2) == 5
    for key, _ in made:
        assert (await stored(deps, key.id)).status is KeyStatus.EXPIRED


async def test_a_live_keys_expiry_events_are_in_the_live_environment_only(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await add_key(deps, alice, Environment.LIVE, expires_at=clock() + timedelta(days=10))
    clock.advance(days=3)
    assert await run_expiry(deps) == 1
    async with deps.store.read() as tx:
        live = [
            e.type for e in await tx.list_events(alice.account_id, Environment.LIVE) if e.data["id"] == key.id
        ]
        sandbox = [e for e in await tx.list_events(alice.account_id, SANDBOX) if e.data["id"] == key.id]
    assert live == [EventType.API_KEY_CREATED, EventType.API_KEY_EXPIRING]
    assert sandbox == []


# --- notifications --------------------------------------------------------------------------------


async def subscribe(client: httpx.AsyncClient, member: Member, *types: EventType) -> str:
    """A sandbox notification setting for ``types`` (to a local port nothing listens on); its id."""
    response = await client.post(
        "/notification-settings",
        headers=member.auth(),
        json={
            "type": "url",
            "description": "expiry alerts",
            "destination": "http://127.0.0.1:9/x",
            "subscribed_events": [t.value for t in types],
        },
    )
    assert response.status_code in (200, 201), response.text
    setting_id: str = response.json()["data"]["id"]
    return setting_id


async def notifications_of(client: httpx.AsyncClient, member: Member) -> list[dict[str, Any]]:
    url = "/notifications?order_by=id[ASC]&per_page=200"
    body = ok(await client.get(url, headers=member.auth()), "/notifications")
    data: list[dict[str, Any]] = body["data"]
    return data


async def test_a_setting_subscribed_to_api_key_expiring_gets_exactly_one_notification(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    setting_id = await subscribe(client, alice, EventType.API_KEY_EXPIRING)
    expires = clock() + timedelta(days=30)
    key, _ = await add_key(deps, alice, expires_at=expires)
    for moment in (expires - timedelta(days=7), expires - timedelta(days=1), expires, expires + MICROSECOND):
        clock.now = moment
        await run_expiry(deps)
    found = await notifications_of(client, alice)
    assert [(n["type"], n["notification_setting_id"]) for n in found] == [("api_key.expiring", setting_id)]
    assert found[0]["payload"]["data"]["id"] == key.id
    assert found[0]["occurred_at"] == rfc3339(expires - timedelta(days=7))


async def test_a_key_created_close_to_expiry_notifies_a_subscribed_setting_once(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    setting_id = await subscribe(client, alice, *EXPIRY_TYPES)
    expires = clock() + timedelta(days=3)
    key, _ = await add_key(deps, alice, expires_at=expires)
    await run_expiry(deps)
    clock.now = expires
    await run_expiry(deps)
    await run_expiry(deps)
    found = await notifications_of(client, alice)
    assert [(n["type"], n["payload"]["data"]["id"]) for n in found] == [
        ("api_key.expiring", key.id),
        ("api_key.expired", key.id),
    ]
    assert {n["notification_setting_id"] for n in found} == {setting_id}


# --- two workers at once --------------------------------------------------------------------------


async def test_two_workers_running_the_job_at_once_send_each_event_exactly_once(
    database: TestDatabase, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    """Two stores (as two worker processes have): on PostgreSQL rows are claimed with FOR UPDATE SKIP
    LOCKED, on SQLite writers are serialised; either way no key is handled twice."""
    count = 24
    async with deps.store.transaction() as tx:  # in one transaction: quick on PostgreSQL
        made = []
        for n in range(count):
            key, _, digest = keys.issue_key(
                account_id=alice.account_id,
                environment=SANDBOX,
                name=f"batch {n}",
                description=None,
                permissions=frozenset({Permission.PRODUCT_READ}),
                expires_at=clock() + timedelta(days=10, seconds=n),
                rotatable=False,
                now=clock(),
                pepper=deps.peppers.current,
            )
            await tx.add_key(key, digest)
            made.append(key.id)
    other = services.Deps(store=database.open(), peppers=deps.peppers, clock=clock)
    try:
        for moment, event_type in (
            (timedelta(days=4), "api_key.expiring"),
            (timedelta(days=7), "api_key.expired"),
        ):
            clock.now += moment
            changed = await asyncio.gather(*(run_expiry(d, batch=3) for d in (deps, other, deps, other)))
            assert sum(changed) == count
            async with deps.store.read() as tx:
                found = [
                    e.data["id"]
                    for e in await tx.list_events(alice.account_id, SANDBOX)
                    if e.type == event_type
                ]
            assert sorted(found) == sorted(made)  # every key once, none twice
    finally:
        await other.store.close()
    for key_id in made:
        assert (await stored(deps, key_id)).status is KeyStatus.EXPIRED
