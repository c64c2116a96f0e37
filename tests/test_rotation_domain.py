"""API-key rotation and key usage, pure (paddle-api.md §2.3): ``domain/rotations.py`` and
``domain/usage.py``.

A rotation issues a second secret for the same key; the old one keeps working until the new one is
first used, then for ``grace_period_seconds`` more, never past the key's own expiry. Usage turns
per-day, per-permission counts into least-privilege advice.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from keyhouse.domain import credentials, keys, rotations
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.errors import Conflict, InvalidField
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import ApiKey, SecretHash
from keyhouse.domain.permissions import Permission
from keyhouse.domain.rotations import (
    DEFAULT_GRACE_SECONDS,
    GRACE_MAX_SECONDS,
    Rotation,
    RotationStatus,
    rotation_json,
)
from keyhouse.domain.times import rfc3339
from keyhouse.domain.usage import NO_PERMISSION, UsageRow, summary

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
PEPPER = Pepper(b"pepper-" + b"x" * 32)
SECOND = timedelta(seconds=1)


def a_key(environment: Environment = Environment.SANDBOX, **overrides: Any) -> ApiKey:
    """A rotatable key issued an hour before NOW, any field overridden."""
    key, _, _ = keys.issue_key(
        account_id="acc_" + "a" * 26,
        environment=environment,
        name="CRM",
        description=None,
        permissions=frozenset({Permission.PRODUCT_READ}),
        expires_at=None,
        rotatable=True,
        now=NOW - timedelta(hours=1),
        pepper=PEPPER,
    )
    return dataclasses.replace(key, **overrides)


def started(key: ApiKey | None = None, *, grace: object = 300, new_expiry: object = None) -> Rotation:
    rotation, _, _ = rotations.start(
        key or a_key(), grace_period_seconds=grace, new_key_expires_at=new_expiry, now=NOW, pepper=PEPPER
    )
    return rotation


def field_error(exc: pytest.ExceptionInfo[InvalidField]) -> tuple[str, str]:
    assert exc.value.errors is not None
    [only] = exc.value.errors
    return only.field, only.message


# --- start ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", list(Environment))
def test_start_issues_a_pending_rotation_and_a_new_secret_for_the_same_key(environment: Environment) -> None:
    key = a_key(environment)
    rotation, plaintext, secret = rotations.start(
        key, grace_period_seconds=120, new_key_expires_at=None, now=NOW, pepper=PEPPER
    )
    assert is_id("apkrot", rotation.id)
    assert (rotation.api_key_id, rotation.grace_period_seconds, rotation.status) == (
        key.id,
        120,
        RotationStatus.PENDING,
    )
    assert (rotation.new_key_expires_at, rotation.expires_at) == (None, None)
    assert rotation.created_at == rotation.updated_at == NOW

    parsed = credentials.parse_api_key(plaintext)
    assert parsed is not None
    assert (parsed.key_id, parsed.environment) == (key.id, environment)
    assert (secret.key_id, secret.pepper_id, secret.rotation_id) == (key.id, PEPPER.id, rotation.id)
    assert (secret.valid_until, secret.created_at) == (None, NOW)
    assert credentials.secret_matches(PEPPER, plaintext, secret.digest)
    assert plaintext.encode() not in secret.digest


def test_each_rotation_has_its_own_id_and_secret() -> None:
    first = rotations.start(a_key(), grace_period_seconds=0, new_key_expires_at=None, now=NOW, pepper=PEPPER)
    second = rotations.start(a_key(), grace_period_seconds=0, new_key_expires_at=None, now=NOW, pepper=PEPPER)
    assert first[0].id != second[0].id
    assert first[1] != second[1]
    assert first[2].digest != second[2].digest


@pytest.mark.parametrize("grace", [0, 1, DEFAULT_GRACE_SECONDS, GRACE_MAX_SECONDS])
def test_a_grace_period_from_zero_to_a_day_is_accepted(grace: int) -> None:
    assert started(grace=grace).grace_period_seconds == grace


def test_the_grace_limit_is_a_day_and_the_default_is_aws_secrets_managers() -> None:
    assert (GRACE_MAX_SECONDS, DEFAULT_GRACE_SECONDS) == (86_400, 300)


@pytest.mark.parametrize(
    "grace",
    [
        pytest.param(-1, id="negative"),
        pytest.param(GRACE_MAX_SECONDS + 1, id="over-a-day"),
        pytest.param("300", id="string"),
        pytest.param(True, id="true"),
        pytest.param(False, id="false"),
        pytest.param(300.0, id="float"),
        pytest.param(None, id="null"),
        pytest.param([300], id="list"),
    ],
)
def test_a_grace_that_is_not_an_integer_from_zero_to_a_day_is_invalid_field(grace: object) -> None:
    with pytest.raises(InvalidField) as exc:
        started(grace=grace)
    assert field_error(exc) == ("grace_period_seconds", "must be an integer from 0 to 86400")


def test_a_future_new_key_expiry_is_parsed_to_utc() -> None:
    rotation = started(new_expiry="2026-09-01T14:00:00+02:00")
    assert rotation.new_key_expires_at == datetime(2026, 9, 1, 12, 0, tzinfo=UTC)
    assert rotation.expires_at is None  # the old secret's end is only known on completion


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("tomorrow", "must be an RFC 3339 date-time", id="garbage"),
        pytest.param("2026-09-01T12:00:00", "must be an RFC 3339 date-time", id="no-zone"),
        pytest.param(1_790_000_000, "must be an RFC 3339 date-time", id="number"),
        pytest.param(True, "must be an RFC 3339 date-time", id="boolean"),
        pytest.param(rfc3339(NOW), "must be in the future", id="now"),
        pytest.param(rfc3339(NOW - SECOND), "must be in the future", id="past"),
    ],
)
def test_a_new_key_expiry_that_is_not_a_future_rfc3339_time_is_invalid_field(
    value: object, message: str
) -> None:
    with pytest.raises(InvalidField) as exc:
        started(new_expiry=value)
    assert field_error(exc) == ("new_key_expires_at", message)


def test_a_key_not_created_as_rotatable_is_a_conflict() -> None:
    key = a_key(rotatable=False)
    with pytest.raises(Conflict, match="not created as rotatable") as exc:
        started(key)
    assert key.id in exc.value.detail


@pytest.mark.parametrize(
    ("overrides", "status"),
    [
        pytest.param({"status": keys.KeyStatus.REVOKED, "revoked_at": NOW - SECOND}, "revoked", id="revoked"),
        pytest.param({"expires_at": NOW}, "expired", id="expired-now"),
        pytest.param({"status": keys.KeyStatus.EXPIRED, "expires_at": NOW - SECOND}, "expired", id="expired"),
    ],
)
def test_only_an_active_key_can_be_rotated(overrides: dict[str, Any], status: str) -> None:
    key = a_key(**overrides)
    with pytest.raises(Conflict) as exc:
        started(key)
    assert exc.value.detail == f"API key {key.id} is {status}; only an active key can be rotated."


def test_a_key_active_until_a_second_after_now_can_still_be_rotated() -> None:
    assert started(a_key(expires_at=NOW + SECOND)).status is RotationStatus.PENDING


def test_bad_fields_are_reported_before_the_keys_state() -> None:
    """A malformed request is a 400 whatever the key: the client's mistake is the first to fix."""
    with pytest.raises(InvalidField):
        started(a_key(rotatable=False), grace=-1)
    with pytest.raises(InvalidField):
        started(a_key(status=keys.KeyStatus.REVOKED), new_expiry="soon")


# --- cancel and complete ----------------------------------------------------------------------------


def test_cancel_marks_the_rotation_canceled_and_keeps_everything_else() -> None:
    rotation = started(new_expiry=rfc3339(NOW + timedelta(days=90)))
    later = NOW + timedelta(minutes=5)
    canceled = rotations.cancel(rotation, later)
    assert (canceled.status, canceled.updated_at) == (RotationStatus.CANCELED, later)
    assert dataclasses.replace(canceled, status=rotation.status, updated_at=rotation.updated_at) == rotation


def test_completing_starts_the_grace_period_now_and_leaves_a_key_without_expiry_untouched() -> None:
    key = a_key()
    rotation = started(key, grace=300)
    used = NOW + timedelta(hours=2)
    done, after = rotations.complete(rotation, key, used)
    assert (done.status, done.expires_at, done.updated_at) == (
        RotationStatus.COMPLETED,
        used + timedelta(seconds=300),
        used,
    )
    assert done.created_at == NOW
    assert after is key


def test_with_zero_grace_the_old_secret_ends_at_the_first_use_of_the_new_one() -> None:
    key = a_key()
    done, _ = rotations.complete(started(key, grace=0), key, NOW)
    assert done.expires_at == NOW


def test_the_grace_period_never_outlives_the_key() -> None:
    key = a_key(expires_at=NOW + timedelta(seconds=100))
    done, after = rotations.complete(started(key, grace=GRACE_MAX_SECONDS), key, NOW)
    assert done.expires_at == key.expires_at
    assert after is key


def test_a_grace_ending_before_the_keys_expiry_is_kept_whole() -> None:
    key = a_key(expires_at=NOW + timedelta(days=30))
    done, after = rotations.complete(started(key, grace=60), key, NOW)
    assert done.expires_at == NOW + timedelta(seconds=60)
    assert after is key


def test_the_grace_is_capped_by_the_old_expiry_even_when_the_rotation_extends_the_key() -> None:
    key = a_key(expires_at=NOW + timedelta(seconds=10))
    extended = NOW + timedelta(days=90)
    done, after = rotations.complete(started(key, grace=300, new_expiry=rfc3339(extended)), key, NOW)
    assert done.expires_at == NOW + timedelta(seconds=10)
    assert after.expires_at == extended


def test_a_new_key_expiry_is_applied_on_completion_and_rearms_the_expiring_notice() -> None:
    key = a_key(expires_at=NOW + timedelta(days=3), expiring_noticed_at=NOW - timedelta(days=4))
    extended = NOW + timedelta(days=90)
    used = NOW + timedelta(minutes=1)
    done, after = rotations.complete(started(key, new_expiry=rfc3339(extended)), key, used)
    assert done.new_key_expires_at == extended
    assert (after.expires_at, after.expiring_noticed_at, after.updated_at) == (extended, None, used)
    unchanged = dataclasses.replace(
        after,
        expires_at=key.expires_at,
        expiring_noticed_at=key.expiring_noticed_at,
        updated_at=key.updated_at,
    )
    assert unchanged == key


def test_a_new_key_expiry_equal_to_the_current_one_changes_nothing_on_the_key() -> None:
    expiry = NOW + timedelta(days=30)
    key = a_key(expires_at=expiry)
    _, after = rotations.complete(started(key, new_expiry=rfc3339(expiry)), key, NOW)
    assert after is key


# --- retire ------------------------------------------------------------------------------------------


def secret(valid_until: datetime | None) -> SecretHash:
    return SecretHash(
        key_id="apikey_" + "a" * 26, pepper_id=PEPPER.id, digest=b"d", valid_until=valid_until, created_at=NOW
    )


def test_retiring_a_secret_without_an_end_gives_it_one() -> None:
    end = NOW + timedelta(minutes=5)
    retired = rotations.retire(secret(None), end)
    assert retired.valid_until == end
    assert retired.valid_at(end - timedelta(microseconds=1))
    assert not retired.valid_at(end)


def test_retiring_moves_a_later_end_earlier() -> None:
    end = NOW + timedelta(minutes=5)
    assert rotations.retire(secret(end + SECOND), end).valid_until == end


@pytest.mark.parametrize("delta", [timedelta(0), -SECOND], ids=["same", "earlier"])
def test_retiring_never_extends_a_secrets_life(delta: timedelta) -> None:
    end = NOW + timedelta(minutes=5)
    old = secret(end + delta)
    assert rotations.retire(old, end) is old


# --- the wire ----------------------------------------------------------------------------------------


def test_rotation_json_shows_the_full_secret_only_when_given_it() -> None:
    key = a_key()
    rotation, plaintext, _ = rotations.start(
        key, grace_period_seconds=300, new_key_expires_at=None, now=NOW, pepper=PEPPER
    )
    created = rotation_json(rotation, key, plaintext)
    assert created == {
        "id": rotation.id,
        "api_key_id": key.id,
        "new_key": plaintext,
        "grace_period_seconds": 300,
        "status": "pending",
        "expires_at": None,
        "new_key_expires_at": None,
        "created_at": rfc3339(NOW),
        "updated_at": rfc3339(NOW),
    }
    assert list(created) == list(rotation_json(rotation, key))  # the wire order is frozen
    later = rotation_json(rotation, key)
    assert later["new_key"] == key.obfuscated
    assert later["new_key"].endswith("****")
    assert plaintext not in str(later)


def test_rotation_json_shows_a_completed_rotations_times() -> None:
    key = a_key()
    extended = NOW + timedelta(days=90)
    rotation = started(key, grace=60, new_expiry=rfc3339(extended))
    used = NOW + timedelta(minutes=3)
    done, after = rotations.complete(rotation, key, used)
    shown = rotation_json(done, after)
    assert (shown["status"], shown["expires_at"], shown["new_key_expires_at"]) == (
        "completed",
        rfc3339(used + timedelta(seconds=60)),
        rfc3339(extended),
    )
    assert (shown["created_at"], shown["updated_at"]) == (rfc3339(NOW), rfc3339(used))


def test_a_rotation_is_pending_completed_or_canceled() -> None:
    assert [s.value for s in RotationStatus] == ["pending", "completed", "canceled"]


# --- usage -------------------------------------------------------------------------------------------

DAY = date(2026, 6, 1)
GRANTED = frozenset({Permission.PRODUCT_READ, Permission.CUSTOMER_WRITE, Permission.PRICE_READ})


def test_a_key_with_no_usage_has_every_permission_granted_and_unused() -> None:
    assert summary([], GRANTED) == {
        "days": [],
        "requests": 0,
        "permissions_used": [],
        "granted_unused": ["customer.write", "price.read", "product.read"],
    }


def test_usage_adds_up_per_day_in_day_order_and_names_the_permissions_used() -> None:
    rows = [
        UsageRow(DAY + timedelta(days=2), "product.read", 4),
        UsageRow(DAY, "product.read", 2),
        UsageRow(DAY, NO_PERMISSION, 3),
        UsageRow(DAY, "customer.write", 1),
        UsageRow(DAY + timedelta(days=2), "product.read", 1),
    ]
    assert summary(rows, GRANTED) == {
        "days": [{"day": "2026-06-01", "requests": 6}, {"day": "2026-06-03", "requests": 5}],
        "requests": 11,
        "permissions_used": ["customer.write", "product.read"],
        "granted_unused": ["price.read"],
    }


def test_requests_that_needed_no_permission_count_but_use_no_permission() -> None:
    got = summary([UsageRow(DAY, NO_PERMISSION, 7)], GRANTED)
    assert (got["requests"], got["permissions_used"]) == (7, [])
    assert got["granted_unused"] == ["customer.write", "price.read", "product.read"]


def test_a_permission_no_longer_in_the_catalogue_counts_its_requests_and_is_not_named() -> None:
    got = summary([UsageRow(DAY, "retired_entity.read", 2), UsageRow(DAY, "product.read", 1)], GRANTED)
    assert got["days"] == [{"day": "2026-06-01", "requests": 3}]
    assert got["permissions_used"] == ["product.read"]


def test_a_write_needed_only_as_its_read_shows_as_granted_but_unused() -> None:
    """The advice to narrow ``customer.write`` to ``customer.read``."""
    got = summary([UsageRow(DAY, "customer.read", 5)], frozenset({Permission.CUSTOMER_WRITE}))
    assert (got["permissions_used"], got["granted_unused"]) == (["customer.read"], ["customer.write"])


def test_permissions_used_but_no_longer_granted_are_still_listed_as_used() -> None:
    got = summary([UsageRow(DAY, "price.read", 1)], frozenset({Permission.PRODUCT_READ}))
    assert (got["permissions_used"], got["granted_unused"]) == (["price.read"], ["product.read"])


def test_no_permission_is_the_empty_string() -> None:
    assert NO_PERMISSION == ""
