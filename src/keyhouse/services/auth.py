"""Authentication: a presented credential in, the key it names out, from a per-process cache."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from keyhouse.domain import credentials, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import InvalidToken
from keyhouse.domain.keys import ApiKey, SecretHash
from keyhouse.domain.times import rfc3339
from keyhouse.services.caches import ChangeCache

if TYPE_CHECKING:
    from keyhouse.services.deps import Deps


def legacy_digests(deps: Deps, secret: str) -> list[bytes]:
    return [credentials.hash_secret(p, secret) for p in deps.peppers.all()]


@dataclass(slots=True)
class _Cached:
    key: ApiKey
    secrets: list[SecretHash]
    #: Rotations waiting for their secret's first use (which completes them).
    pending_rotations: frozenset[str] = frozenset()
    loaded_at: float = field(default_factory=time.monotonic)


#: A known key presented with a secret that matches nothing is read again from the store at most this
#: often: enough to catch a rotation another process just made, too seldom for wrong guesses at a
#: real key id to become a database load.
RELOAD_AFTER_SECONDS = 0.05


class Authenticator:
    """Turns a presented API key into the active key it names, or raises ``InvalidToken``.

    The refusal says why (revoked, expired) only to a caller whose secret matched the key; an unknown
    key, a wrong secret or another environment's host gets the plain default detail.

    Verification is a per-process cache hit plus one HMAC in the common case. The cache is dropped
    whenever ``store.change_marker()`` moves, which any process's commit to the credential tables
    does, so a revoke or expiry made elsewhere (the CLI included) is seen on the very next request.

    Misses are cached too (``None``): a flood of well-formed but unknown keys costs one read each per
    change of the marker, not one per request. Creating a key moves the marker, so a new key is never
    refused for having been unknown a moment ago.
    """

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        # ("id", key id) → the key and its hashes; ("legacy", digest) → a legacy key's id. None: a miss.
        self._cache: ChangeCache[tuple[str, object], _Cached | str | None] = ChangeCache(deps.store, 100_000)

    async def authenticate(self, credential: str, expected: Environment | None = None) -> ApiKey:
        """``expected`` is the environment of the host the request came to, when hosts are configured."""
        cache = self._cache.current()
        parsed = credentials.parse_api_key(credential)
        if parsed is not None:
            key_id: str | None = parsed.key_id
        elif credentials.is_legacy_key(credential):
            key_id = await self._legacy_key_id(credential, cache)
        else:
            key_id = None
        entry = None if key_id is None else await self._load(key_id, cache)
        now = self.deps.clock()
        matched, retired = (None, None) if entry is None else self.match(entry.secrets, credential, now)
        if (
            entry is not None
            and matched is None
            and cache is not None
            and key_id is not None
            and time.monotonic() - entry.loaded_at >= RELOAD_AFTER_SECONDS
        ):
            # A known key but no working secret: a rotation made by another process a moment ago may
            # not have reached this cache yet (PostgreSQL's NOTIFY is asynchronous). Read it again.
            entry = await self._load(key_id, None)
            matched, retired = (None, None) if entry is None else self.match(entry.secrets, credential, now)
            if entry is not None:
                cache[("id", key_id)] = entry
        if entry is None or matched is None:
            if retired is not None and retired.valid_until is not None:
                # Only a holder of the old secret gets here: telling them it was rotated reveals nothing.
                raise InvalidToken(
                    "This API key's secret was replaced by a rotation; the old secret stopped working "
                    f"at {rfc3339(retired.valid_until)}. Use the new secret."
                )
            raise InvalidToken()
        key = entry.key
        if parsed is not None and parsed.environment is not key.environment:
            raise InvalidToken()
        if expected is not None and expected is not key.environment:
            raise InvalidToken()
        if key.status_at(now) is not keys.KeyStatus.ACTIVE:
            # The secret matched, so the caller holds this key: saying why it stopped working reveals
            # nothing. Every refusal above stays plain, so nothing is told about keys one does not hold.
            raise InvalidToken(keys.refusal_detail(key, now))
        if matched.rotation_id is not None and matched.rotation_id in entry.pending_rotations:
            from keyhouse.services.rotations import complete  # here: rotations imports keys, which imports us

            await complete(self.deps, key.id, matched.rotation_id)
            entry.pending_rotations = entry.pending_rotations - {matched.rotation_id}
        if key.last_used_at is None or now - key.last_used_at >= self.deps.touch_interval:
            entry.key = replace(key, last_used_at=now)
            async with self.deps.store.transaction() as tx:
                await tx.touch_key(key.id, now)
        return entry.key

    def match(
        self, stored: list[SecretHash], credential: str, now: datetime
    ) -> tuple[SecretHash | None, SecretHash | None]:
        """The working secret ``credential`` matches, and the retired one it matches (past its grace)."""
        matched = retired = None
        for secret in stored:
            pepper = self.deps.peppers.by_id(secret.pepper_id)
            # No early exit: the work done does not depend on which secret matched.
            if pepper is not None and credentials.secret_matches(pepper, credential, secret.digest):
                if secret.valid_at(now):
                    matched = secret
                else:
                    retired = secret
        return matched, retired

    async def _legacy_key_id(
        self, credential: str, cache: dict[tuple[str, object], Any] | None
    ) -> str | None:
        digests = legacy_digests(self.deps, credential)
        if cache is not None and ("legacy", digests[0]) in cache:
            cached: str | None = cache[("legacy", digests[0])]
            return cached
        async with self.deps.store.read() as tx:
            key_id = await tx.find_key_by_digest(digests)
        if cache is not None:
            cache[("legacy", digests[0])] = key_id
        return key_id

    async def _load(self, key_id: str, cache: dict[tuple[str, object], Any] | None) -> _Cached | None:
        if cache is not None and ("id", key_id) in cache:
            cached: _Cached | None = cache[("id", key_id)]
            return cached
        async with self.deps.store.read() as tx:
            key = await tx.get_key(key_id)
            secrets = [] if key is None else await tx.secrets_of(key_id)
            pending = [] if key is None or not key.rotatable else await tx.pending_rotations(key_id)
        entry = None if key is None else _Cached(key, secrets, frozenset(r.id for r in pending))
        if cache is not None:
            cache[("id", key_id)] = entry
        return entry
