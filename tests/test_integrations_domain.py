"""Integrations, installations and the early-access gate, the pure domain (issue 3 items 2 and 4).

The cast: **alice** owns the account and holds merchant keys (current and legacy); **bob** is a partner
integration on the early-access allow-list, installed in alice's sandbox; **dave** is a partner
installed the same way but not allow-listed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.integrations import (
    DEFAULT_AVAILABILITY,
    EARLY_ACCESS_DETAIL,
    AuditEntry,
    Availability,
    Feature,
    Installation,
    Integration,
    audit_json,
    client_tokens_gate,
    installation_json,
    integration_json,
)
from keyhouse.domain.keys import Allowed, ApiKey, Denied, issue_key
from keyhouse.domain.permissions import Permission

NOW = datetime(2025, 6, 26, 14, 36, 14, 695000, tzinfo=UTC)
LATER = NOW + timedelta(days=3)
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
BOB_INTEGRATION = "intg_01jkdpbhazdpn3wpcya45asbob"
BOB_INSTALLATION = "inst_01jkdpbhazdpn3wpcya45asbob"
DAVE_INSTALLATION = "inst_01jkdpbhazdpn3wpcya4sdave"
ALLOW_LISTED = frozenset({BOB_INSTALLATION})
PEPPER = Pepper(b"pepper-one-" + b"x" * 32)
CLIENT_TOKENS = frozenset({Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE})


def key(*, permissions: frozenset[Permission] | None = CLIENT_TOKENS, installation_id: str | None) -> ApiKey:
    issued, _, _ = issue_key(
        account_id=ALICE,
        environment=Environment.SANDBOX,
        name="a key",
        description=None,
        permissions=permissions,
        expires_at=None,
        rotatable=False,
        now=NOW,
        pepper=PEPPER,
        installation_id=installation_id,
    )
    return issued


BOB_KEY = key(installation_id=BOB_INSTALLATION)
DAVE_KEY = key(installation_id=DAVE_INSTALLATION)
ALICE_KEY = key(installation_id=None)
ALICE_LEGACY_KEY = key(permissions=None, installation_id=None)
EVERY_KEY = {"bob": BOB_KEY, "dave": DAVE_KEY, "alice": ALICE_KEY, "alice-legacy": ALICE_LEGACY_KEY}


# --- the early-access gate ------------------------------------------------------------------------


def test_a_new_keyhouse_starts_the_client_tokens_api_in_early_access() -> None:
    assert DEFAULT_AVAILABILITY == {Feature.CLIENT_TOKENS_API: Availability.EARLY_ACCESS}


def test_the_feature_and_availability_words_are_the_clis() -> None:
    assert [f.value for f in Feature] == ["client-tokens-api"]
    assert [a.value for a in Availability] == ["early-access", "general-availability"]


def test_the_early_access_detail_is_the_issues_text() -> None:
    assert EARLY_ACCESS_DETAIL == (
        "The client-side tokens API is in early access for allow-listed partner integrations."
    )


@pytest.mark.parametrize("allow_listed", [ALLOW_LISTED, frozenset()], ids=["bob-listed", "none-listed"])
@pytest.mark.parametrize("who", list(EVERY_KEY))
def test_in_general_availability_every_key_passes_the_gate(who: str, allow_listed: frozenset[str]) -> None:
    decision = client_tokens_gate(Availability.GENERAL_AVAILABILITY, EVERY_KEY[who], allow_listed)
    assert decision == Allowed()
    assert decision


def test_in_early_access_an_allow_listed_installations_key_passes_the_gate() -> None:
    decision = client_tokens_gate(Availability.EARLY_ACCESS, BOB_KEY, ALLOW_LISTED)
    assert decision == Allowed()
    assert decision


@pytest.mark.parametrize("who", ["dave", "alice", "alice-legacy"])
def test_in_early_access_every_other_key_is_denied_with_the_early_access_detail(who: str) -> None:
    decision = client_tokens_gate(Availability.EARLY_ACCESS, EVERY_KEY[who], ALLOW_LISTED)
    assert decision == Denied(EARLY_ACCESS_DETAIL)
    assert decision.missing is None  # not a permission problem
    assert not decision


def test_in_early_access_with_nobody_listed_even_bob_is_denied() -> None:
    assert client_tokens_gate(Availability.EARLY_ACCESS, BOB_KEY, frozenset()) == Denied(EARLY_ACCESS_DETAIL)


def test_the_gate_ignores_permissions_which_are_checked_before_it() -> None:
    read_only_bob = key(
        permissions=frozenset({Permission.CLIENT_TOKEN_READ}), installation_id=BOB_INSTALLATION
    )
    no_permission_bob = key(permissions=frozenset(), installation_id=BOB_INSTALLATION)
    for bob in (read_only_bob, no_permission_bob):
        assert client_tokens_gate(Availability.EARLY_ACCESS, bob, ALLOW_LISTED) == Allowed()


# --- JSON shapes for the CLI ----------------------------------------------------------------------


@pytest.mark.parametrize("early_access", [True, False])
def test_an_integration_as_json(early_access: bool) -> None:
    integration = Integration(
        id=BOB_INTEGRATION, name="Bob's paywalls", early_access=early_access, created_at=NOW, updated_at=LATER
    )
    assert integration_json(integration) == {
        "id": BOB_INTEGRATION,
        "name": "Bob's paywalls",
        "early_access": early_access,
        "created_at": "2025-06-26T14:36:14.695000Z",
        "updated_at": "2025-06-29T14:36:14.695000Z",
    }


def installation(**overrides: Any) -> Installation:
    arguments: dict[str, Any] = {
        "id": BOB_INSTALLATION,
        "integration_id": BOB_INTEGRATION,
        "account_id": ALICE,
        "environment": Environment.SANDBOX,
        "created_at": NOW,
    }
    return Installation(**(arguments | overrides))


@pytest.mark.parametrize(
    ("environment", "shown"), [(Environment.SANDBOX, "sandbox"), (Environment.LIVE, "production")]
)
def test_an_active_installation_as_json_shows_paddles_environment_word(
    environment: Environment, shown: str
) -> None:
    active = installation(environment=environment)
    assert active.active
    assert installation_json(active) == {
        "id": BOB_INSTALLATION,
        "integration_id": BOB_INTEGRATION,
        "account_id": ALICE,
        "environment": shown,
        "status": "active",
        "created_at": "2025-06-26T14:36:14.695000Z",
        "uninstalled_at": None,
    }


def test_an_uninstalled_installation_as_json_says_so_and_when_in_utc() -> None:
    west = timezone(timedelta(hours=-5))
    gone = installation(uninstalled_at=datetime(2025, 6, 29, 9, 36, 14, 695000, tzinfo=west))
    assert not gone.active
    shown = installation_json(gone)
    assert (shown["status"], shown["uninstalled_at"]) == ("uninstalled", "2025-06-29T14:36:14.695000Z")
    assert list(shown) == [
        "id",
        "integration_id",
        "account_id",
        "environment",
        "status",
        "created_at",
        "uninstalled_at",
    ]


def test_an_audit_entry_as_json_reads_from_and_to() -> None:
    entry = AuditEntry(
        at=NOW,
        actor="cli:alice",
        subject=f"feature:{Feature.CLIENT_TOKENS_API}",
        field="availability",
        old=Availability.EARLY_ACCESS.value,
        new=Availability.GENERAL_AVAILABILITY.value,
    )
    assert audit_json(entry) == {
        "at": "2025-06-26T14:36:14.695000Z",
        "actor": "cli:alice",
        "subject": "feature:client-tokens-api",
        "field": "availability",
        "from": "early-access",
        "to": "general-availability",
    }


def test_an_audit_entry_of_a_first_setting_has_no_from() -> None:
    entry = AuditEntry(
        at=NOW,
        actor="cli:operator",
        subject=f"integration:{BOB_INTEGRATION}",
        field="early_access",
        old=None,
        new="true",
    )
    shown = audit_json(entry)
    assert (shown["subject"], shown["from"], shown["to"]) == (f"integration:{BOB_INTEGRATION}", None, "true")
