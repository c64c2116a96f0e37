"""Use cases. Each is a short async function over one transaction of the store.

Services never know which database is behind ``Deps.store`` and never read configuration: what they
need (clock, peppers, tuning) arrives in :class:`Deps`, built by ``bootstrap``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from keyhouse.domain import credentials, keys
from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.errors import InvalidField, InvalidToken, NotFound
from keyhouse.domain.ids import new_id
from keyhouse.domain.keys import ApiKey, SecretHash
from keyhouse.domain.permissions import Permission, parse_permissions
from keyhouse.domain.times import utc_now
from keyhouse.store import Page, PageRequest, Store

DEMO_ACCOUNT_NAME = "keyhouse demo"
DEMO_KEY_NAME = "Sandbox demo key (all permissions)"


@dataclass(frozen=True, slots=True)
class Peppers:
    """The current pepper hashes new secrets; older ones still verify what they hashed."""

    current: Pepper
    previous: tuple[Pepper, ...] = ()

    def by_id(self, pepper_id: str) -> Pepper | None:
        for pepper in (self.current, *self.previous):
            if pepper.id == pepper_id:
                return pepper
        return None

    def all(self) -> tuple[Pepper, ...]:
        return (self.current, *self.previous)


@dataclass(slots=True)
class Deps:
    store: Store
    peppers: Peppers
    clock: Callable[[], datetime] = utc_now
    #: ``last_used_at`` is written at most this often per key (Paddle promises 1-hour accuracy).
    touch_interval: timedelta = timedelta(minutes=5)
    authenticator: Authenticator = field(init=False)

    def __post_init__(self) -> None:
        self.authenticator = Authenticator(self)


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
) -> tuple[ApiKey, str]:
    """A new key and its plaintext, which exists only in this return value."""
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
    )
    await _add_key(deps, key, digest)
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
    async with deps.store.read() as tx:
        if await tx.find_key_by_digest(_legacy_digests(deps, plaintext)) is not None:
            raise InvalidField.on("key", "this legacy key is already imported")
    await _add_key(deps, key, digest)
    return key, plaintext


async def _add_key(deps: Deps, key: ApiKey, digest: SecretHash) -> None:
    async with deps.store.transaction() as tx:
        if await tx.get_account(key.account_id) is None:
            raise NotFound(f"Account {key.account_id} not found.")
        await tx.add_key(key, digest)


async def get_key(
    deps: Deps, key_id: str, *, account_id: str | None = None, environment: Environment | None = None
) -> ApiKey:
    """A key by id; with a scope, a key outside it is "not found" (no existence leak)."""
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
    return revoked


# --- authentication -------------------------------------------------------------------------------


def _legacy_digests(deps: Deps, secret: str) -> list[bytes]:
    return [credentials.hash_secret(p, secret) for p in deps.peppers.all()]


@dataclass(slots=True)
class _Cached:
    key: ApiKey
    secrets: list[SecretHash]


class Authenticator:
    """Turns a presented API key into the active key it names, or raises ``InvalidToken``.

    Verification is a per-process cache hit plus one HMAC in the common case. The cache is dropped
    whenever ``store.change_marker()`` moves, which any process's commit to the credential tables
    does, so a revoke or expiry made elsewhere (the CLI included) is seen on the very next request.
    """

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._marker: int | None = None
        self._by_id: dict[str, _Cached] = {}
        self._legacy_ids: dict[bytes, str] = {}

    def _fresh_cache(self) -> bool:
        marker = self.deps.store.change_marker()
        if marker is None or marker != self._marker:
            self._by_id.clear()
            self._legacy_ids.clear()
            self._marker = marker
        return marker is not None

    async def authenticate(self, credential: str, expected: Environment | None = None) -> ApiKey:
        """``expected`` is the environment of the host the request came to, when hosts are configured."""
        cacheable = self._fresh_cache()
        parsed = credentials.parse_api_key(credential)
        if parsed is not None:
            key_id: str | None = parsed.key_id
        elif credentials.is_legacy_key(credential):
            key_id = await self._legacy_key_id(credential, cacheable)
        else:
            key_id = None
        entry = None if key_id is None else await self._load(key_id, cacheable)
        now = self.deps.clock()
        if entry is None or not self._secret_ok(entry.secrets, credential, now):
            raise InvalidToken()
        key = entry.key
        if parsed is not None and parsed.environment is not key.environment:
            raise InvalidToken()
        if key.status_at(now) is not keys.KeyStatus.ACTIVE or (
            expected is not None and expected is not key.environment
        ):
            raise InvalidToken()
        if key.last_used_at is None or now - key.last_used_at >= self.deps.touch_interval:
            entry.key = replace(key, last_used_at=now)
            async with self.deps.store.transaction() as tx:
                await tx.touch_key(key.id, now)
        return entry.key

    def _secret_ok(self, stored: list[SecretHash], credential: str, now: datetime) -> bool:
        ok = False
        for secret in stored:
            pepper = self.deps.peppers.by_id(secret.pepper_id)
            # No early exit: the work done does not depend on which secret matched.
            if pepper is not None and secret.valid_at(now):
                ok |= credentials.secret_matches(pepper, credential, secret.digest)
        return ok

    async def _legacy_key_id(self, credential: str, cacheable: bool) -> str | None:
        digests = _legacy_digests(self.deps, credential)
        for digest in digests:
            if digest in self._legacy_ids:
                return self._legacy_ids[digest]
        async with self.deps.store.read() as tx:
            key_id = await tx.find_key_by_digest(digests)
        if key_id is not None and cacheable:
            self._legacy_ids[digests[0]] = key_id
        return key_id

    async def _load(self, key_id: str, cacheable: bool) -> _Cached | None:
        entry = self._by_id.get(key_id)
        if entry is not None:
            return entry
        async with self.deps.store.read() as tx:
            key = await tx.get_key(key_id)
            secrets = [] if key is None else await tx.secrets_of(key_id)
        if key is None:
            return None
        entry = _Cached(key, secrets)
        if cacheable:
            self._by_id[key_id] = entry
        return entry


# --- demo data ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Seeded:
    account: Account
    key: ApiKey
    plaintext: str | None
    created: bool


async def seed(deps: Deps, *, new_key: bool = False) -> Seeded:
    """Idempotent demo data: one account with a sandbox key holding every permission.

    The key's plaintext is returned only when this call made it (first run, or ``new_key``).
    """
    accounts = [a for a in await list_accounts(deps) if a.name == DEMO_ACCOUNT_NAME]
    account = accounts[0] if accounts else await create_account(deps, DEMO_ACCOUNT_NAME)
    if accounts and not new_key:
        page = await list_keys(deps, account.id, Environment.SANDBOX, PageRequest(None, 200, False))
        demo = [k for k in page.items if k.name == DEMO_KEY_NAME and k.status_at(deps.clock()) == "active"]
        if demo:
            return Seeded(account, demo[0], None, created=False)
    key, plaintext = await create_key(
        deps,
        account_id=account.id,
        environment=Environment.SANDBOX,
        name=DEMO_KEY_NAME,
        description="Made by `keyhouse seed` for local use.",
        permissions=frozenset(Permission),
    )
    return Seeded(account, key, plaintext, created=not accounts)
