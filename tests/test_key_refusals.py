"""Refusals that explain, and reactivation (issue 7, items 3 and 4).

A caller whose secret matches a key learns why it is refused (revoked, expired); anyone else gets the
plain ``invalid_token`` detail, so nothing is told about keys one does not hold. A revoked key may be
reactivated within 60 minutes of being revoked, keeping its expiry, unless it was revoked because it
was exposed (Paddle's rule). Pure rules first, then the use case, HTTP and CLI on every store.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from keyhouse import services
from keyhouse.domain import credentials, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.errors import Conflict, InvalidToken, NotFound
from keyhouse.domain.events import EventType
from keyhouse.domain.ids import new_id
from keyhouse.domain.keys import REACTIVATION_WINDOW, ApiKey, KeyStatus, reactivate, refusal_detail, revoke
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339
from keyhouse.services.keys import reactivate_key
from keyhouse.web import create_app
from tests.conftest import TEST_PEPPER, FakeClock, Member
from tests.test_api import HOSTS, add_key, bearer, error, ok
from tests.test_cli import Cli, clear_keyhouse_env, fails, invoke, succeeds

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from keyhouse.store.sql import SqlStore
    from tests.conftest import TestDatabase

SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PLAIN = "Invalid or revoked API key."
WINDOW_CLOSED = "can be reactivated only within 60 minutes of being revoked"


def a_key(**overrides: Any) -> ApiKey:
    key, _, _ = keys.issue_key(
        account_id="acc_" + "a" * 26,
        environment=SANDBOX,
        name="CRM",
        description=None,
        permissions=frozenset({Permission.PRODUCT_READ}),
        expires_at=None,
        rotatable=False,
        now=NOW,
        pepper=Pepper(b"pepper-" + b"x" * 32),
    )
    return dataclasses.replace(key, **overrides)


# --- the rules, pure ------------------------------------------------------------------------------


def test_an_active_key_has_no_refusal_detail() -> None:
    assert refusal_detail(a_key(expires_at=NOW + timedelta(hours=1)), NOW) is None


def test_a_revoked_key_is_refused_naming_when_it_was_revoked() -> None:
    assert (
        refusal_detail(revoke(a_key(), NOW), NOW)
        == "This API key was revoked at 2026-06-01T12:00:00.000000Z."
    )


def test_a_revoked_key_without_a_revocation_time_is_refused_as_revoked() -> None:
    assert refusal_detail(a_key(status=KeyStatus.REVOKED), NOW) == "This API key was revoked."


@pytest.mark.parametrize("stored", [KeyStatus.ACTIVE, KeyStatus.EXPIRED], ids=["no-job-yet", "job-ran"])
def test_an_expired_key_is_refused_naming_its_expiry_whether_or_not_a_job_ran(stored: KeyStatus) -> None:
    key = a_key(expires_at=NOW, status=stored)
    assert refusal_detail(key, NOW) == "This API key expired at 2026-06-01T12:00:00.000000Z."


def test_a_key_revoked_and_then_past_its_expiry_is_refused_as_revoked() -> None:
    key = revoke(a_key(expires_at=NOW + timedelta(minutes=1)), NOW)
    assert refusal_detail(key, NOW + timedelta(days=1)) == f"This API key was revoked at {rfc3339(NOW)}."


@pytest.mark.parametrize(
    ("exposed", "revoked", "for_exposure"),
    [
        pytest.param(None, NOW, False, id="never-exposed"),
        pytest.param(NOW, None, False, id="exposed-not-revoked"),
        pytest.param(NOW, NOW, True, id="exposed-and-revoked-together"),
        pytest.param(NOW - timedelta(days=1), NOW, True, id="exposed-then-revoked"),
        pytest.param(NOW + timedelta(seconds=1), NOW, False, id="exposed-after-being-revoked"),
    ],
)
def test_a_key_counts_as_revoked_for_exposure_when_it_was_exposed_by_the_time_it_was_revoked(
    exposed: datetime | None, revoked: datetime | None, for_exposure: bool
) -> None:
    assert a_key(exposed_at=exposed, revoked_at=revoked).revoked_for_exposure is for_exposure


def test_a_later_exposure_keeps_the_first_exposure_time_that_decides_the_rule() -> None:
    first = keys.mark_exposed(a_key(), NOW)
    assert keys.mark_exposed(first, NOW + timedelta(days=1)) is first


def test_reactivating_within_the_window_clears_the_revocation_and_changes_nothing_else() -> None:
    key = a_key(expires_at=NOW + timedelta(days=30))
    at = NOW + REACTIVATION_WINDOW
    back = reactivate(revoke(key, NOW), at)
    assert back == dataclasses.replace(key, updated_at=at)
    assert back.status_at(at) is KeyStatus.ACTIVE


def test_reactivating_a_second_after_the_window_is_a_conflict() -> None:
    key = revoke(a_key(), NOW)
    with pytest.raises(Conflict, match=WINDOW_CLOSED):
        reactivate(key, NOW + REACTIVATION_WINDOW + timedelta(seconds=1))


def test_reactivating_a_revoked_key_without_a_revocation_time_is_a_conflict() -> None:
    with pytest.raises(Conflict, match=WINDOW_CLOSED):
        reactivate(a_key(status=KeyStatus.REVOKED), NOW)


@pytest.mark.parametrize(
    ("key", "status"),
    [
        pytest.param(a_key(), "active", id="active"),
        pytest.param(a_key(expires_at=NOW), "expired", id="expired-no-job-yet"),
        pytest.param(a_key(expires_at=NOW, status=KeyStatus.EXPIRED), "expired", id="expired-job-ran"),
    ],
)
def test_reactivating_a_key_that_is_not_revoked_is_a_conflict(key: ApiKey, status: str) -> None:
    with pytest.raises(Conflict, match=f"is {status}; only a revoked key can be reactivated"):
        reactivate(key, NOW)


def test_a_key_revoked_because_it_was_exposed_can_never_be_reactivated() -> None:
    key = revoke(keys.mark_exposed(a_key(), NOW), NOW)
    with pytest.raises(Conflict, match="revoked because it was exposed"):
        reactivate(key, NOW)


def test_a_key_exposed_after_it_was_revoked_can_still_be_reactivated() -> None:
    key = keys.mark_exposed(revoke(a_key(), NOW), NOW + timedelta(minutes=1))
    assert reactivate(key, NOW + timedelta(minutes=2)).status is KeyStatus.ACTIVE


def test_a_reactivated_key_keeps_its_expiry_so_an_expired_one_stays_expired() -> None:
    key = revoke(a_key(expires_at=NOW + timedelta(minutes=10)), NOW)
    at = NOW + timedelta(minutes=30)
    back = reactivate(key, at)
    assert back.expires_at == NOW + timedelta(minutes=10)
    assert back.status_at(at) is KeyStatus.EXPIRED


# --- refusals over HTTP ---------------------------------------------------------------------------


def refused(response: httpx.Response, path: str = "/api-keys") -> str:
    """The detail of an ``invalid_token`` refusal."""
    detail: str = error(response, 403, "invalid_token", path)["detail"]
    return detail


def wrong_secret(plaintext: str) -> str:
    """The same key id with other secret characters and a valid checksum: passes every check but the hash."""
    _pdl, _marker, literal, key_id, secret, _checksum = plaintext.split("_")
    changed = secret[:-3] + ("aaa" if secret[-3:] != "aaa" else "bbb")
    return credentials.format_api_key(SANDBOX, f"{literal}_{key_id}", changed)


async def test_a_revoked_key_is_refused_saying_when_it_was_revoked(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    clock.advance(minutes=5)
    revoked = await services.revoke_key(deps, key.id)
    clock.advance(minutes=1)
    detail = refused(await client.get("/api-keys", headers=bearer(plaintext)))
    assert revoked.revoked_at == clock() - timedelta(minutes=1)
    assert detail == f"This API key was revoked at {rfc3339(revoked.revoked_at)}."


async def test_an_expired_key_is_refused_saying_when_it_expired_before_any_job_runs(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(hours=1)
    _key, plaintext = await add_key(deps, alice, expires_at=expires)
    clock.advance(minutes=59, seconds=59)
    ok(await client.get("/api-keys", headers=bearer(plaintext)), "/api-keys")
    clock.advance(seconds=1)
    detail = refused(await client.get("/api-keys", headers=bearer(plaintext)))
    assert detail == f"This API key expired at {rfc3339(expires)}."


async def test_a_wrong_secret_for_a_revoked_key_gets_the_plain_detail(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    await services.revoke_key(deps, key.id)
    guess = wrong_secret(plaintext)
    assert credentials.parse_api_key(guess) is not None
    assert guess != plaintext
    assert refused(await client.get("/api-keys", headers=bearer(guess))) == PLAIN


async def test_an_unknown_key_gets_the_plain_detail(client: httpx.AsyncClient, alice: Member) -> None:
    unknown = credentials.format_api_key(SANDBOX, new_id("apikey"), "A" * 22)
    assert refused(await client.get("/api-keys", headers=bearer(unknown))) == PLAIN


async def test_another_accounts_revoked_key_id_with_ones_own_secret_gets_the_plain_detail(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, charlie: Member
) -> None:
    await services.revoke_key(deps, charlie.key_ids[SANDBOX])
    own_secret = alice.keys[SANDBOX].split("_")[4]
    probe = credentials.format_api_key(SANDBOX, charlie.key_ids[SANDBOX], own_secret)
    assert refused(await client.get("/api-keys", headers=bearer(probe))) == PLAIN
    # Charlie, who holds the key, is told.
    assert refused(await client.get("/api-keys", headers=charlie.auth())).startswith(
        "This API key was revoked"
    )


@pytest.fixture
async def hosts_client(deps: services.Deps) -> AsyncIterator[httpx.AsyncClient]:
    """The app with per-environment hosts, reached at the live host."""
    transport = httpx.ASGITransport(app=create_app(deps, HOSTS))
    async with httpx.AsyncClient(transport=transport, base_url="http://api.keyhouse.test") as client:
        yield client


async def test_a_revoked_key_on_the_other_environments_host_gets_the_plain_detail(
    hosts_client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    await services.revoke_key(deps, alice.key_ids[SANDBOX])
    assert refused(await hosts_client.get("/api-keys", headers=alice.auth(SANDBOX))) == PLAIN


# --- reactivation, the use case -------------------------------------------------------------------


async def key_events(deps: services.Deps, member: Member) -> list[tuple[EventType, str]]:
    async with deps.store.read() as tx:
        events = await tx.list_events(member.account_id, SANDBOX)
    return [(e.type, e.data["id"]) for e in events if e.type.startswith("api_key.")]


async def test_a_key_reactivated_within_the_window_works_again_on_the_next_request(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice, expires_at=clock() + timedelta(days=30))
    ok(await client.get("/api-keys", headers=bearer(plaintext)), "/api-keys")
    await services.revoke_key(deps, key.id)
    refused(await client.get("/api-keys", headers=bearer(plaintext)))
    clock.advance(minutes=60)
    back = await reactivate_key(deps, key.id)
    assert (back.status, back.revoked_at, back.updated_at) == (KeyStatus.ACTIVE, None, clock())
    assert back.expires_at == key.expires_at
    ok(await client.get("/api-keys", headers=bearer(plaintext)), "/api-keys")
    assert await services.get_key(deps, key.id) == dataclasses.replace(back, last_used_at=clock())


async def test_reactivation_writes_api_key_updated_after_the_revocation(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await add_key(deps, alice)
    await services.revoke_key(deps, key.id)
    clock.advance(minutes=1)
    await reactivate_key(deps, key.id)
    changes = [t for t, key_id in await key_events(deps, alice) if key_id == key.id]
    assert changes == [EventType.API_KEY_CREATED, EventType.API_KEY_REVOKED, EventType.API_KEY_UPDATED]
    async with deps.store.read() as tx:
        updated = [e for e in await tx.list_events(alice.account_id, SANDBOX) if e.type == "api_key.updated"]
    assert updated[0].data["status"] == "active"
    assert updated[0].occurred_at == clock()


async def test_reactivating_a_second_after_the_window_is_a_conflict_and_changes_nothing(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await add_key(deps, alice)
    revoked = await services.revoke_key(deps, key.id)
    clock.advance(minutes=60, seconds=1)
    with pytest.raises(Conflict, match=WINDOW_CLOSED) as excinfo:
        await reactivate_key(deps, key.id)
    assert (excinfo.value.code, excinfo.value.status) == ("conflict", 409)
    assert await services.get_key(deps, key.id) == revoked
    assert EventType.API_KEY_UPDATED not in [t for t, _ in await key_events(deps, alice)]


async def test_reactivating_an_active_key_is_a_conflict(deps: services.Deps, alice: Member) -> None:
    with pytest.raises(Conflict, match="is active"):
        await reactivate_key(deps, alice.key_ids[SANDBOX])


async def test_a_key_revoked_because_it_was_exposed_stays_revoked(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await add_key(deps, alice)
    async with deps.store.transaction() as tx:  # what an exposure report does: mark and revoke together
        await tx.update_key(revoke(keys.mark_exposed(key, clock()), clock()))
    clock.advance(seconds=1)
    with pytest.raises(Conflict, match="revoked because it was exposed"):
        await reactivate_key(deps, key.id)
    assert (await services.get_key(deps, key.id)).status is KeyStatus.REVOKED


async def test_a_reactivated_key_past_its_expiry_stays_expired_and_says_so(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(minutes=10)
    key, plaintext = await add_key(deps, alice, expires_at=expires)
    await services.revoke_key(deps, key.id)
    clock.advance(minutes=30)
    back = await reactivate_key(deps, key.id)
    assert back.status_at(clock()) is KeyStatus.EXPIRED
    assert refused(await client.get("/api-keys", headers=bearer(plaintext))) == (
        f"This API key expired at {rfc3339(expires)}."
    )


@pytest.mark.parametrize("key_id", ["apikey_" + "0" * 26, "not-an-id\x00"])
async def test_reactivating_an_unknown_key_is_not_found(deps: services.Deps, key_id: str) -> None:
    with pytest.raises(NotFound):
        await reactivate_key(deps, key_id)


# --- keys reactivate, the CLI ---------------------------------------------------------------------


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database: TestDatabase, store: SqlStore) -> Cli:
    """The CLI on the test's (emptied) database with the test pepper (as in test_cli)."""
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", database.url)
    monkeypatch.setenv("KEYHOUSE_PEPPER", TEST_PEPPER)
    return Cli(database)


def test_keys_reactivate_prints_the_key_as_keys_show_does_and_the_key_works_again(cli: Cli) -> None:
    created = cli.key(cli.account())
    succeeds("keys", "revoke", created["id"])
    assert not cli.verifies(created["key"])
    reactivated = succeeds("keys", "reactivate", created["id"])
    assert reactivated == succeeds("keys", "show", created["id"])
    assert (reactivated["id"], reactivated["status"]) == (created["id"], "active")
    assert reactivated["key"].endswith("****")
    assert cli.verifies(created["key"])


def test_keys_reactivate_of_an_active_key_exits_1_with_the_conflict_envelope(cli: Cli) -> None:
    created = cli.key(cli.account())
    error = fails("keys", "reactivate", created["id"], code="conflict")
    assert "only a revoked key can be reactivated" in error["detail"]


def test_keys_reactivate_of_an_unknown_key_is_not_found(cli: Cli) -> None:
    fails("keys", "reactivate", "apikey_" + "0" * 26, code="not_found")


def test_keys_reactivate_accepts_json() -> None:
    result = invoke("keys", "reactivate", "--help")
    assert result.exit_code == 0
    assert "--json" in result.stdout


# --- a known key with a secret that matches nothing -----------------------------------------------


async def test_wrong_secrets_for_a_real_key_id_cost_at_most_one_store_read_per_reload_interval(
    deps: services.Deps, alice: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The authenticator reads a known key again when no secret matches (a rotation made by another
    process may not have reached its cache yet), but not for every wrong guess in a burst."""
    real = alice.keys[Environment.SANDBOX]
    parsed = credentials.parse_api_key(real)
    assert parsed is not None
    await deps.authenticator.authenticate(real)  # writes last_used_at: the cache starts over
    await deps.authenticator.authenticate(real)  # cached now
    # the same key id with another secret, and a valid checksum: only the secret is wrong
    body = f"{real[: -len('_xxx') - 22]}{'A' * 22}"
    forged = f"{body}_{credentials.checksum(body)}"
    assert credentials.parse_api_key(forged) is not None
    reads = 0
    original = deps.store.read

    def counting_read() -> Any:
        nonlocal reads
        reads += 1
        return original()

    monkeypatch.setattr(deps.store, "read", counting_read)
    monkeypatch.setattr("keyhouse.services.auth.RELOAD_AFTER_SECONDS", 3600.0)
    for _ in range(20):
        with pytest.raises(InvalidToken):
            await deps.authenticator.authenticate(forged)
    assert reads == 0  # loaded moments ago: the burst is answered from the cache
    monkeypatch.setattr("keyhouse.services.auth.RELOAD_AFTER_SECONDS", 0.0)
    with pytest.raises(InvalidToken):
        await deps.authenticator.authenticate(forged)
    assert reads == 1  # past the interval: read once more, then refused
