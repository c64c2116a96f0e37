"""Authentication: a presented credential in, the key it names out, from a per-process cache."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING

from keyhouse.domain import credentials, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import InvalidToken
from keyhouse.domain.keys import ApiKey, SecretHash

if TYPE_CHECKING:
    from keyhouse.services.deps import Deps


def legacy_digests(deps: Deps, secret: str) -> list[bytes]:
    return [credentials.hash_secret(p, secret) for p in deps.peppers.all()]


@dataclass(slots=True)
class _Cached:
    key: ApiKey
    secrets: list[SecretHash]


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

    #: Bound on cached entries, hits and misses together; past it the cache starts over.
    MAX_ENTRIES = 100_000

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._marker: int | None = None
        self._by_id: dict[str, _Cached | None] = {}
        self._legacy_ids: dict[bytes, str | None] = {}

    def _fresh_cache(self) -> bool:
        marker = self.deps.store.change_marker()
        too_big = len(self._by_id) + len(self._legacy_ids) > self.MAX_ENTRIES
        if marker is None or marker != self._marker or too_big:
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
        if expected is not None and expected is not key.environment:
            raise InvalidToken()
        if key.status_at(now) is not keys.KeyStatus.ACTIVE:
            # The secret matched, so the caller holds this key: saying why it stopped working reveals
            # nothing. Every refusal above stays plain, so nothing is told about keys one does not hold.
            raise InvalidToken(keys.refusal_detail(key, now))
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
        digests = legacy_digests(self.deps, credential)
        if digests[0] in self._legacy_ids:
            return self._legacy_ids[digests[0]]
        async with self.deps.store.read() as tx:
            key_id = await tx.find_key_by_digest(digests)
        if cacheable:
            self._legacy_ids[digests[0]] = key_id
        return key_id

    async def _load(self, key_id: str, cacheable: bool) -> _Cached | None:
        if key_id in self._by_id:
            return self._by_id[key_id]
        async with self.deps.store.read() as tx:
            key = await tx.get_key(key_id)
            secrets = [] if key is None else await tx.secrets_of(key_id)
        entry = None if key is None else _Cached(key, secrets)
        if cacheable:
            self._by_id[key_id] = entry
        return entry
