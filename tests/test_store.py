"""The store contract, run against every store (SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from keyhouse.domain import keys
from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.ids import new_id
from keyhouse.domain.permissions import Permission
from keyhouse.store import PageRequest
from keyhouse.store.sql import SqlStore
from tests.conftest import FakeClock


async def _account(store: SqlStore, clock: FakeClock) -> Account:
    account = Account(id=new_id("acc"), name="Alice's shop", created_at=clock())
    async with store.transaction() as tx:
        await tx.add_account(account)
    return account


def _issue(
    account: Account, clock: FakeClock, pepper: Pepper, **overrides: object
) -> tuple[keys.ApiKey, str, keys.SecretHash]:
    args: dict[str, object] = {
        "account_id": account.id,
        "environment": Environment.SANDBOX,
        "name": "CRM",
        "description": None,
        "permissions": frozenset({Permission.PRODUCT_READ}),
        "expires_at": None,
        "rotatable": False,
        "now": clock(),
        "pepper": pepper,
    }
    args.update(overrides)
    return keys.issue_key(**args)  # type: ignore[arg-type]


async def test_a_key_round_trips_with_every_field_intact(
    store: SqlStore, clock: FakeClock, pepper: Pepper
) -> None:
    account = await _account(store, clock)
    key, _, digest = _issue(account, clock, pepper, expires_at=clock() + timedelta(days=3), description="d")
    async with store.transaction() as tx:
        await tx.add_key(key, digest)
    async with store.read() as tx:
        assert await tx.get_key(key.id) == key
        assert await tx.secrets_of(key.id) == [digest]


async def test_a_legacy_key_keeps_null_permissions_and_is_found_by_its_digest(
    store: SqlStore, clock: FakeClock, pepper: Pepper
) -> None:
    account = await _account(store, clock)
    key, _, digest = _issue(account, clock, pepper, permissions=None)
    async with store.transaction() as tx:
        await tx.add_key(key, digest)
    async with store.read() as tx:
        loaded = await tx.get_key(key.id)
        assert loaded is not None
        assert loaded.permissions is None
        assert await tx.find_key_by_digest([b"\0" * 32, digest.digest]) == key.id
        assert await tx.find_key_by_digest([b"\1" * 32]) is None


async def test_a_failed_transaction_leaves_nothing_behind(store: SqlStore, clock: FakeClock) -> None:
    account = Account(id=new_id("acc"), name="Ghost", created_at=clock())
    with pytest.raises(RuntimeError):  # noqa: PT012 - the block is the unit of work under test
        async with store.transaction() as tx:
            await tx.add_account(account)
            raise RuntimeError("boom")
    async with store.read() as tx:
        assert await tx.get_account(account.id) is None


async def test_pages_walk_every_key_once_in_either_order(
    store: SqlStore, clock: FakeClock, pepper: Pepper
) -> None:
    account = await _account(store, clock)
    made = []
    async with store.transaction() as tx:
        for _ in range(5):
            key, _, digest = _issue(account, clock, pepper)
            await tx.add_key(key, digest)
            made.append(key.id)
    for descending in (False, True):
        seen, after = [], None
        while True:
            async with store.read() as tx:
                page = await tx.list_keys(account.id, Environment.SANDBOX, PageRequest(after, 2, descending))
            assert page.estimated_total == 5
            seen += [k.id for k in page.items]
            if not page.has_more:
                break
            after = page.items[-1].id
        assert seen == sorted(made, reverse=descending)


async def test_keys_of_another_environment_are_not_listed(
    store: SqlStore, clock: FakeClock, pepper: Pepper
) -> None:
    account = await _account(store, clock)
    key, _, digest = _issue(account, clock, pepper, environment=Environment.LIVE)
    async with store.transaction() as tx:
        await tx.add_key(key, digest)
    async with store.read() as tx:
        page = await tx.list_keys(account.id, Environment.SANDBOX, PageRequest(None, 50, False))
    assert page.items == []
    assert page.estimated_total == 0


async def test_touch_only_moves_last_used_forward(store: SqlStore, clock: FakeClock, pepper: Pepper) -> None:
    account = await _account(store, clock)
    key, _, digest = _issue(account, clock, pepper)
    async with store.transaction() as tx:
        await tx.add_key(key, digest)
        await tx.touch_key(key.id, clock() + timedelta(hours=1))
        await tx.touch_key(key.id, clock())
    async with store.read() as tx:
        loaded = await tx.get_key(key.id)
    assert loaded is not None
    assert loaded.last_used_at == clock() + timedelta(hours=1)


async def test_the_change_marker_moves_when_a_credential_changes(
    store: SqlStore, clock: FakeClock, pepper: Pepper
) -> None:
    account = await _account(store, clock)
    await asyncio.sleep(0.05)
    before = store.change_marker()
    assert before is not None
    key, _, digest = _issue(account, clock, pepper)
    async with store.transaction() as tx:
        await tx.add_key(key, digest)
    for _ in range(100):  # PostgreSQL delivers NOTIFY asynchronously, within milliseconds
        if store.change_marker() != before:
            break
        await asyncio.sleep(0.01)
    assert store.change_marker() != before
