"""API keys (paddle-api.md §2.2): issuing, status over time, revoking, authorising, and the wire shape."""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper, hash_secret, parse_api_key
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import (
    DESCRIPTION_MAX,
    NAME_MAX,
    Allowed,
    ApiKey,
    ApiKeyWire,
    Denied,
    KeyStatus,
    SecretHash,
    authorize,
    issue_key,
    revoke,
    to_wire,
)
from keyhouse.domain.permissions import LEGACY, Permission
from tests.spec import spec

NOW = datetime(2025, 3, 26, 6, 58, 38, 517522, tzinfo=UTC)
EXPIRES = NOW + timedelta(days=92)  # 2025-06-26T06:58:38.517522Z, as in the spec's example
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
PEPPER = Pepper(b"pepper-one-" + b"x" * 32)
CRM_PERMISSIONS = frozenset(
    {
        Permission.TRANSACTION_READ,
        Permission.SUBSCRIPTION_READ,
        Permission.ADDRESS_READ,
        Permission.CUSTOMER_READ,
        Permission.BUSINESS_READ,
    }
)
LEGACY_SECRET = "Ab3" * 16 + "Z9"
API_KEY_PATTERN = re.compile(r"^pdl_(live|sdbx)_apikey_[a-z\d]{26}_[a-zA-Z\d]{22}_[a-zA-Z\d]{3}$", re.ASCII)


def issue(**overrides: Any) -> tuple[ApiKey, str, SecretHash]:
    """Alice's sandbox CRM key, issued at NOW, with any field overridden."""
    arguments: dict[str, Any] = {
        "account_id": ALICE,
        "environment": Environment.SANDBOX,
        "name": "CRM integration",
        "description": "Reads customers for our CRM.",
        "permissions": CRM_PERMISSIONS,
        "expires_at": None,
        "rotatable": False,
        "now": NOW,
        "pepper": PEPPER,
    }
    return issue_key(**(arguments | overrides))


def field_errors(excinfo: pytest.ExceptionInfo[InvalidField]) -> list[FieldError]:
    assert excinfo.value.errors is not None
    return excinfo.value.errors


def apikey_schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec()["components"]["schemas"][name]
    return schema


# --- issuing --------------------------------------------------------------------------------------


def test_an_issued_key_is_active_unused_and_created_now() -> None:
    key, _, _ = issue(rotatable=True, installation_id="inst_1")
    assert is_id("apikey", key.id)
    assert (key.account_id, key.environment) == (ALICE, Environment.SANDBOX)
    assert (key.name, key.description) == ("CRM integration", "Reads customers for our CRM.")
    assert key.status is KeyStatus.ACTIVE
    assert key.permissions == CRM_PERMISSIONS
    assert (key.created_at, key.updated_at) == (NOW, NOW)
    assert (key.last_used_at, key.exposed_at, key.revoked_at, key.expires_at) == (None, None, None, None)
    assert key.rotatable is True
    assert key.installation_id == "inst_1"
    assert not key.is_legacy


@pytest.mark.parametrize("environment", list(Environment))
def test_the_plaintext_is_a_key_of_the_keys_own_id_and_environment(environment: Environment) -> None:
    key, plaintext, _ = issue(environment=environment)
    assert API_KEY_PATTERN.fullmatch(plaintext)
    parsed = parse_api_key(plaintext)
    assert parsed is not None
    assert (parsed.key_id, parsed.environment) == (key.id, environment)


def test_only_a_peppered_hash_of_the_plaintext_is_kept() -> None:
    key, plaintext, stored = issue()
    assert stored == SecretHash(
        key_id=key.id,
        pepper_id=PEPPER.id,
        digest=hash_secret(PEPPER, plaintext),
        valid_until=None,
        created_at=NOW,
    )
    assert plaintext not in repr(key)
    assert plaintext not in repr(stored)


def test_every_issued_key_is_new() -> None:
    issued = [issue() for _ in range(20)]
    assert len({key.id for key, _, _ in issued}) == 20
    assert len({plaintext for _, plaintext, _ in issued}) == 20


def test_the_name_and_description_limits_are_the_specs() -> None:
    assert (apikey_schema("apikey-name")["minLength"], apikey_schema("apikey-name")["maxLength"]) == (
        1,
        NAME_MAX,
    )
    description = apikey_schema("apikey-description")
    assert (description["minLength"], description["maxLength"]) == (1, DESCRIPTION_MAX)


@pytest.mark.parametrize("name", ["a", "a" * 150, "Ünïcödé name ✓"])
def test_a_name_of_1_to_150_characters_is_accepted(name: str) -> None:
    key, _, _ = issue(name=name)
    assert key.name == name


@pytest.mark.parametrize("length", [0, 151, 1_000])
def test_a_name_outside_1_to_150_characters_is_refused(length: int) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(name="a" * length)
    assert field_errors(excinfo) == [
        FieldError("name", f"length must be between 1 and 150, provided {length}")
    ]


@pytest.mark.parametrize("description", [None, "a", "a" * 250])
def test_a_description_is_absent_or_1_to_250_characters(description: str | None) -> None:
    key, _, _ = issue(description=description)
    assert key.description == description


@pytest.mark.parametrize("length", [0, 251])
def test_a_description_outside_1_to_250_characters_is_refused(length: int) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(description="a" * length)
    assert field_errors(excinfo) == [
        FieldError("description", f"length must be between 1 and 250, provided {length}")
    ]


def test_a_bad_name_and_a_bad_description_are_reported_together() -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(name="", description="a" * 251)
    assert [e.field for e in field_errors(excinfo)] == ["name", "description"]


def test_an_expiry_in_the_future_is_kept() -> None:
    key, _, _ = issue(expires_at=NOW + timedelta(microseconds=1))
    assert key.expires_at == NOW + timedelta(microseconds=1)


@pytest.mark.parametrize("expires_at", [NOW, NOW - timedelta(microseconds=1), NOW - timedelta(days=365)])
def test_an_expiry_that_is_not_in_the_future_is_refused(expires_at: datetime) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(expires_at=expires_at)
    assert field_errors(excinfo) == [FieldError("expires_at", "must be in the future")]


# --- legacy keys ----------------------------------------------------------------------------------


def test_a_legacy_key_is_50_letters_and_digits_and_holds_the_legacy_catalogue() -> None:
    key, plaintext, stored = issue(permissions=None)
    assert credentials.is_legacy_key(plaintext)
    assert parse_api_key(plaintext) is None
    assert key.is_legacy
    assert key.permissions is None
    assert key.granted == LEGACY
    assert stored.digest == hash_secret(PEPPER, plaintext)


def test_a_legacy_key_can_be_imported_with_its_existing_secret() -> None:
    key, plaintext, stored = issue(permissions=None, legacy_secret=LEGACY_SECRET)
    assert plaintext == LEGACY_SECRET
    assert stored.digest == hash_secret(PEPPER, LEGACY_SECRET)
    assert key.is_legacy


@pytest.mark.parametrize(
    "secret",
    [
        pytest.param(LEGACY_SECRET[:-1], id="49 characters"),
        pytest.param(LEGACY_SECRET + "a", id="51 characters"),
        pytest.param(LEGACY_SECRET[:-1] + "-", id="hyphen"),
        pytest.param(LEGACY_SECRET[:-1] + " ", id="space"),
        pytest.param(
            "pdl_sdbx_apikey_01jkdpbhazdpn3wpcya45as9tg_q6TGTJyvoIz7LDtXT65bX7_1g1", id="new format"
        ),
    ],
)
def test_a_legacy_secret_that_is_not_50_letters_and_digits_is_refused(secret: str) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(permissions=None, legacy_secret=secret)
    assert field_errors(excinfo) == [FieldError("key", "a legacy key is 50 letters and digits")]


def test_an_empty_legacy_secret_is_refused_not_replaced() -> None:
    with pytest.raises(InvalidField):
        issue(permissions=None, legacy_secret="")


# --- status over time -----------------------------------------------------------------------------


def test_a_key_without_expiry_stays_active() -> None:
    key, _, _ = issue()
    assert key.status_at(NOW + timedelta(days=10_000)) is KeyStatus.ACTIVE


def test_a_key_is_active_until_the_instant_before_it_expires() -> None:
    key, _, _ = issue(expires_at=EXPIRES)
    assert key.status_at(NOW) is KeyStatus.ACTIVE
    assert key.status_at(EXPIRES - timedelta(microseconds=1)) is KeyStatus.ACTIVE


def test_a_key_is_expired_from_the_exact_instant_of_expires_at_on() -> None:
    key, _, _ = issue(expires_at=EXPIRES)
    assert key.status_at(EXPIRES) is KeyStatus.EXPIRED
    assert key.status_at(EXPIRES + timedelta(days=1)) is KeyStatus.EXPIRED


def test_a_revoked_key_stays_revoked_after_its_expiry_passes() -> None:
    key, _, _ = issue(expires_at=EXPIRES)
    revoked = revoke(key, NOW)
    assert revoked.status_at(EXPIRES + timedelta(days=1)) is KeyStatus.REVOKED


def test_a_stored_status_other_than_active_is_reported_as_it_is() -> None:
    key, _, _ = issue()
    expired = dataclasses.replace(key, status=KeyStatus.EXPIRED)
    assert expired.status_at(NOW) is KeyStatus.EXPIRED


def test_key_statuses_are_the_specs() -> None:
    assert {s.value for s in KeyStatus} == set(apikey_schema("apikey-status")["enum"])


def test_a_secret_hash_without_valid_until_is_always_valid() -> None:
    _, _, stored = issue()
    assert stored.valid_at(NOW + timedelta(days=10_000))


def test_a_rotated_out_secret_is_valid_until_the_instant_before_valid_until() -> None:
    _, _, stored = issue()
    grace = dataclasses.replace(stored, valid_until=NOW + timedelta(seconds=300))
    assert grace.valid_at(NOW + timedelta(seconds=300) - timedelta(microseconds=1))
    assert not grace.valid_at(NOW + timedelta(seconds=300))


# --- revoking -------------------------------------------------------------------------------------


def test_revoking_marks_the_key_revoked_now_and_changes_nothing_else() -> None:
    key, _, _ = issue()
    later = NOW + timedelta(hours=1)
    revoked = revoke(key, later)
    assert revoked == dataclasses.replace(key, status=KeyStatus.REVOKED, revoked_at=later, updated_at=later)
    assert key.status is KeyStatus.ACTIVE  # the original value is untouched


def test_revoking_twice_is_harmless_and_keeps_the_first_revocation_time() -> None:
    key, _, _ = issue()
    once = revoke(key, NOW + timedelta(hours=1))
    twice = revoke(once, NOW + timedelta(hours=2))
    assert twice == once
    assert twice.revoked_at == NOW + timedelta(hours=1)


def test_an_expired_key_can_still_be_revoked() -> None:
    key, _, _ = issue(expires_at=EXPIRES)
    after = EXPIRES + timedelta(days=1)
    assert revoke(key, after).status_at(after) is KeyStatus.REVOKED


def test_a_key_is_a_frozen_value() -> None:
    key, _, _ = issue()
    with pytest.raises(dataclasses.FrozenInstanceError):
        key.status = KeyStatus.ACTIVE  # type: ignore[misc]


# --- authorising ----------------------------------------------------------------------------------


def test_a_key_holding_the_permission_is_allowed() -> None:
    key, _, _ = issue()
    decision = authorize(key, Permission.CUSTOMER_READ)
    assert decision == Allowed()
    assert decision


def test_a_key_lacking_the_permission_is_denied_with_the_missing_permission_named() -> None:
    key, _, _ = issue()
    decision = authorize(key, Permission.CUSTOMER_WRITE)
    assert isinstance(decision, Denied)
    assert not decision
    assert decision.missing is Permission.CUSTOMER_WRITE
    assert decision.reason == (
        "You aren't permitted to perform this request. The API key lacks the customer.write permission."
    )


def test_a_key_with_write_is_allowed_to_read() -> None:
    key, _, _ = issue(permissions=frozenset({Permission.PRODUCT_WRITE}))
    assert authorize(key, Permission.PRODUCT_READ)
    assert not authorize(key, Permission.PRICE_READ)


def test_a_key_with_no_permissions_is_denied_everything() -> None:
    key, _, _ = issue(permissions=frozenset())
    assert not any(authorize(key, p) for p in Permission)
    assert not key.is_legacy


@pytest.mark.parametrize("permission", list(Permission))
def test_a_legacy_key_may_do_exactly_what_the_legacy_catalogue_allows(permission: Permission) -> None:
    key, _, _ = issue(permissions=None)
    assert bool(authorize(key, permission)) is (permission in LEGACY)


def test_a_legacy_key_never_gains_a_permission_added_after_it_was_retired() -> None:
    key, _, _ = issue(permissions=None)
    for later in (Permission.API_KEY_READ, Permission.CLIENT_TOKEN_WRITE, Permission.METRICS_READ):
        decision = authorize(key, later)
        assert isinstance(decision, Denied)
        assert decision.missing is later


# --- the wire -------------------------------------------------------------------------------------


def test_the_wire_fields_keep_paddles_order() -> None:
    # NOTE: the order of the spec's api-key-created example; never reorder.
    assert [f.name for f in dataclasses.fields(ApiKeyWire)] == [
        "id",
        "name",
        "description",
        "status",
        "key",
        "permissions",
        "exposed_at",
        "expires_at",
        "last_used_at",
        "rotatable",
        "created_at",
        "updated_at",
    ]


def test_a_key_on_the_wire_is_obfuscated_with_sorted_permissions_and_rfc3339_times() -> None:
    key, _, _ = issue(environment=Environment.LIVE, expires_at=EXPIRES, rotatable=True)
    key = dataclasses.replace(key, id="apikey_01jkdpbhazdpn3wpcya45as9tg")
    assert dataclasses.asdict(to_wire(key, NOW)) == {
        "id": "apikey_01jkdpbhazdpn3wpcya45as9tg",
        "name": "CRM integration",
        "description": "Reads customers for our CRM.",
        "status": "active",
        "key": "pdl_live_apikey_01jkdpbhaz****",
        "permissions": [
            "address.read",
            "business.read",
            "customer.read",
            "subscription.read",
            "transaction.read",
        ],
        "exposed_at": None,
        "expires_at": "2025-06-26T06:58:38.517522Z",
        "last_used_at": None,
        "rotatable": True,
        "created_at": "2025-03-26T06:58:38.517522Z",
        "updated_at": "2025-03-26T06:58:38.517522Z",
    }


def test_the_wire_shows_used_exposed_and_revoked_keys_as_they_are() -> None:
    key, _, _ = issue()
    used = dataclasses.replace(revoke(key, NOW), last_used_at=NOW, exposed_at=NOW)
    wire = to_wire(used, NOW)
    assert (wire.status, wire.last_used_at, wire.exposed_at) == (
        "revoked",
        "2025-03-26T06:58:38.517522Z",
        "2025-03-26T06:58:38.517522Z",
    )


def test_the_wire_status_is_the_status_at_the_given_time() -> None:
    key, _, _ = issue(expires_at=EXPIRES)
    assert to_wire(key, NOW).status == "active"
    assert to_wire(key, EXPIRES).status == "expired"


def test_the_plaintext_appears_on_the_wire_only_when_passed() -> None:
    key, plaintext, _ = issue()
    assert to_wire(key, NOW).key == key.obfuscated
    assert plaintext not in repr(to_wire(key, NOW))
    assert to_wire(key, NOW, plaintext=plaintext).key == plaintext


@pytest.mark.parametrize("environment", list(Environment))
def test_the_obfuscated_key_is_the_plaintext_up_to_10_characters_of_the_id(environment: Environment) -> None:
    key, plaintext, _ = issue(environment=environment)
    shown = key.obfuscated
    assert shown == plaintext[: len("pdl_xxxx_apikey_") + 10] + "****"
    assert re.fullmatch(apikey_schema("apikey-secret-redacted")["pattern"], shown, re.ASCII)


def test_a_legacy_key_is_shown_with_null_permissions_and_without_pdl_or_secret() -> None:
    key, _, _ = issue(permissions=None, legacy_secret=LEGACY_SECRET)
    wire = to_wire(key, NOW)
    assert wire.permissions is None
    assert wire.key == key.id[: len("apikey_") + 10] + "****"
    assert not wire.key.startswith("pdl_")
    assert not any(LEGACY_SECRET[i : i + 3] in wire.key for i in range(len(LEGACY_SECRET) - 2))
    assert re.fullmatch(apikey_schema("apikey-secret-redacted")["pattern"], wire.key, re.ASCII)


def test_a_key_with_an_empty_permission_list_shows_an_empty_list_not_null() -> None:
    key, _, _ = issue(permissions=frozenset())
    assert to_wire(key, NOW).permissions == []
