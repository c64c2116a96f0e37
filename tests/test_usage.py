"""Key usage on every store: what the auth guard counts, how ``UsageRecorder`` writes it, and the
summary ``keyhouse keys usage`` prints; plus the CLI of rotatable keys (``keys create --rotatable``,
``keys rotate``) under the ``--json`` contract.

Counting happens in memory after the permission check (a refused request is never counted) and is
written by ``flush()`` as an upsert, so flushes add up; a flush that fails puts its counts back. A
background flush runs at most once per ``flush_interval``, and a server writes what it holds when it
stops (``keyhouse serve`` as a process, one worker or two).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import structlog

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import ServiceUnavailable
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import rfc3339
from keyhouse.domain.usage import NO_PERMISSION, UsageRow
from keyhouse.services.usage import key_usage
from keyhouse.store import Store, Transaction
from tests.conftest import TEST_PEPPER, FakeClock, Member
from tests.test_api import add_key, bearer, error, ok
from tests.test_cli import clear_keyhouse_env, fails, invoke, succeeds, verifies

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from keyhouse.store.sql import SqlStore
    from tests.conftest import TestDatabase
    from tests.servers import Keyhouse

pytest_plugins = ["tests.servers"]

SANDBOX = Environment.SANDBOX
KEYHOUSE = str(Path(sys.executable).with_name("keyhouse"))
FULL_KEY = re.compile(r"pdl_sdbx_apikey_([a-z0-9]{26})_[A-Za-z0-9]{22}_[A-Za-z0-9]{3}")
GRANTED = frozenset({Permission.API_KEY_READ, Permission.NOTIFICATION_READ, Permission.PRODUCT_READ})
NEVER = timedelta(days=10_000)
KEY = "/api-keys/{api_key_id}"


# --- helpers --------------------------------------------------------------------------------------


@pytest.fixture
def no_background_flush(deps: services.Deps) -> None:
    """Only the test flushes: moving the fake clock by days must not start one on its own."""
    deps.usage.flush_interval = NEVER


async def a_key(deps: services.Deps, member: Member) -> tuple[ApiKey, str]:
    return await add_key(deps, member, permissions=GRANTED, name="CRM")


async def stored(deps: services.Deps, key_id: str, since: date = date(2000, 1, 1)) -> list[UsageRow]:
    async with deps.store.read() as tx:
        return await tx.usage_of(key_id, since)


async def use(client: httpx.AsyncClient, key_id: str, secret: str) -> None:
    """Five requests: two need api_key.read, one notification.read, two none (itself, the API root)."""
    for path in ("/api-keys", "/api-keys", "/events", f"/api-keys/{key_id}", "/"):
        response = await client.get(path, headers=bearer(secret))
        assert response.status_code == 200, response.text


class BusyStore:
    """The real store, except that every write transaction finds the database busy (as SQLite's
    ``busy_timeout`` running out looks to the services)."""

    def __init__(self, real: Store) -> None:
        self.real = real
        self.attempts = 0

    @asynccontextmanager
    async def _busy(self) -> AsyncIterator[Transaction]:
        self.attempts += 1
        raise ServiceUnavailable("The database is busy. Retry the request shortly.")
        yield  # pragma: no cover - never reached; makes this a generator

    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        return self._busy()

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        return self.real.read()

    def change_marker(self) -> int | None:
        return self.real.change_marker()

    async def ping(self) -> bool:
        return await self.real.ping()

    async def start(self) -> None:
        await self.real.start()

    async def close(self) -> None:
        await self.real.close()


async def eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Until ``await check()`` is true (a background flush is a task of its own); 5 s at most."""
    for _ in range(500):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("never happened")


# --- counting -------------------------------------------------------------------------------------


@pytest.mark.usefixtures("no_background_flush")
async def test_requests_are_counted_per_day_and_permission_once_flushed(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)
    assert await stored(deps, key.id) == []  # in memory until a flush
    await deps.usage.flush()

    today = clock().date()
    assert await stored(deps, key.id) == [
        UsageRow(today, NO_PERMISSION, 2),
        UsageRow(today, "api_key.read", 2),
        UsageRow(today, "notification.read", 1),
    ]
    clock.advance(days=1)
    await client.get("/events", headers=bearer(secret))
    await deps.usage.flush()
    assert (await stored(deps, key.id))[-1] == UsageRow(today + timedelta(days=1), "notification.read", 1)
    assert len(await stored(deps, key.id)) == 4
    # The cast's own requests are theirs, not this key's.
    await client.get("/api-keys", headers=alice.auth())
    await deps.usage.flush()
    assert len(await stored(deps, key.id)) == 4


@pytest.mark.usefixtures("no_background_flush")
async def test_the_summary_gives_requests_per_day_permissions_used_and_granted_but_unused(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, secret = await a_key(deps, alice)
    first_day = clock().date()
    await use(client, key.id, secret)
    clock.advance(days=2)
    await client.get("/api-keys", headers=bearer(secret))
    await deps.usage.flush()

    assert await key_usage(deps, key, 30) == {
        "api_key_id": key.id,
        "since": (clock().date() - timedelta(days=29)).isoformat(),
        "days": [
            {"day": first_day.isoformat(), "requests": 5},
            {"day": (first_day + timedelta(days=2)).isoformat(), "requests": 1},
        ],
        "requests": 6,
        "permissions_used": ["api_key.read", "notification.read"],
        "granted_unused": ["product.read"],
    }
    # A one-day window holds only today: notification.read went unused in it.
    assert await key_usage(deps, key, 1) == {
        "api_key_id": key.id,
        "since": clock().date().isoformat(),
        "days": [{"day": clock().date().isoformat(), "requests": 1}],
        "requests": 1,
        "permissions_used": ["api_key.read"],
        "granted_unused": ["notification.read", "product.read"],
    }


async def test_a_key_never_used_has_every_permission_granted_and_unused(
    deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, _ = await a_key(deps, alice)
    await deps.usage.flush()  # nothing pending: nothing written, nothing fails
    assert await key_usage(deps, key, 30) == {
        "api_key_id": key.id,
        "since": (clock().date() - timedelta(days=29)).isoformat(),
        "days": [],
        "requests": 0,
        "permissions_used": [],
        "granted_unused": ["api_key.read", "notification.read", "product.read"],
    }


async def test_flushing_twice_adds_up(client: httpx.AsyncClient, deps: services.Deps, alice: Member) -> None:
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)
    await deps.usage.flush()
    await use(client, key.id, secret)
    await client.get("/api-keys", headers=bearer(secret))
    await deps.usage.flush()
    await deps.usage.flush()  # nothing new: changes nothing
    assert {row.permission: row.requests for row in await stored(deps, key.id)} == {
        NO_PERMISSION: 4,
        "api_key.read": 5,
        "notification.read": 2,
    }


async def test_two_recorders_flushing_the_same_rows_add_up(
    client: httpx.AsyncClient, database: TestDatabase, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    """Two server processes count the same key; each upserts its own share."""
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)
    store = database.open()
    await store.start()
    try:
        other = services.Deps(store=store, peppers=deps.peppers, clock=clock)
        for _ in range(3):
            other.usage.record(key.id, Permission.API_KEY_READ)
        await asyncio.gather(deps.usage.flush(), other.usage.flush())
    finally:
        await store.close()
    assert {row.permission: row.requests for row in await stored(deps, key.id)} == {
        NO_PERMISSION: 2,
        "api_key.read": 5,
        "notification.read": 1,
    }


async def test_counts_survive_a_failed_flush_and_go_out_with_the_next(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)
    real = deps.store
    busy = BusyStore(real)
    deps.store = busy
    try:
        with pytest.raises(ServiceUnavailable):
            await deps.usage.flush()
        with pytest.raises(ServiceUnavailable):
            await deps.usage.flush()  # still there, still failing
    finally:
        deps.store = real
    assert busy.attempts == 2
    assert await stored(deps, key.id) == []

    await client.get("/events", headers=bearer(secret))
    await deps.usage.flush()
    assert {row.permission: row.requests for row in await stored(deps, key.id)} == {
        NO_PERMISSION: 2,
        "api_key.read": 2,
        "notification.read": 2,
    }
    await deps.usage.flush()
    assert sum(row.requests for row in await stored(deps, key.id)) == 6  # put back once, not twice


async def test_a_background_flush_runs_at_most_once_per_interval_and_logs_a_failure(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    deps.usage.flush_interval = timedelta(seconds=60)
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)  # within the first interval: nothing written
    await asyncio.sleep(0.05)
    assert await stored(deps, key.id) == []

    clock.advance(seconds=60)
    real = deps.store
    deps.store = BusyStore(real)
    try:
        with structlog.testing.capture_logs() as logs:
            deps.usage.record(key.id, Permission.PRODUCT_READ)  # the interval is up: a flush starts

            async def logged() -> bool:
                return any(entry["event"] == "usage flush failed" for entry in logs)

            await eventually(logged)
    finally:
        deps.store = real
    assert [e["log_level"] for e in logs if e["event"] == "usage flush failed"] == ["warning"]
    assert await stored(deps, key.id) == []

    clock.advance(seconds=60)
    await client.get("/api-keys", headers=bearer(secret))  # the next interval: this flush succeeds

    async def written() -> bool:
        return sum(row.requests for row in await stored(deps, key.id)) == 7

    await eventually(written)

    clock.advance(seconds=59)
    await client.get("/api-keys", headers=bearer(secret))  # within the interval: kept in memory
    await asyncio.sleep(0.05)
    assert sum(row.requests for row in await stored(deps, key.id)) == 7
    await deps.usage.flush()
    assert sum(row.requests for row in await stored(deps, key.id)) == 8


@pytest.mark.usefixtures("no_background_flush")
async def test_a_request_refused_for_a_missing_permission_is_not_counted(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, secret = await add_key(deps, alice, permissions=frozenset({Permission.PRODUCT_READ}))
    other = alice.key_ids[SANDBOX]
    for url, path in (("/api-keys", "/api-keys"), ("/events", "/events"), (f"/api-keys/{other}", KEY)):
        error(await client.get(url, headers=bearer(secret)), 403, "forbidden", path)
    error(await client.get("/api-keys", headers=bearer(secret + "x")), 403, "invalid_token", "/api-keys")
    await deps.usage.flush()
    assert await stored(deps, key.id) == []

    ok(await client.get(f"/api-keys/{key.id}", headers=bearer(secret)), KEY)
    await deps.usage.flush()
    assert await stored(deps, key.id) == [UsageRow(deps.clock().date(), NO_PERMISSION, 1)]


# --- the CLI --------------------------------------------------------------------------------------


def run_cli(database: TestDatabase, *args: str) -> subprocess.CompletedProcess[str]:
    """``keyhouse ARGS`` as its own process on the test database (as an operator would run it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(KEYHOUSE_DATABASE_URL=database.url, KEYHOUSE_PEPPER=TEST_PEPPER)
    return subprocess.run([KEYHOUSE, *args], env=env, capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.slow
async def test_keys_usage_in_its_own_process_prints_the_summary_as_one_json_object(
    client: httpx.AsyncClient, database: TestDatabase, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    clock.now = datetime.now(UTC)  # the CLI's window ends today, by the real clock
    deps.usage.flush_interval = NEVER
    key, secret = await a_key(deps, alice)
    await use(client, key.id, secret)
    await deps.usage.flush()
    today = clock().date()

    done = await asyncio.to_thread(run_cli, database, "keys", "usage", key.id, "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary.pop("since") in {
        (day - timedelta(days=29)).isoformat() for day in (today, datetime.now(UTC).date())
    }  # midnight may pass while the CLI starts
    assert summary == {
        "api_key_id": key.id,
        "days": [{"day": today.isoformat(), "requests": 5}],
        "requests": 5,
        "permissions_used": ["api_key.read", "notification.read"],
        "granted_unused": ["product.read"],
    }

    unknown = await asyncio.to_thread(run_cli, database, "keys", "usage", "apikey_" + "0" * 26, "--json")
    assert unknown.returncode == 1
    assert json.loads(unknown.stdout)["error"]["code"] == "not_found"


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2])
def test_a_server_writes_the_counts_it_holds_when_it_stops(keyhouse: Keyhouse, workers: int) -> None:
    alice = keyhouse.member(permissions=GRANTED)
    server = keyhouse.serve(workers=workers)
    for path in ("/api-keys", "/api-keys", "/events", f"/api-keys/{alice.key_id}", "/"):
        with server.client() as client:  # a new connection each: with two workers, both answer some
            response = client.get(path, headers=alice.auth)
        assert response.status_code == 200, response.text
    assert keyhouse.cli_json("keys", "usage", alice.key_id)["requests"] == 0  # a minute has not passed

    os.killpg(server.process.pid, signal.SIGTERM)
    # uvicorn re-raises the SIGTERM it handled once it has shut down gracefully (the supervisor of
    # several workers exits 0): either way the shutdown hooks ran.
    assert server.process.wait(15) in {0, -signal.SIGTERM}, server.output()
    summary = keyhouse.cli_json("keys", "usage", alice.key_id)
    assert (summary["requests"], summary["permissions_used"], summary["granted_unused"]) == (
        5,
        ["api_key.read", "notification.read"],
        ["product.read"],
    )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database: TestDatabase, store: SqlStore) -> TestDatabase:
    """The CLI (through ``CliRunner``) on the test's emptied database with the test pepper."""
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", database.url)
    monkeypatch.setenv("KEYHOUSE_PEPPER", TEST_PEPPER)
    return database


def create_key(*options: str) -> dict[str, Any]:
    account = succeeds("accounts", "create", "--name", "Alice's shop")["id"]
    args = ["--account", account, "--env", "sandbox", "--name", "CRM", "--permission", "product.read"]
    return succeeds("keys", "create", *args, *options)


def accepted(database: TestDatabase, key: str) -> bool:
    """Would a server accept ``key`` now (with the real clock)? A first use completes a rotation."""
    return asyncio.run(verifies(database.open(), key, TEST_PEPPER))


def test_keys_create_rotatable_makes_a_rotatable_key_and_without_the_flag_it_is_not(
    cli: TestDatabase,
) -> None:
    rotatable = create_key("--rotatable")
    assert rotatable["rotatable"] is True
    assert FULL_KEY.fullmatch(rotatable["key"])
    assert create_key()["rotatable"] is False


def test_keys_rotate_prints_the_new_secret_in_full_once_and_cancels_a_pending_rotation(
    cli: TestDatabase,
) -> None:
    key = create_key("--rotatable")
    first = succeeds("keys", "rotate", key["id"])
    match = FULL_KEY.fullmatch(first["new_key"])
    assert match is not None, first
    assert match.group(1) == key["id"].removeprefix("apikey_")
    assert (first["api_key_id"], first["status"], first["grace_period_seconds"]) == (
        key["id"],
        "pending",
        300,
    )
    assert first["new_key"] != key["key"]

    expiry = rfc3339(datetime.now(UTC) + timedelta(days=90))
    second = succeeds(
        "keys", "rotate", key["id"], "--grace-period-seconds", "0", "--new-key-expires-at", expiry
    )
    assert (second["grace_period_seconds"], second["new_key_expires_at"]) == (0, expiry)
    assert not accepted(cli, first["new_key"])  # canceled: refused at once
    assert accepted(cli, key["key"])  # pending: the old secret still works
    assert accepted(cli, second["new_key"])  # first use: completes, grace 0
    assert not accepted(cli, key["key"])

    shown = invoke("keys", "show", key["id"], "--json")
    assert shown.exit_code == 0
    assert json.loads(shown.stdout)["expires_at"] == expiry
    for secret in (key["key"], first["new_key"], second["new_key"]):
        assert secret not in shown.stdout


def test_keys_rotate_without_json_prints_only_the_new_secret_on_stdout(cli: TestDatabase) -> None:
    key = create_key("--rotatable")
    result = invoke("keys", "rotate", key["id"], "--grace-period-seconds", "60")
    assert result.exit_code == 0, result.stderr
    assert FULL_KEY.fullmatch(result.stdout.strip())
    assert "shown only once" in result.stderr
    assert "60 s" in result.stderr


@pytest.mark.parametrize(
    ("options", "code"),
    [
        pytest.param(["--grace-period-seconds", "86401"], "invalid_field", id="grace-over-a-day"),
        pytest.param(["--grace-period-seconds", "-1"], "invalid_field", id="negative-grace"),
        pytest.param(["--new-key-expires-at", "2000-01-01T00:00:00Z"], "invalid_field", id="past-expiry"),
        pytest.param(["--new-key-expires-at", "soon"], "invalid_field", id="garbage-expiry"),
    ],
)
def test_keys_rotate_refuses_bad_options_with_the_paddle_error(
    cli: TestDatabase, options: list[str], code: str
) -> None:
    key = create_key("--rotatable")
    fails("keys", "rotate", key["id"], *options, code=code)


def test_keys_rotate_refuses_a_key_not_created_rotatable_and_an_unknown_key(cli: TestDatabase) -> None:
    key = create_key()
    assert "not created as rotatable" in fails("keys", "rotate", key["id"], code="conflict")["detail"]
    fails("keys", "rotate", "apikey_" + "0" * 26, code="not_found")
    assert accepted(cli, key["key"])


@pytest.mark.parametrize("days", ["0", "401", "many"])
def test_keys_usage_refuses_a_window_outside_1_to_400_days_as_a_usage_error(
    cli: TestDatabase, days: str
) -> None:
    key = create_key()
    result = invoke("keys", "usage", key["id"], "--days", days, "--json")
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""


def test_keys_usage_through_the_cli_runner_prints_an_empty_summary_for_an_unused_key(
    cli: TestDatabase,
) -> None:
    key = create_key()
    before = datetime.now(UTC).date()
    summary = succeeds("keys", "usage", key["id"], "--days", "7")
    after = datetime.now(UTC).date()
    assert summary.pop("since") in {(day - timedelta(days=6)).isoformat() for day in (before, after)}
    assert summary == {
        "api_key_id": key["id"],
        "days": [],
        "requests": 0,
        "permissions_used": [],
        "granted_unused": ["product.read"],
    }
