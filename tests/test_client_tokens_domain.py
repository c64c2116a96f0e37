"""Client-side tokens, the pure domain (paddle-api.md §1, issue 3 items 1 and 3): issuing, status, wire shape.

The cast: **alice** owns the account; **bob** is a partner integration installed in it; the CLI is
alice at the command line. No store, no clock: time is the constant ``NOW``.
"""

from __future__ import annotations

import dataclasses
import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import (
    DESCRIPTION_MAX,
    NAME_MAX,
    ClientToken,
    ClientTokenWire,
    Creator,
    CreatorKind,
    TokenStatus,
    change_status,
    issue_token,
    revoke,
    to_wire,
)
from keyhouse.domain.credentials import parse_client_token
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import is_id
from tests.spec import spec, validate_component

NOW = datetime(2025, 6, 26, 14, 36, 14, 695000, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
BOB_INSTALLATION = "inst_01jkdpbhazdpn3wpcya45asbob"
ALICE_KEY = "apikey_01jkdpbhazdpn3wpcya45as9tg"
BOB = Creator(CreatorKind.INSTALLATION, BOB_INSTALLATION)
TOKEN_ID = re.compile(r"ctkn_[a-z\d]{26}", re.ASCII)
TOKEN = {
    Environment.SANDBOX: re.compile(r"test_[0-9a-f]{27}", re.ASCII),
    Environment.LIVE: re.compile(r"live_[0-9a-f]{27}", re.ASCII),
}


def issue(**overrides: Any) -> ClientToken:
    """Bob's sandbox token for alice's pricing page, issued at NOW, with any field overridden."""
    arguments: dict[str, Any] = {
        "account_id": ALICE,
        "environment": Environment.SANDBOX,
        "name": "Pricing page",
        "description": None,
        "created_by": BOB,
        "now": NOW,
    }
    return issue_token(**(arguments | overrides))


def field_errors(excinfo: pytest.ExceptionInfo[InvalidField]) -> list[FieldError]:
    assert excinfo.value.errors is not None
    return excinfo.value.errors


def schema(name: str) -> dict[str, Any]:
    found: dict[str, Any] = spec()["components"]["schemas"][name]
    return found


# --- issuing --------------------------------------------------------------------------------------


def test_an_issued_token_is_active_unrevoked_and_created_now() -> None:
    token = issue(description="Paywall on the pricing page.")
    assert TOKEN_ID.fullmatch(token.id)
    assert is_id("ctkn", token.id)
    assert (token.account_id, token.environment) == (ALICE, Environment.SANDBOX)
    assert (token.name, token.description) == ("Pricing page", "Paywall on the pricing page.")
    assert token.status is TokenStatus.ACTIVE
    assert token.created_by == BOB
    assert (token.created_at, token.updated_at, token.revoked_at) == (NOW, NOW, None)


@pytest.mark.parametrize("environment", list(Environment))
def test_the_token_is_the_environments_prefix_and_27_lowercase_hex(environment: Environment) -> None:
    token = issue(environment=environment)
    assert TOKEN[environment].fullmatch(token.token)
    assert len(token.token) == 32
    parsed = parse_client_token(token.token)
    assert parsed is not None
    assert parsed.environment is environment


def test_every_issued_token_is_new() -> None:
    issued = [issue() for _ in range(50)]
    assert len({token.id for token in issued}) == 50
    assert len({token.token for token in issued}) == 50


def test_the_name_and_description_limits_are_the_specs() -> None:
    name, description = schema("client_token-name"), schema("client_token-description")
    assert (name["minLength"], name["maxLength"]) == (1, NAME_MAX) == (1, 150)
    assert (description["minLength"], description["maxLength"]) == (1, DESCRIPTION_MAX) == (1, 500)


@pytest.mark.parametrize("name", ["a", "a" * 150, "Ünïcödé name ✓", " "])
def test_a_name_of_1_to_150_characters_is_accepted(name: str) -> None:
    assert issue(name=name).name == name


@pytest.mark.parametrize("length", [0, 151, 1_000])
def test_a_name_outside_1_to_150_characters_is_refused_naming_the_field(length: int) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(name="a" * length)
    assert excinfo.value.code == "invalid_field"
    assert excinfo.value.status == 400
    assert field_errors(excinfo) == [
        FieldError("name", f"length must be between 1 and 150, provided {length}")
    ]


@pytest.mark.parametrize("name", [None, 5, 1.5, True, ["Pricing page"], {"name": "x"}, b"Pricing page"])
def test_a_name_that_is_not_a_string_is_refused(name: object) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(name=name)
    assert field_errors(excinfo) == [FieldError("name", "must be provided as a string")]


@pytest.mark.parametrize("description", [None, "a", "a" * 500])
def test_a_description_is_null_or_1_to_500_characters(description: str | None) -> None:
    assert issue(description=description).description == description


@pytest.mark.parametrize("length", [0, 501])
def test_a_description_outside_1_to_500_characters_is_refused_naming_the_field(length: int) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(description="a" * length)
    assert field_errors(excinfo) == [
        FieldError("description", f"length must be between 1 and 500, provided {length}")
    ]


@pytest.mark.parametrize("description", [5, False, ["a"], {"a": 1}])
def test_a_description_that_is_neither_a_string_nor_null_is_refused(description: object) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(description=description)
    assert field_errors(excinfo) == [FieldError("description", "must be a string or null")]


@pytest.mark.parametrize(
    ("name", "description"),
    [("", "a" * 501), (None, 5), ("a" * 151, 5), (5, "")],
)
def test_a_bad_name_and_a_bad_description_are_reported_together(name: object, description: object) -> None:
    with pytest.raises(InvalidField) as excinfo:
        issue(name=name, description=description)
    assert [e.field for e in field_errors(excinfo)] == ["name", "description"]


# --- who created it -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("creator", "shown"),
    [
        (Creator(CreatorKind.INSTALLATION, BOB_INSTALLATION), f"installation:{BOB_INSTALLATION}"),
        (Creator(CreatorKind.API_KEY, ALICE_KEY), f"api_key:{ALICE_KEY}"),
        (Creator(CreatorKind.CLI, "alice"), "cli:alice"),
    ],
)
def test_a_creator_reads_as_kind_colon_id(creator: Creator, shown: str) -> None:
    assert str(creator) == shown


def test_a_token_an_installation_created_belongs_to_that_installation() -> None:
    assert issue(created_by=BOB).installation_id == BOB_INSTALLATION


@pytest.mark.parametrize(
    "creator", [Creator(CreatorKind.API_KEY, ALICE_KEY), Creator(CreatorKind.CLI, "alice")]
)
def test_a_token_a_merchant_created_belongs_to_no_installation(creator: Creator) -> None:
    assert issue(created_by=creator).installation_id is None


def test_a_revoked_token_still_belongs_to_its_installation() -> None:
    assert revoke(issue(), LATER).installation_id == BOB_INSTALLATION


# --- status ---------------------------------------------------------------------------------------


def test_patching_an_active_token_to_revoked_revokes_it_now() -> None:
    token = issue()
    revoked = change_status(token, "revoked", LATER)
    assert revoked.status is TokenStatus.REVOKED
    assert (revoked.revoked_at, revoked.updated_at, revoked.created_at) == (LATER, LATER, NOW)
    assert dataclasses.replace(revoked, status=token.status, revoked_at=None, updated_at=NOW) == token


@pytest.mark.parametrize("status", ["active", TokenStatus.ACTIVE])
def test_patching_an_active_token_to_active_changes_nothing(status: object) -> None:
    token = issue()
    assert change_status(token, status, LATER) is token


@pytest.mark.parametrize("status", ["revoked", TokenStatus.REVOKED])
def test_patching_a_revoked_token_to_revoked_changes_nothing(status: object) -> None:
    revoked = revoke(issue(), LATER)
    assert change_status(revoked, status, LATER + timedelta(days=1)) is revoked


def test_a_revoked_token_cannot_be_made_active_again() -> None:
    revoked = revoke(issue(), LATER)
    with pytest.raises(InvalidField) as excinfo:
        change_status(revoked, "active", LATER + timedelta(days=1))
    assert field_errors(excinfo) == [
        FieldError("status", "a revoked client-side token can't be made active again")
    ]


@pytest.mark.parametrize("token", [issue(), revoke(issue(), LATER)], ids=["active", "revoked"])
@pytest.mark.parametrize("status", ["deleted", "ACTIVE", "Revoked", "", " revoked", None, 1, 0, True, 1.5])
def test_an_unknown_status_is_refused_on_the_status_field(token: ClientToken, status: object) -> None:
    with pytest.raises(InvalidField) as excinfo:
        change_status(token, status, LATER)
    assert field_errors(excinfo) == [FieldError("status", "must be one of: active, revoked")]


@pytest.mark.parametrize("status", [[], ["revoked"], {}, {"status": "revoked"}])
def test_a_status_that_is_a_json_array_or_object_is_refused_on_the_status_field(status: object) -> None:
    with pytest.raises(InvalidField) as excinfo:
        change_status(issue(), status, LATER)
    assert field_errors(excinfo) == [FieldError("status", "must be one of: active, revoked")]


def test_revoking_is_idempotent_and_keeps_the_first_revocation_time() -> None:
    once = revoke(issue(), LATER)
    twice = revoke(once, LATER + timedelta(days=1))
    assert twice is once
    assert (twice.revoked_at, twice.updated_at) == (LATER, LATER)


def test_revoking_leaves_the_original_token_untouched() -> None:
    token = issue()
    revoke(token, LATER)
    assert (token.status, token.revoked_at, token.updated_at) == (TokenStatus.ACTIVE, None, NOW)


# --- the wire -------------------------------------------------------------------------------------


def test_the_wire_fields_are_the_specs_required_fields_in_order_then_the_extension() -> None:
    expected = [*schema("client_token")["required"], "allowed_origins"]
    assert [f.name for f in dataclasses.fields(ClientTokenWire)] == expected
    assert list(dataclasses.asdict(to_wire(issue()))) == expected


def test_an_active_token_on_the_wire() -> None:
    token = issue(description="Paywall on the pricing page.")
    assert dataclasses.asdict(to_wire(token)) == {
        "id": token.id,
        "token": token.token,
        "name": "Pricing page",
        "description": "Paywall on the pricing page.",
        "status": "active",
        "revoked_at": None,
        "created_at": "2025-06-26T14:36:14.695000Z",
        "updated_at": "2025-06-26T14:36:14.695000Z",
        "allowed_origins": None,
    }


def test_a_revoked_token_on_the_wire_shows_when_in_utc() -> None:
    east = timezone(timedelta(hours=2))
    wire = to_wire(revoke(issue(description=None), datetime(2025, 6, 27, 2, 0, 0, 1, tzinfo=east)))
    assert (wire.status, wire.description) == ("revoked", None)
    assert wire.revoked_at == wire.updated_at == "2025-06-27T00:00:00.000001Z"
    assert wire.created_at == "2025-06-26T14:36:14.695000Z"


@pytest.mark.parametrize("environment", list(Environment))
@pytest.mark.parametrize("description", [None, "a" * 500])
@pytest.mark.parametrize("revoked", [False, True])
def test_a_token_on_the_wire_validates_against_the_specs_schema(
    environment: Environment, description: str | None, revoked: bool
) -> None:
    token = issue(environment=environment, name="a" * 150, description=description)
    if revoked:
        token = revoke(token, LATER)
    validate_component("client_token", dataclasses.asdict(to_wire(token)))


def test_the_wire_never_shows_the_account_environment_or_creator() -> None:
    wire = dataclasses.asdict(to_wire(issue()))
    assert not {"account_id", "environment", "created_by", "installation_id"} & set(wire)
    assert ALICE not in wire.values()
    assert BOB_INSTALLATION not in wire.values()
