"""Accounts and API keys: creating, listing, reading, revoking and reactivating them."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from keyhouse.domain import keys
from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.errors import InvalidField, NotFound
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.ids import is_id, new_id
from keyhouse.domain.keys import ApiKey, SecretHash
from keyhouse.domain.permissions import Permission, parse_permissions
from keyhouse.services import events
from keyhouse.services.auth import legacy_digests
from keyhouse.services.deps import Deps
from keyhouse.store import Page, PageRequest, Transaction

# --- accounts -------------------------------------------------------------------------------------


async def create_account(deps: Deps, name: str) -> Account:
    name = name.strip()
    if not 1 <= len(name) <= 150:
        raise InvalidField.on("name", "length must be between 1 and 150")
    account = Account(id=new_id("acc"), name=name, created_at=deps.clock())
    async with deps.store.transaction() as tx:
        await tx.add_account(account)
    return account


async def list_accounts(deps: Deps) -> list[Account]:
    async with deps.store.read() as tx:
        return await tx.list_accounts()


async def get_account(deps: Deps, account_id: str) -> Account:
    async with deps.store.read() as tx:
        account = await tx.get_account(account_id)
    if account is None:
        raise NotFound(f"Account {account_id} not found.")
    return account


# --- API keys -------------------------------------------------------------------------------------


def resolve_permissions(names: Iterable[str], *, all_permissions: bool) -> frozenset[Permission]:
    """Named permissions, or a snapshot of the whole catalogue (never a wildcard)."""
    granted, unknown = parse_permissions(names)
    if unknown:
        raise InvalidField.on("permissions", f"unknown permission(s): {', '.join(unknown)}")
    if all_permissions:
        return frozenset(Permission)
    if not granted:
        raise InvalidField.on("permissions", "at least one permission is required")
    return granted


async def create_key(
    deps: Deps,
    *,
    account_id: str,
    environment: Environment,
    name: str,
    permissions: frozenset[Permission],
    description: str | None = None,
    expires_at: datetime | None = None,
    rotatable: bool = False,
    installation_id: str | None = None,
    tx: Transaction | None = None,
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which exists only in this return value.

    Pass ``tx`` to make the key part of a larger unit of work (installing an integration).
    """
    key, plaintext, digest = keys.issue_key(
        account_id=account_id,
        environment=environment,
        name=name,
        description=description,
        permissions=permissions,
        expires_at=expires_at,
        rotatable=rotatable,
        now=deps.clock(),
        pepper=deps.peppers.current,
        installation_id=installation_id,
    )
    if tx is not None:
        await add_key(deps, tx, key, digest)
    else:
        async with deps.store.transaction() as own:
            await add_key(deps, own, key, digest)
    return key, plaintext


async def import_legacy_key(
    deps: Deps, *, account_id: str, environment: Environment, name: str, secret: str | None
) -> tuple[ApiKey, str]:
    """Register a pre-2025 Paddle key (or a new one of that shape): only its hash is stored."""
    key, plaintext, digest = keys.issue_key(
        account_id=account_id,
        environment=environment,
        name=name,
        description=None,
        permissions=None,
        expires_at=None,
        rotatable=False,
        now=deps.clock(),
        pepper=deps.peppers.current,
        legacy_secret=secret,
    )
    async with deps.store.transaction() as tx:
        if await tx.find_key_by_digest(legacy_digests(deps, plaintext)) is not None:
            raise InvalidField.on("key", "this legacy key is already imported")
        await add_key(deps, tx, key, digest)
    return key, plaintext


async def add_key(deps: Deps, tx: Transaction, key: ApiKey, digest: SecretHash) -> None:
    if await tx.get_account(key.account_id) is None:
        raise NotFound(f"Account {key.account_id} not found.")
    await tx.add_key(key, digest)
    await key_event(deps, tx, EventType.API_KEY_CREATED, key)
    # A key born with less than 7 days to live gets its expiring notice at once (and only once).
    noticed, emitted = keys.expiry_work(key, key.created_at)
    if emitted:
        await tx.update_key(noticed)
        await key_event(deps, tx, EventType.API_KEY_EXPIRING, noticed)


async def run_expiry(deps: Deps, batch: int = 500) -> int:
    """The expiry job (run by ``keyhouse worker``): ``api_key.expiring`` once, 7 days ahead, and
    ``api_key.expired`` with the status change. Refusal does not wait for it: a key is refused from
    the first second after ``expires_at`` whether or not this has run. Returns the keys changed."""
    changed = 0
    while True:
        now = deps.clock()
        async with deps.store.transaction() as tx:
            due = await tx.keys_near_expiry(now, now + keys.EXPIRING_NOTICE, batch)
            handled = 0
            for key in due:
                after, emitted = keys.expiry_work(key, now)
                if after is key:
                    continue
                handled += 1
                await tx.update_key(after)
                for name in emitted:
                    await key_event(deps, tx, EXPIRY_EVENTS[name], after)
        changed += handled
        if handled == 0 or len(due) < batch:
            return changed


EXPIRY_EVENTS = {"expiring": EventType.API_KEY_EXPIRING, "expired": EventType.API_KEY_EXPIRED}


async def key_event(deps: Deps, tx: Transaction, type_: EventType, key: ApiKey) -> None:
    now = deps.clock()
    await events.record(
        tx,
        new_event(
            type_,
            keys.to_wire(key, now),
            account_id=key.account_id,
            environment=key.environment,
            installation_id=key.installation_id,
            now=now,
        ),
    )


async def get_key(
    deps: Deps, key_id: str, *, account_id: str | None = None, environment: Environment | None = None
) -> ApiKey:
    """A key by id; with a scope, a key outside it is "not found" (no existence leak)."""
    if not is_id("apikey", key_id):  # garbage (a NUL byte, say) never reaches the database
        raise NotFound(f"API key {key_id} not found.")
    async with deps.store.read() as tx:
        key = await tx.get_key(key_id)
    if key is None or (
        account_id is not None and (key.account_id, key.environment) != (account_id, environment)
    ):
        raise NotFound(f"API key {key_id} not found.")
    return key


async def list_keys(deps: Deps, account_id: str, environment: Environment, page: PageRequest) -> Page[ApiKey]:
    async with deps.store.read() as tx:
        return await tx.list_keys(account_id, environment, page)


async def revoke_key(deps: Deps, key_id: str) -> ApiKey:
    async with deps.store.transaction() as tx:
        key = await tx.get_key(key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found.")
        revoked = keys.revoke(key, deps.clock())
        if revoked is not key:
            await tx.update_key(revoked)
            await key_event(deps, tx, EventType.API_KEY_REVOKED, revoked)
    return revoked


async def reactivate_key(deps: Deps, key_id: str) -> ApiKey:
    """Undo a revocation within the window (see :func:`keyhouse.domain.keys.reactivate`)."""
    if not is_id("apikey", key_id):
        raise NotFound(f"API key {key_id} not found.")
    async with deps.store.transaction() as tx:
        key = await tx.get_key(key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found.")
        reactivated = keys.reactivate(key, deps.clock())
        await tx.update_key(reactivated)
        await key_event(deps, tx, EventType.API_KEY_UPDATED, reactivated)
    return reactivated
