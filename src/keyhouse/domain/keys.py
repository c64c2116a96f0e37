"""API keys: issuing, status over time, and authorisation.

A key is ``active`` until it is revoked or until ``expires_at`` passes: from that second on it counts
as ``expired`` whether or not a job has written the new status yet. A revoked key may be reactivated
by its owner within :data:`REACTIVATION_WINDOW` of being revoked, unless it was revoked because it was
exposed (Paddle's rule); see :func:`reactivate`. A legacy key has ``permissions=None`` on the wire
and holds exactly :data:`keyhouse.domain.permissions.LEGACY`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import Conflict, FieldError, InvalidField
from keyhouse.domain.ids import new_id
from keyhouse.domain.permissions import LEGACY, Permission, satisfies, sorted_names
from keyhouse.domain.times import rfc3339, rfc3339_or_none

NAME_MAX = 150
DESCRIPTION_MAX = 250
#: How long after being revoked a key may be reactivated (Paddle: 60 minutes).
REACTIVATION_WINDOW = timedelta(minutes=60)


class KeyStatus(StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKey:
    id: str
    account_id: str
    environment: Environment
    name: str
    description: str | None
    status: KeyStatus
    #: None marks a legacy key.
    permissions: frozenset[Permission] | None
    expires_at: datetime | None
    last_used_at: datetime | None
    exposed_at: datetime | None
    rotatable: bool
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None
    installation_id: str | None = None
    #: When ``api_key.expiring`` was emitted (internal: it is emitted once).
    expiring_noticed_at: datetime | None = None

    @property
    def is_legacy(self) -> bool:
        return self.permissions is None

    @property
    def granted(self) -> frozenset[Permission]:
        return LEGACY if self.permissions is None else self.permissions

    @property
    def obfuscated(self) -> str:
        return credentials.obfuscate_key(None if self.is_legacy else self.environment, self.id)

    def status_at(self, now: datetime) -> KeyStatus:
        if self.status is KeyStatus.ACTIVE and self.expires_at is not None and now >= self.expires_at:
            return KeyStatus.EXPIRED
        return self.status

    @property
    def revoked_for_exposure(self) -> bool:
        """Was the key revoked because it was found exposed? Such a key can never be reactivated.

        Derived rather than stored (no column for it): the key had been exposed when it was revoked.
        Exposure reports set ``exposed_at`` and revoke in one transaction, so the two times are equal;
        a key exposed only after an owner revoked it was not revoked *because* of the exposure. A
        browser exposure marks ``exposed_at`` without revoking, so an owner who revokes such a key
        afterwards has also revoked an exposed key, and it stays revoked: the safe reading.
        """
        return (
            self.exposed_at is not None and self.revoked_at is not None and self.exposed_at <= self.revoked_at
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SecretHash:
    """One accepted secret of a key. Rotation may hold two, the old one with a ``valid_until``."""

    key_id: str
    pepper_id: str
    digest: bytes
    valid_until: datetime | None
    created_at: datetime
    #: The rotation that issued this secret (None: issued with the key).
    rotation_id: str | None = None

    def valid_at(self, now: datetime) -> bool:
        return self.valid_until is None or now < self.valid_until


@dataclass(frozen=True, slots=True, kw_only=True)
class ApiKeyWire:
    """An API key as Paddle shows it; ``key`` is obfuscated except in the one response that issues it.

    NOTE: wire format. Never reorder or rename fields; a new field gets a default.
    """

    id: str
    name: str
    description: str | None
    status: str
    key: str
    permissions: list[str] | None
    exposed_at: str | None
    expires_at: str | None
    last_used_at: str | None
    rotatable: bool
    created_at: str
    updated_at: str


def to_wire(key: ApiKey, now: datetime, *, plaintext: str | None = None) -> ApiKeyWire:
    return ApiKeyWire(
        id=key.id,
        name=key.name,
        description=key.description,
        status=key.status_at(now).value,
        key=plaintext or key.obfuscated,
        permissions=None if key.permissions is None else sorted_names(key.permissions),
        exposed_at=rfc3339_or_none(key.exposed_at),
        expires_at=rfc3339_or_none(key.expires_at),
        last_used_at=rfc3339_or_none(key.last_used_at),
        rotatable=key.rotatable,
        created_at=rfc3339(key.created_at),
        updated_at=rfc3339(key.updated_at),
    )


def validate_fields(name: str, description: str | None) -> None:
    errors = []
    if not 1 <= len(name) <= NAME_MAX:
        errors.append(FieldError("name", f"length must be between 1 and {NAME_MAX}, provided {len(name)}"))
    if description is not None and not 1 <= len(description) <= DESCRIPTION_MAX:
        errors.append(
            FieldError(
                "description", f"length must be between 1 and {DESCRIPTION_MAX}, provided {len(description)}"
            )
        )
    if errors:
        raise InvalidField(errors=errors)


def issue_key(
    *,
    account_id: str,
    environment: Environment,
    name: str,
    description: str | None,
    permissions: frozenset[Permission] | None,
    expires_at: datetime | None,
    rotatable: bool,
    now: datetime,
    pepper: credentials.Pepper,
    legacy_secret: str | None = None,
    installation_id: str | None = None,
) -> tuple[ApiKey, str, SecretHash]:
    """A new key, its plaintext (shown once, then gone) and the only thing stored of it: a hash.

    ``permissions=None`` issues a legacy key, whose plaintext is ``legacy_secret`` or a new one.
    """
    validate_fields(name, description)
    if expires_at is not None and expires_at <= now:
        raise InvalidField.on("expires_at", "must be in the future")
    key_id = new_id("apikey")
    if permissions is None:
        plaintext = credentials.new_legacy_key() if legacy_secret is None else legacy_secret
        if not credentials.is_legacy_key(plaintext):
            raise InvalidField.on("key", "a legacy key is 50 letters and digits")
    else:
        plaintext = credentials.new_api_key_secret(environment, key_id)
    key = ApiKey(
        id=key_id,
        account_id=account_id,
        environment=environment,
        name=name,
        description=description,
        status=KeyStatus.ACTIVE,
        permissions=permissions,
        expires_at=expires_at,
        last_used_at=None,
        exposed_at=None,
        rotatable=rotatable,
        created_at=now,
        updated_at=now,
        installation_id=installation_id,
    )
    digest = SecretHash(
        key_id=key_id,
        pepper_id=pepper.id,
        digest=credentials.hash_secret(pepper, plaintext),
        valid_until=None,
        created_at=now,
    )
    return key, plaintext, digest


def revoke(key: ApiKey, now: datetime) -> ApiKey:
    if key.status is KeyStatus.REVOKED:
        return key
    return replace(key, status=KeyStatus.REVOKED, revoked_at=now, updated_at=now)


def refusal_detail(key: ApiKey, now: datetime) -> str | None:
    """Why ``key`` is refused at ``now``, or ``None`` while it is active.

    Only for a caller who presented a secret matching the key: they hold it, so saying why it stopped
    working tells them nothing new. Anyone else gets the plain ``InvalidToken`` detail.
    """
    status = key.status_at(now)
    if status is KeyStatus.ACTIVE:
        return None
    verb, at = ("was revoked", key.revoked_at) if status is KeyStatus.REVOKED else ("expired", key.expires_at)
    why = (
        " because it was found exposed; create a new key"
        if status is KeyStatus.REVOKED and key.revoked_for_exposure
        else ""
    )
    return f"This API key {verb}{why}." if at is None else f"This API key {verb} at {rfc3339(at)}{why}."


def reactivate(key: ApiKey, now: datetime) -> ApiKey:
    """A revoked key active again, with its original expiry (so an expired key stays expired).

    Raises ``Conflict`` for a key that is not revoked, one revoked because it was exposed, and one
    revoked more than :data:`REACTIVATION_WINDOW` ago.
    """
    if key.status is not KeyStatus.REVOKED:
        raise Conflict(f"API key {key.id} is {key.status_at(now)}; only a revoked key can be reactivated.")
    if key.revoked_for_exposure:
        raise Conflict(f"API key {key.id} was revoked because it was exposed; it can never be reactivated.")
    # A revoked key without a revocation time cannot show it is inside the window, so it stays revoked.
    if key.revoked_at is None or now - key.revoked_at > REACTIVATION_WINDOW:
        raise Conflict(f"API key {key.id} can be reactivated only within 60 minutes of being revoked.")
    return replace(key, status=KeyStatus.ACTIVE, revoked_at=None, updated_at=now)


#: ``api_key.expiring`` goes out this long before a key expires (Paddle: 7 days).
EXPIRING_NOTICE = timedelta(days=7)


def expiry_work(key: ApiKey, now: datetime) -> tuple[ApiKey, list[str]]:
    """What the expiry job does to ``key`` at ``now``: the key to store and the events to emit, by
    name (``"expiring"``, ``"expired"``), in order. An unchanged key comes back as the same object.

    A key already past its expiry when first seen gets only ``expired``: a notice that it *will*
    expire would arrive after the fact.
    """
    if key.status is not KeyStatus.ACTIVE or key.expires_at is None:
        return key, []
    if now >= key.expires_at:
        noticed = key.expiring_noticed_at or now
        return replace(key, status=KeyStatus.EXPIRED, updated_at=now, expiring_noticed_at=noticed), [
            "expired"
        ]
    if key.expiring_noticed_at is None and key.expires_at - now <= EXPIRING_NOTICE:
        return replace(key, expiring_noticed_at=now), ["expiring"]
    return key, []


def mark_exposed(key: ApiKey, now: datetime) -> ApiKey:
    """Record when the key was first found exposed (later exposures keep the first time)."""
    if key.exposed_at is not None:
        return key
    return replace(key, exposed_at=now, updated_at=now)


@dataclass(frozen=True, slots=True)
class Allowed:
    def __bool__(self) -> bool:
        return True


@dataclass(frozen=True, slots=True)
class Denied:
    reason: str
    missing: Permission | None = None

    def __bool__(self) -> bool:
        return False


def authorize(key: ApiKey, needed: Permission) -> Allowed | Denied:
    """May ``key`` perform an operation that needs ``needed``? Write includes read."""
    if satisfies(key.granted, needed):
        return Allowed()
    return Denied(
        f"You aren't permitted to perform this request. The API key lacks the {needed.value} permission.",
        missing=needed,
    )
