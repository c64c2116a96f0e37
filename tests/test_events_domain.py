"""Events, the pure domain (issue 3 item 6, paddle-api.md §1.3): type names and what an event carries.

The cast: **alice** owns the account; **bob** is a partner integration installed in it, whose
tokens' events carry his installation so that ownership can be applied to them.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientTokenWire, Creator, CreatorKind, issue_token
from keyhouse.domain.client_tokens import to_wire as token_wire
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.events import Event, EventType, new_event
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import issue_key
from keyhouse.domain.keys import to_wire as key_wire
from keyhouse.domain.permissions import Permission
from tests.spec import spec, validate_component

NOW = datetime(2025, 6, 26, 14, 36, 14, 695000, tzinfo=UTC)
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
BOB_INSTALLATION = "inst_01jkdpbhazdpn3wpcya45asbob"
PEPPER = Pepper(b"pepper-one-" + b"x" * 32)


def bobs_token_wire(environment: Environment = Environment.SANDBOX) -> ClientTokenWire:
    token = issue_token(
        account_id=ALICE,
        environment=environment,
        name="Pricing page",
        description=None,
        created_by=Creator(CreatorKind.INSTALLATION, BOB_INSTALLATION),
        now=NOW,
    )
    return token_wire(token)


# --- event types ----------------------------------------------------------------------------------


def test_event_types_are_paddles_wire_names() -> None:
    assert {t.value for t in EventType} == {
        "api_key.created",
        "api_key.expired",
        "api_key.expiring",
        "api_key.revoked",
        "api_key.updated",
        "api_key_exposure.created",
        "api_key_rotation.created",
        "api_key_rotation.updated",
        "client_token.created",
        "client_token.revoked",
        "client_token.updated",
        "notification_setting.disabled",  # keyhouse extension
    }


def test_every_event_type_is_in_the_specs_catalogue() -> None:
    catalogue = set(spec()["components"]["schemas"]["event_type_name"]["enum"])
    assert {t.value for t in EventType} <= catalogue


def test_event_types_are_listed_alphabetically() -> None:
    values = [t.value for t in EventType]
    assert values == sorted(values)


@pytest.mark.parametrize("event_type", list(EventType))
def test_an_event_types_member_name_spells_its_wire_name(event_type: EventType) -> None:
    assert event_type.name == event_type.value.upper().replace(".", "_")
    assert str(event_type) == event_type.value


# --- new_event ------------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", list(Environment))
def test_a_client_token_event_carries_the_token_as_the_api_shows_it(environment: Environment) -> None:
    wire = bobs_token_wire(environment)
    event = new_event(
        EventType.CLIENT_TOKEN_CREATED,
        wire,
        account_id=ALICE,
        environment=environment,
        installation_id=BOB_INSTALLATION,
        now=NOW,
    )
    assert is_id("evt", event.id)
    assert event.type is EventType.CLIENT_TOKEN_CREATED
    assert (event.occurred_at, event.account_id, event.environment) == (NOW, ALICE, environment)
    assert event.installation_id == BOB_INSTALLATION
    assert event.data == dataclasses.asdict(wire)
    assert list(event.data) == [
        *spec()["components"]["schemas"]["client_token"]["required"],
        "allowed_origins",
    ]
    validate_component("client_token", event.data)


def test_a_merchants_api_key_event_belongs_to_no_installation() -> None:
    key, _, _ = issue_key(
        account_id=ALICE,
        environment=Environment.LIVE,
        name="CRM integration",
        description=None,
        permissions=frozenset({Permission.CUSTOMER_READ}),
        expires_at=None,
        rotatable=False,
        now=NOW,
        pepper=PEPPER,
    )
    wire = key_wire(key, NOW)
    event = new_event(
        EventType.API_KEY_CREATED,
        wire,
        account_id=ALICE,
        environment=Environment.LIVE,
        installation_id=None,
        now=NOW,
    )
    assert event.installation_id is None
    assert event.data == dataclasses.asdict(wire)
    assert event.data["id"] == key.id


def test_every_event_is_new() -> None:
    wire = bobs_token_wire()
    events = [
        new_event(
            EventType.CLIENT_TOKEN_REVOKED,
            wire,
            account_id=ALICE,
            environment=Environment.SANDBOX,
            installation_id=BOB_INSTALLATION,
            now=NOW,
        )
        for _ in range(20)
    ]
    assert len({e.id for e in events}) == 20


def test_an_events_data_is_a_copy_of_the_entity_not_a_view_of_it() -> None:
    wire = bobs_token_wire()
    event = new_event(
        EventType.CLIENT_TOKEN_CREATED,
        wire,
        account_id=ALICE,
        environment=Environment.SANDBOX,
        installation_id=BOB_INSTALLATION,
        now=NOW,
    )
    first = new_event(
        EventType.CLIENT_TOKEN_CREATED,
        wire,
        account_id=ALICE,
        environment=Environment.SANDBOX,
        installation_id=BOB_INSTALLATION,
        now=NOW,
    )
    event.data["name"] = "changed"
    assert (wire.name, first.data["name"]) == ("Pricing page", "Pricing page")


def test_an_event_is_frozen() -> None:
    event = new_event(
        EventType.CLIENT_TOKEN_CREATED,
        bobs_token_wire(),
        account_id=ALICE,
        environment=Environment.SANDBOX,
        installation_id=BOB_INSTALLATION,
        now=NOW,
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.installation_id = None  # type: ignore[misc]
    assert isinstance(event, Event)


def test_an_entity_already_in_its_json_form_is_taken_as_it_is() -> None:
    event = new_event(
        EventType.NOTIFICATION_SETTING_DISABLED,
        {"id": "ntfset_x", "active": False},
        account_id=ALICE,
        environment=Environment.SANDBOX,
        installation_id=None,
        now=NOW,
    )
    assert event.data == {"id": "ntfset_x", "active": False}


def test_an_entity_that_is_neither_a_wire_dataclass_nor_json_is_refused() -> None:
    with pytest.raises(TypeError):
        new_event(
            EventType.CLIENT_TOKEN_CREATED,
            ["ctkn_x"],
            account_id=ALICE,
            environment=Environment.SANDBOX,
            installation_id=None,
            now=NOW,
        )
