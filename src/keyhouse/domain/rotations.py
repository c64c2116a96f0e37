"""API-key rotation (Paddle's rotatable keys): a key replaces its own secret without downtime.

A rotation issues a second secret for the same key (same id, name, permissions). Both secrets work
until the new one is first used; from then the old one works for ``grace_period_seconds`` more, so a
fleet of clients can switch over one by one. A new rotation cancels a pending one, whose secret
stops working at once (it was never used, or the rotation would not be pending).

Rotation never extends a key's life: the old secret's grace ends at the key's expiry at the latest,
and the key keeps its expiry unless the rotation names a new one (``new_key_expires_at``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from keyhouse.domain import credentials
from keyhouse.domain.errors import Conflict, InvalidField
from keyhouse.domain.ids import new_id
from keyhouse.domain.keys import ApiKey, KeyStatus, SecretHash
from keyhouse.domain.times import parse_rfc3339, rfc3339, rfc3339_or_none

GRACE_MAX_SECONDS = 86_400
#: What ``keys rotate`` uses when no grace is given (AWS Secrets Manager's default for Paddle keys).
DEFAULT_GRACE_SECONDS = 300


class RotationStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"
    CANCELED = "canceled"


@dataclass(frozen=True, slots=True, kw_only=True)
class Rotation:
    id: str
    api_key_id: str
    grace_period_seconds: int
    status: RotationStatus
    new_key_expires_at: datetime | None
    #: When the old secret stops working; set when the rotation completes.
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime


def _grace(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= GRACE_MAX_SECONDS:
        raise InvalidField.on("grace_period_seconds", f"must be an integer from 0 to {GRACE_MAX_SECONDS}")
    return value


def _new_expiry(value: object, now: datetime) -> datetime | None:
    if value is None:
        return None
    parsed = parse_rfc3339(value) if isinstance(value, str) else None
    if parsed is None:
        raise InvalidField.on("new_key_expires_at", "must be an RFC 3339 date-time")
    if parsed <= now:
        raise InvalidField.on("new_key_expires_at", "must be in the future")
    return parsed


def start(
    key: ApiKey,
    *,
    grace_period_seconds: object,
    new_key_expires_at: object,
    now: datetime,
    pepper: credentials.Pepper,
) -> tuple[Rotation, str, SecretHash]:
    """A pending rotation, the new secret's plaintext (shown once) and its hash to store."""
    grace = _grace(grace_period_seconds)
    expiry = _new_expiry(new_key_expires_at, now)
    if not key.rotatable:
        raise Conflict(f"API key {key.id} was not created as rotatable, so it can't be rotated.")
    if key.status_at(now) is not KeyStatus.ACTIVE:
        raise Conflict(f"API key {key.id} is {key.status_at(now)}; only an active key can be rotated.")
    rotation = Rotation(
        id=new_id("apkrot"),
        api_key_id=key.id,
        grace_period_seconds=grace,
        status=RotationStatus.PENDING,
        new_key_expires_at=expiry,
        expires_at=None,
        created_at=now,
        updated_at=now,
    )
    plaintext = credentials.new_api_key_secret(key.environment, key.id)
    secret = SecretHash(
        key_id=key.id,
        pepper_id=pepper.id,
        digest=credentials.hash_secret(pepper, plaintext),
        valid_until=None,
        created_at=now,
        rotation_id=rotation.id,
    )
    return rotation, plaintext, secret


def cancel(rotation: Rotation, now: datetime) -> Rotation:
    return replace(rotation, status=RotationStatus.CANCELED, updated_at=now)


def complete(rotation: Rotation, key: ApiKey, now: datetime) -> tuple[Rotation, ApiKey]:
    """The new secret was used for the first time: the grace period starts now.

    The old secret's end is capped by the key's expiry (as it was before this rotation); the key
    takes ``new_key_expires_at`` if the rotation named one.
    """
    ends = now + timedelta(seconds=rotation.grace_period_seconds)
    if key.expires_at is not None:
        ends = min(ends, key.expires_at)
    done = replace(rotation, status=RotationStatus.COMPLETED, expires_at=ends, updated_at=now)
    if rotation.new_key_expires_at is None or rotation.new_key_expires_at == key.expires_at:
        return done, key
    return done, replace(
        key, expires_at=rotation.new_key_expires_at, expiring_noticed_at=None, updated_at=now
    )


def retire(secret: SecretHash, at: datetime) -> SecretHash:
    """An older secret of a rotated key, working until ``at`` at the latest."""
    if secret.valid_until is not None and secret.valid_until <= at:
        return secret
    return replace(secret, valid_until=at)


def rotation_json(rotation: Rotation, key: ApiKey, new_key: str | None = None) -> dict[str, Any]:
    """NOTE: wire format. ``new_key`` is the full secret only in the response that creates it;
    afterwards it shows obfuscated, like every stored key. ``new_key_expires_at`` is an extension."""
    return {
        "id": rotation.id,
        "api_key_id": rotation.api_key_id,
        "new_key": new_key if new_key is not None else key.obfuscated,
        "grace_period_seconds": rotation.grace_period_seconds,
        "status": rotation.status.value,
        "expires_at": rfc3339_or_none(rotation.expires_at),
        "new_key_expires_at": rfc3339_or_none(rotation.new_key_expires_at),
        "created_at": rfc3339(rotation.created_at),
        "updated_at": rfc3339(rotation.updated_at),
    }
