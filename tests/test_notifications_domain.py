"""Webhooks, the pure domain (paddle-api.md §5): destinations and where they may point, who receives
which event, payloads and replays, the signature, the retry schedule and what an attempt does.

The cast: **alice** owns the account and creates destinations with her own key; **bob** is a
partner integration installed in it, whose destinations receive only events about his installation's
entities; **dave** is another partner in the same account. No store, no clock: time is ``NOW``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import ipaddress
import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from keyhouse.domain import errors
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.errors import (
    FieldError,
    InvalidField,
    InvalidTimeQueryParameter,
    NotificationCannotReplay,
    NotificationError,
    NotificationMaximumActiveSettingsReached,
    NotificationReplayInvalidOriginType,
    UrlNotificationSettingIncorrect,
)
from keyhouse.domain.events import EVENT_TYPES, Event, EventType, event_json, new_event
from keyhouse.domain.ids import is_id
from keyhouse.domain.notifications import (
    DESCRIPTION_MAX,
    DESTINATION_MAX,
    EXCERPT_MAX,
    PENDING,
    RETRY_POLICIES,
    HostKind,
    Notification,
    NotificationLog,
    NotificationSetting,
    NotificationStatus,
    Origin,
    Outcome,
    RetryPolicy,
    TrafficSource,
    address_kind,
    after_attempt,
    change_setting,
    check_destination,
    deactivate,
    host_kind,
    log_json,
    new_notification,
    new_secret,
    new_setting,
    notification_json,
    payload,
    payload_with_id,
    receives,
    refusal,
    replay,
    setting_json,
    signature,
)
from tests.spec import spec, validate_component

NOW = datetime(2025, 6, 26, 14, 36, 14, 695000, tzinfo=UTC)
LATER = NOW + timedelta(hours=1)
SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
ALICE = "acc_01jkdpbhazdpn3wpcya45alice"
CHARLIE = "acc_01jkdpbhazdpn3wpcya4charlie"
ALICE_KEY = "apikey_01jkdpbhazdpn3wpcya45as9tg"
BOB_INSTALLATION = "inst_01jkdpbhazdpn3wpcya45asbob"
DAVE_INSTALLATION = "inst_01jkdpbhazdpn3wpcya4sdave"
MERCHANT = Creator(CreatorKind.API_KEY, ALICE_KEY)
BOB = Creator(CreatorKind.INSTALLATION, BOB_INSTALLATION)
SECRET = re.compile(r"^pdl_ntfset_[a-zA-Z0-9]{26}_[a-zA-Z0-9]{32}$")
SIGNATURE = re.compile(r"ts=\d+;h1=[0-9a-f]{64}")
URL = "https://hooks.example.com/paddle"


def fields(**overrides: object) -> dict[str, object]:
    """A create request's body: alice's hook for client-token events, with any field overridden."""
    body: dict[str, object] = {
        "type": "url",
        "description": "Token audit",
        "destination": URL,
        "subscribed_events": ["client_token.created", "client_token.revoked"],
    }
    return body | overrides


def make_setting(
    environment: Environment = SANDBOX,
    created_by: Creator = MERCHANT,
    *,
    account_id: str = ALICE,
    allow_private: bool = False,
    **overrides: object,
) -> NotificationSetting:
    return new_setting(
        fields(**overrides),
        account_id=account_id,
        environment=environment,
        created_by=created_by,
        now=NOW,
        allow_private=allow_private,
    )


def make_event(
    type_: EventType = EventType.CLIENT_TOKEN_CREATED,
    *,
    account_id: str = ALICE,
    environment: Environment = SANDBOX,
    installation_id: str | None = None,
) -> Event:
    return new_event(
        type_,
        {"id": "ctkn_01ghbkd0frb9k95cnhwd1bxpvk", "name": "Pricing page"},
        account_id=account_id,
        environment=environment,
        installation_id=installation_id,
        now=NOW,
    )


def make_notification(environment: Environment = SANDBOX, **overrides: Any) -> Notification:
    notification = new_notification(make_setting(environment), make_event(environment=environment), NOW)
    return dataclasses.replace(notification, **overrides)


def refused_field(error: pytest.ExceptionInfo[InvalidField]) -> FieldError:
    assert error.value.errors is not None
    assert len(error.value.errors) == 1
    return error.value.errors[0]


# --- errors of the notification area ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("cls", "code"),
    [
        (UrlNotificationSettingIncorrect, "url_notification_setting_incorrect"),
        (NotificationMaximumActiveSettingsReached, "notification_maximum_active_settings_reached"),
        (NotificationCannotReplay, "notification_cannot_replay"),
        (NotificationReplayInvalidOriginType, "notification_replay_invalid_origin_type"),
    ],
)
def test_notification_errors_are_400_request_errors_documented_in_the_notifications_group(
    cls: type[NotificationError], code: str
) -> None:
    error = cls()
    assert isinstance(error, NotificationError)
    assert (error.status, error.type, error.code) == (400, "request_error", code)
    assert error.documentation_url == f"https://developer.paddle.com/v1/errors/notifications/{code}"
    assert error.detail == cls.default_detail


def test_every_notification_error_is_drawn_in_the_modules_tree() -> None:
    assert errors.__doc__ is not None
    for name in (
        "NotificationError",
        "UrlNotificationSettingIncorrect",
        "NotificationMaximumActiveSettingsReached",
        "NotificationCannotReplay",
        "NotificationReplayInvalidOriginType",
        "InvalidTimeQueryParameter",
    ):
        assert name in errors.__doc__


def test_an_invalid_time_query_parameter_is_a_shared_bad_request_with_paddles_detail() -> None:
    error = InvalidTimeQueryParameter()
    assert (error.status, error.code) == (400, "invalid_time_query_parameter")
    assert error.detail == "Invalid timestamp as a query parameter."
    assert error.documentation_url.endswith("/errors/shared/invalid_time_query_parameter")


# --- where a destination may point ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("93.184.216.34", HostKind.PUBLIC),
        ("2606:2800:220:1:248:1893:25c8:1946", HostKind.PUBLIC),
        ("127.0.0.1", HostKind.LOOPBACK),
        ("127.8.9.10", HostKind.LOOPBACK),
        ("::1", HostKind.LOOPBACK),
        ("::ffff:127.0.0.1", HostKind.LOOPBACK),
        ("10.0.0.1", HostKind.PRIVATE),
        ("172.16.5.4", HostKind.PRIVATE),
        ("192.168.1.1", HostKind.PRIVATE),
        ("169.254.169.254", HostKind.PRIVATE),  # cloud metadata, link-local
        ("fe80::1", HostKind.PRIVATE),
        ("fd00::1", HostKind.PRIVATE),
        ("::ffff:10.0.0.1", HostKind.PRIVATE),
        ("::ffff:169.254.169.254", HostKind.PRIVATE),
        ("100.64.0.1", HostKind.PRIVATE),  # carrier-grade NAT: not global
        ("224.0.0.1", HostKind.PRIVATE),
        ("240.0.0.1", HostKind.PRIVATE),
        ("0.0.0.0", HostKind.PRIVATE),
        ("::", HostKind.PRIVATE),
    ],
)
def test_an_address_is_public_loopback_or_private(address: str, kind: HostKind) -> None:
    assert address_kind(ipaddress.ip_address(address)) is kind


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("hooks.example.com", HostKind.PUBLIC),
        ("HOOKS.Example.COM.", HostKind.PUBLIC),
        ("93.184.216.34", HostKind.PUBLIC),
        ("localhost", HostKind.LOOPBACK),
        ("LOCALHOST.", HostKind.LOOPBACK),
        ("api.localhost", HostKind.LOOPBACK),
        ("127.0.0.1", HostKind.LOOPBACK),
        ("::1", HostKind.LOOPBACK),
        ("intranet", HostKind.PRIVATE),  # a single label resolves through the local search domain
        ("printer.local", HostKind.PRIVATE),
        ("metadata.google.internal", HostKind.PRIVATE),
        ("router.lan", HostKind.PRIVATE),
        ("nas.home.arpa", HostKind.PRIVATE),
        ("box.localdomain", HostKind.PRIVATE),
        ("10.1.2.3", HostKind.PRIVATE),
    ],
)
def test_a_host_is_judged_by_its_form(host: str, kind: HostKind) -> None:
    assert host_kind(host) is kind


@pytest.mark.parametrize(
    ("kind", "scheme", "environment", "allow_private", "allowed"),
    [
        (HostKind.PUBLIC, "https", LIVE, False, True),
        (HostKind.PUBLIC, "https", SANDBOX, False, True),
        (HostKind.PUBLIC, "http", LIVE, False, False),
        (HostKind.PUBLIC, "http", SANDBOX, False, False),
        (HostKind.PUBLIC, "http", LIVE, True, False),  # the operator's switch is about networks, not TLS
        (HostKind.LOOPBACK, "http", SANDBOX, False, True),
        (HostKind.LOOPBACK, "https", SANDBOX, False, True),
        (HostKind.LOOPBACK, "http", LIVE, False, False),
        (HostKind.LOOPBACK, "http", LIVE, True, True),
        (HostKind.PRIVATE, "http", SANDBOX, False, False),
        (HostKind.PRIVATE, "https", LIVE, False, False),
        (HostKind.PRIVATE, "http", LIVE, True, True),
        (HostKind.PRIVATE, "http", SANDBOX, True, True),
    ],
)
def test_the_destination_policy(
    kind: HostKind, scheme: str, environment: Environment, allow_private: bool, allowed: bool
) -> None:
    reason = refusal(kind, scheme, environment, allow_private=allow_private)
    assert (reason is None) is allowed


def test_each_refusal_says_why() -> None:
    assert refusal(HostKind.PUBLIC, "http", LIVE, allow_private=False) == "must use https"
    loopback = refusal(HostKind.LOOPBACK, "http", LIVE, allow_private=False)
    assert loopback is not None
    assert "sandbox allows http://localhost" in loopback
    private = refusal(HostKind.PRIVATE, "https", LIVE, allow_private=False)
    assert private is not None
    assert "public address" in private


ACCEPTED = [
    (LIVE, "https://hooks.example.com/paddle"),
    (LIVE, "https://hooks.example.com:8443/paddle?source=paddle#frag"),
    (LIVE, "HTTPS://Hooks.Example.com/"),
    (LIVE, "https://93.184.216.34/hook"),
    (SANDBOX, "https://hooks.example.com/paddle"),
    (SANDBOX, "http://localhost:8080/webhooks"),
    (SANDBOX, "http://127.0.0.1:3000/hook"),
    (SANDBOX, "http://[::1]:3000/hook"),
    (SANDBOX, "https://localhost/hook"),
]


@pytest.mark.parametrize(("environment", "url"), ACCEPTED)
def test_a_usable_destination_is_kept_as_written(environment: Environment, url: str) -> None:
    assert check_destination(url, environment, allow_private=False) == url


REFUSED = [
    # live: public https only
    (LIVE, "http://hooks.example.com/paddle", "must use https"),
    (LIVE, "http://localhost:8080/hook", "must not point at this machine"),
    (LIVE, "https://localhost/hook", "must not point at this machine"),
    (LIVE, "https://127.0.0.1/hook", "must not point at this machine"),
    (LIVE, "https://[::1]/hook", "must not point at this machine"),
    (LIVE, "https://10.0.0.1/hook", "public address"),
    (LIVE, "https://192.168.0.10/hook", "public address"),
    (LIVE, "https://169.254.169.254/latest/meta-data", "public address"),
    (LIVE, "https://[fe80::1]/hook", "public address"),
    (LIVE, "https://[::ffff:10.0.0.1]/hook", "public address"),
    (LIVE, "https://[::ffff:127.0.0.1]/hook", "must not point at this machine"),
    (LIVE, "https://metadata.google.internal/computeMetadata", "public address"),
    (LIVE, "https://intranet/hook", "public address"),
    # sandbox: this machine too, but no private network
    (SANDBOX, "http://hooks.example.com/paddle", "must use https"),
    (SANDBOX, "http://10.0.0.1/hook", "public address"),
    (SANDBOX, "https://172.16.0.1/hook", "public address"),
    (SANDBOX, "http://[fd00::1]/hook", "public address"),
    (SANDBOX, "http://printer.local/hook", "public address"),
    # anywhere: not a usable URL
    (SANDBOX, "https://user:secret@hooks.example.com/paddle", "must not contain credentials"),
    (SANDBOX, "https://user@hooks.example.com/paddle", "must not contain credentials"),
    (SANDBOX, "https://hooks.example.com:99999/paddle", "is not a valid URL"),
    (SANDBOX, "https://hooks.example.com:port/paddle", "is not a valid URL"),
    (SANDBOX, "https://[::1/hook", "is not a valid URL"),
    (SANDBOX, "ftp://hooks.example.com/paddle", "must be an http or https URL"),
    (SANDBOX, "javascript:alert(1)", "must be an http or https URL"),
    (SANDBOX, "hooks.example.com/paddle", "must be an http or https URL"),
    (SANDBOX, "https:///paddle", "must name a host"),
    (SANDBOX, "https://hooks.example.com/pad dle", "must not contain spaces or control characters"),
    (SANDBOX, " https://hooks.example.com/paddle", "must not contain spaces or control characters"),
    (SANDBOX, "https://hooks.example.com/\x00", "must not contain spaces or control characters"),
    (SANDBOX, "https://hooks.example.com/\tx", "must not contain spaces or control characters"),
    (SANDBOX, "", f"must be a URL of 1 to {DESTINATION_MAX} characters"),
    (
        SANDBOX,
        "https://hooks.example.com/" + "a" * (DESTINATION_MAX - 25),
        f"must be a URL of 1 to {DESTINATION_MAX} characters",
    ),
]


@pytest.mark.parametrize(("environment", "url", "message"), REFUSED)
def test_an_unusable_destination_is_url_notification_setting_incorrect_on_destination(
    environment: Environment, url: str, message: str
) -> None:
    with pytest.raises(UrlNotificationSettingIncorrect) as refused:
        check_destination(url, environment, allow_private=False)
    assert refused.value.code == "url_notification_setting_incorrect"
    assert refused.value.errors is not None
    assert refused.value.errors[0].field == "destination"
    assert message in refused.value.errors[0].message
    assert message in refused.value.detail


def test_the_longest_destination_is_accepted_and_one_more_character_is_not() -> None:
    longest = "https://hooks.example.com/" + "a" * (DESTINATION_MAX - 26)
    assert len(longest) == DESTINATION_MAX
    assert check_destination(longest, LIVE, allow_private=False) == longest
    with pytest.raises(UrlNotificationSettingIncorrect):
        check_destination(longest + "a", LIVE, allow_private=False)


@pytest.mark.parametrize("value", [None, 5, ["https://hooks.example.com"], {"url": URL}])
def test_a_destination_that_is_not_a_string_is_refused(value: object) -> None:
    with pytest.raises(UrlNotificationSettingIncorrect) as refused:
        check_destination(value, SANDBOX, allow_private=False)
    assert refused.value.errors == [
        FieldError("destination", f"must be a URL of 1 to {DESTINATION_MAX} characters")
    ]


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:8080/hook", "http://localhost:8080/hook", "http://receiver/hook"]
)
@pytest.mark.parametrize("environment", list(Environment))
def test_the_operators_allow_private_switch_lifts_the_network_rule(
    environment: Environment, url: str
) -> None:
    assert check_destination(url, environment, allow_private=True) == url


def test_allow_private_still_refuses_plain_http_to_a_public_host() -> None:
    with pytest.raises(UrlNotificationSettingIncorrect):
        check_destination("http://hooks.example.com/", LIVE, allow_private=True)


# --- creating a destination ------------------------------------------------------------------------


def test_a_new_setting_has_paddles_defaults_and_an_endpoint_secret() -> None:
    setting = make_setting()
    assert is_id("ntfset", setting.id)
    assert (setting.account_id, setting.environment, setting.created_by) == (ALICE, SANDBOX, MERCHANT)
    assert (setting.description, setting.destination) == ("Token audit", URL)
    assert setting.active is True
    assert setting.api_version == 1
    assert setting.include_sensitive_fields is False
    assert setting.traffic_source is TrafficSource.PLATFORM
    assert setting.subscribed_events == (EventType.CLIENT_TOKEN_CREATED, EventType.CLIENT_TOKEN_REVOKED)
    assert (setting.created_at, setting.updated_at) == (NOW, NOW)
    assert SECRET.fullmatch(setting.endpoint_secret_key)


def test_the_secret_carries_the_settings_id_and_32_random_alphanumerics() -> None:
    setting = make_setting()
    assert setting.endpoint_secret_key.startswith("pdl_ntfset_" + setting.id.removeprefix("ntfset_") + "_")
    secrets = {new_secret(setting.id) for _ in range(50)}
    assert len(secrets) == 50
    assert all(SECRET.fullmatch(s) for s in secrets)
    # the random part draws from both cases and digits, as Paddle's pattern allows
    randoms = "".join(s.rsplit("_", 1)[1] for s in secrets)
    assert any(c.isupper() for c in randoms)
    assert any(c.islower() for c in randoms)
    assert any(c.isdigit() for c in randoms)


def test_a_setting_never_shows_its_secret_in_a_repr() -> None:
    setting = make_setting()
    assert setting.endpoint_secret_key not in repr(setting)
    assert setting.id in repr(setting)


def test_every_optional_field_can_be_given_on_create() -> None:
    setting = make_setting(api_version=1, include_sensitive_fields=True, traffic_source="all")
    assert (setting.api_version, setting.include_sensitive_fields) == (1, True)
    assert setting.traffic_source is TrafficSource.ALL


def test_subscribed_events_are_deduplicated_and_sorted() -> None:
    setting = make_setting(
        subscribed_events=["client_token.revoked", "api_key.created", "client_token.revoked"]
    )
    assert setting.subscribed_events == (EventType.API_KEY_CREATED, EventType.CLIENT_TOKEN_REVOKED)


def test_subscribing_to_no_event_is_allowed() -> None:
    assert make_setting(subscribed_events=[]).subscribed_events == ()


def test_a_partners_setting_belongs_to_its_installation_and_a_merchants_to_none() -> None:
    assert make_setting(created_by=BOB).installation_id == BOB_INSTALLATION
    assert make_setting().installation_id is None
    assert make_setting(created_by=Creator(CreatorKind.CLI, "alice")).installation_id is None


def test_missing_required_fields_are_each_named() -> None:
    with pytest.raises(InvalidField) as refused:
        new_setting(
            {"description": "x"},
            account_id=ALICE,
            environment=SANDBOX,
            created_by=MERCHANT,
            now=NOW,
            allow_private=False,
        )
    assert refused.value.errors == [
        FieldError("type", "is required"),
        FieldError("destination", "is required"),
        FieldError("subscribed_events", "is required"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("type", "email", "email destinations are not supported"),
        ("type", "sms", "must be url"),
        ("type", None, "must be url"),
        ("description", "", "must be a string of 1 to 500 characters"),
        ("description", "   ", "must be a string of 1 to 500 characters"),
        ("description", "x" * (DESCRIPTION_MAX + 1), "must be a string of 1 to 500 characters"),
        ("description", 7, "must be a string of 1 to 500 characters"),
        ("subscribed_events", "client_token.created", "must be a list of event type names"),
        ("subscribed_events", ["transaction.billed"], "unknown event type(s): transaction.billed"),
        ("subscribed_events", ["client_token.created", 3], "unknown event type(s): 3"),
        ("api_version", 2, "must be 1"),
        ("api_version", "1", "must be 1"),
        ("api_version", True, "must be 1"),
        ("include_sensitive_fields", "yes", "must be true or false"),
        ("include_sensitive_fields", 1, "must be true or false"),
        ("traffic_source", "everything", "must be one of: platform, simulation, all"),
        ("traffic_source", 1, "must be one of: platform, simulation, all"),
    ],
)
def test_a_bad_field_on_create_is_invalid_field_naming_it(field: str, value: object, message: str) -> None:
    with pytest.raises(InvalidField) as refused:
        new_setting(
            fields(**{field: value}),
            account_id=ALICE,
            environment=SANDBOX,
            created_by=MERCHANT,
            now=NOW,
            allow_private=False,
        )
    error = refused_field(refused)
    assert error.field == field
    assert message in error.message


def test_a_bad_destination_on_create_is_url_notification_setting_incorrect() -> None:
    with pytest.raises(UrlNotificationSettingIncorrect):
        make_setting(LIVE, destination="http://hooks.example.com/")
    assert make_setting(LIVE, destination="http://10.0.0.1/", allow_private=True).destination


def test_a_description_of_500_characters_is_accepted() -> None:
    assert len(make_setting(description="d" * DESCRIPTION_MAX).description) == DESCRIPTION_MAX


def test_a_description_of_501_characters_is_refused_even_when_the_excess_is_a_space() -> None:
    # The description is stored as written and the wire schema caps it at 500 (maxLength), so
    # trailing whitespace must not carry a longer one past the check.
    with pytest.raises(InvalidField) as refused:
        make_setting(description="d" * DESCRIPTION_MAX + " ")
    assert refused_field(refused).field == "description"


# --- changing a destination ------------------------------------------------------------------------


def test_patch_replaces_the_whole_list_of_subscribed_events() -> None:
    setting = make_setting()
    changed = change_setting(
        setting, {"subscribed_events": ["api_key.revoked"]}, now=LATER, allow_private=False
    )
    assert changed.subscribed_events == (EventType.API_KEY_REVOKED,)
    assert changed.updated_at == LATER
    assert (changed.id, changed.endpoint_secret_key, changed.created_at) == (
        setting.id,
        setting.endpoint_secret_key,
        NOW,
    )


def test_patch_changes_every_updatable_field() -> None:
    setting = make_setting()
    changed = change_setting(
        setting,
        {
            "description": "New",
            "destination": "https://other.example.com/hook",
            "active": False,
            "api_version": 1,
            "include_sensitive_fields": True,
            "subscribed_events": [],
            "traffic_source": "simulation",
        },
        now=LATER,
        allow_private=False,
    )
    assert (changed.description, changed.destination, changed.active) == (
        "New",
        "https://other.example.com/hook",
        False,
    )
    assert changed.include_sensitive_fields is True
    assert changed.subscribed_events == ()
    assert changed.traffic_source is TrafficSource.SIMULATION


def test_a_patch_that_changes_nothing_returns_the_same_setting() -> None:
    setting = make_setting()
    same = {
        "type": "url",
        "description": setting.description,
        "destination": setting.destination,
        "active": True,
        "api_version": 1,
        "include_sensitive_fields": False,
        "subscribed_events": ["client_token.revoked", "client_token.created"],
        "traffic_source": "platform",
    }
    assert change_setting(setting, same, now=LATER, allow_private=False) is setting
    assert change_setting(setting, {}, now=LATER, allow_private=False) is setting


@pytest.mark.parametrize("value", ["email", None, "URL"])
def test_the_type_of_a_destination_cannot_change(value: object) -> None:
    with pytest.raises(InvalidField) as refused:
        change_setting(make_setting(), {"type": value}, now=LATER, allow_private=False)
    assert refused_field(refused) == FieldError("type", "can't be changed")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("description", ""),
        ("active", "no"),
        ("api_version", 0),
        ("include_sensitive_fields", None),
        ("subscribed_events", ["nope"]),
        ("traffic_source", "none"),
    ],
)
def test_a_bad_field_on_patch_is_invalid_field_naming_it(field: str, value: object) -> None:
    with pytest.raises(InvalidField) as refused:
        change_setting(make_setting(), {field: value}, now=LATER, allow_private=False)
    assert refused_field(refused).field == field


def test_a_patched_destination_follows_the_policy_of_the_settings_environment() -> None:
    live = make_setting(LIVE)
    with pytest.raises(UrlNotificationSettingIncorrect):
        change_setting(live, {"destination": "http://localhost:8080/"}, now=LATER, allow_private=False)
    sandbox = make_setting(SANDBOX)
    moved = change_setting(sandbox, {"destination": "http://localhost:8080/"}, now=LATER, allow_private=False)
    assert moved.destination == "http://localhost:8080/"


def test_deactivating_is_one_way_and_idempotent() -> None:
    setting = make_setting()
    inactive = deactivate(setting, LATER)
    assert (inactive.active, inactive.updated_at) == (False, LATER)
    assert deactivate(inactive, LATER + timedelta(hours=1)) is inactive


# --- who receives what -----------------------------------------------------------------------------


def test_a_merchants_destination_receives_every_subscribed_event_of_its_environment() -> None:
    setting = make_setting()
    assert receives(setting, make_event())
    assert receives(setting, make_event(installation_id=BOB_INSTALLATION))
    assert not receives(setting, make_event(EventType.API_KEY_CREATED))


def test_a_partners_destination_receives_only_events_about_its_own_installation() -> None:
    setting = make_setting(created_by=BOB)
    assert receives(setting, make_event(installation_id=BOB_INSTALLATION))
    assert not receives(setting, make_event(installation_id=DAVE_INSTALLATION))
    assert not receives(setting, make_event(installation_id=None))


def test_no_destination_receives_another_accounts_or_environments_events() -> None:
    setting = make_setting()
    assert not receives(setting, make_event(account_id=CHARLIE))
    assert not receives(setting, make_event(environment=LIVE))


def test_an_inactive_destination_receives_nothing() -> None:
    assert not receives(deactivate(make_setting(), LATER), make_event())


@pytest.mark.parametrize(
    ("source", "expected"),
    [("platform", True), ("all", True), ("simulation", False)],
)
def test_only_platform_and_all_destinations_receive_keyhouses_platform_events(
    source: str, expected: bool
) -> None:
    assert receives(make_setting(traffic_source=source), make_event()) is expected


# --- wire shapes -----------------------------------------------------------------------------------


def test_setting_json_is_paddles_entity_in_the_specs_field_order() -> None:
    setting = make_setting()
    wire = setting_json(setting)
    assert list(wire) == list(spec()["components"]["schemas"]["notification_setting"]["properties"])
    assert wire["type"] == "url"
    assert wire["endpoint_secret_key"] == setting.endpoint_secret_key
    assert wire["traffic_source"] == "platform"
    assert wire["subscribed_events"] == [
        {
            "name": "client_token.created",
            "description": EVENT_TYPES[EventType.CLIENT_TOKEN_CREATED][1],
            "group": EVENT_TYPES[EventType.CLIENT_TOKEN_CREATED][0],
            "available_versions": [1],
        },
        {
            "name": "client_token.revoked",
            "description": EVENT_TYPES[EventType.CLIENT_TOKEN_REVOKED][1],
            "group": EVENT_TYPES[EventType.CLIENT_TOKEN_REVOKED][0],
            "available_versions": [1],
        },
    ]
    validate_component("notification_setting", wire)


def test_setting_json_without_the_secret_leaves_only_the_secret_out() -> None:
    setting = make_setting()
    wire = setting_json(setting, with_secret=False)
    assert "endpoint_secret_key" not in wire
    assert setting.endpoint_secret_key not in repr(wire)
    assert wire == {k: v for k, v in setting_json(setting).items() if k != "endpoint_secret_key"}


def test_the_payload_is_the_event_plus_the_notification_id_in_paddles_key_order() -> None:
    event = make_event()
    body = payload(event, "ntf_01hv97zsr34dfd2e6wd9cswxmr")
    assert list(body) == ["event_id", "event_type", "occurred_at", "notification_id", "data"]
    assert body == {**event_json(event), "notification_id": "ntf_01hv97zsr34dfd2e6wd9cswxmr"}
    assert body["occurred_at"] == "2025-06-26T14:36:14.695000Z"


def test_a_new_notification_is_due_now_and_not_attempted() -> None:
    setting = make_setting(created_by=BOB)
    event = make_event(installation_id=BOB_INSTALLATION)
    notification = new_notification(setting, event, LATER)
    assert is_id("ntf", notification.id)
    assert notification.payload == payload(event, notification.id)
    assert (notification.setting_id, notification.event_id) == (setting.id, event.id)
    assert (notification.account_id, notification.environment) == (ALICE, SANDBOX)
    assert notification.installation_id == BOB_INSTALLATION
    assert notification.type == "client_token.created"
    assert (notification.status, notification.origin) == (NotificationStatus.NOT_ATTEMPTED, Origin.EVENT)
    assert (notification.occurred_at, notification.created_at, notification.due_at) == (NOW, LATER, LATER)
    assert notification.times_attempted == 0
    assert notification.delivered_at is notification.replayed_at is notification.retry_at is None


def test_notification_json_is_paddles_entity_in_the_specs_field_order() -> None:
    notification = make_notification()
    wire = notification_json(notification)
    assert list(wire) == list(spec()["components"]["schemas"]["notification"]["properties"])
    assert wire["status"] == "not_attempted"
    assert wire["origin"] == "event"
    assert wire["notification_setting_id"] == notification.setting_id
    assert wire["delivered_at"] is None
    validate_component("notification", wire)
    delivered, _ = after_attempt(notification, Outcome(200, None, ""), now=LATER, jitter=0.5)
    wire = notification_json(delivered)
    assert wire["delivered_at"] == wire["last_attempt_at"] == "2025-06-26T15:36:14.695000Z"
    validate_component("notification", wire)


def test_log_json_is_paddles_entity_in_the_specs_field_order() -> None:
    log = NotificationLog(
        id="ntflog_01h8c0bswct46cwamynrzs6fwr",
        notification_id="ntf_01hv97zsr34dfd2e6wd9cswxmr",
        response_code=200,
        response_content_type="text/plain; charset=UTF-8",
        response_body="",
        attempted_at=NOW,
    )
    wire = log_json(log)
    assert list(wire) == list(spec()["components"]["schemas"]["notification_log"]["properties"])
    assert wire["attempted_at"] == "2025-06-26T14:36:14.695000Z"
    validate_component("notification_log", wire)


def test_a_status_is_pending_until_delivered_or_failed() -> None:
    assert {NotificationStatus.NOT_ATTEMPTED, NotificationStatus.NEEDS_RETRY} == PENDING
    assert [s.value for s in NotificationStatus] == spec()["components"]["schemas"]["status-notification"][
        "enum"
    ]


# --- replay ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [NotificationStatus.DELIVERED, NotificationStatus.FAILED])
def test_a_delivered_or_failed_notification_is_replayed_as_a_fresh_one(status: NotificationStatus) -> None:
    original = make_notification(
        status=status, times_attempted=4, last_attempt_at=NOW, delivered_at=NOW, retry_at=None
    )
    fresh, replayed = replay(original, LATER)
    assert is_id("ntf", fresh.id)
    assert fresh.id != original.id
    assert (fresh.origin, fresh.status, fresh.times_attempted) == (
        Origin.REPLAY,
        NotificationStatus.NOT_ATTEMPTED,
        0,
    )
    assert (fresh.created_at, fresh.due_at, fresh.occurred_at) == (LATER, LATER, original.occurred_at)
    assert fresh.delivered_at is fresh.last_attempt_at is fresh.replayed_at is fresh.retry_at is None
    assert (fresh.setting_id, fresh.event_id, fresh.type) == (
        original.setting_id,
        original.event_id,
        original.type,
    )
    # the same event, re-addressed: only the notification id changes, in its place
    assert fresh.payload == {**original.payload, "notification_id": fresh.id}
    assert list(fresh.payload) == list(original.payload)
    assert replayed == dataclasses.replace(original, replayed_at=LATER)


@pytest.mark.parametrize("status", sorted(PENDING))
def test_a_pending_notification_cannot_be_replayed(status: NotificationStatus) -> None:
    with pytest.raises(ValueError, match=r"^notification_cannot_replay$"):
        replay(make_notification(status=status), LATER)


@pytest.mark.parametrize("status", list(NotificationStatus))
def test_a_replay_cannot_itself_be_replayed(status: NotificationStatus) -> None:
    with pytest.raises(ValueError, match=r"^notification_replay_invalid_origin_type$"):
        replay(make_notification(status=status, origin=Origin.REPLAY), LATER)


def test_payload_with_id_readdresses_a_body() -> None:
    body = {"event_id": "evt_1", "notification_id": "ntf_old", "data": {}}
    assert payload_with_id(body, "ntf_new") == {"event_id": "evt_1", "notification_id": "ntf_new", "data": {}}
    assert body["notification_id"] == "ntf_old"


# --- the signature ---------------------------------------------------------------------------------


def test_the_signature_matches_paddles_verified_test_vector() -> None:
    assert signature("VALID_SECRET", 1698796800, b'{"data": ["1", "2"]}') == (
        "ts=1698796800;h1=a300428748dce5c70e4da19bffd60769591ea969c99dea3105d0ec9612cf43f9"
    )


def test_the_signature_header_is_exactly_ts_then_h1() -> None:
    secret = make_setting().endpoint_secret_key
    header = signature(secret, 1671552777, b"{}")
    assert SIGNATURE.fullmatch(header)
    ts, h1 = header.split(";")
    assert ts == "ts=1671552777"
    expected = hmac.new(secret.encode(), b"1671552777:{}", hashlib.sha256).hexdigest()
    assert h1 == f"h1={expected}"


def test_the_signature_covers_the_timestamp_the_body_and_the_secret() -> None:
    base = signature("secret", 1, b"{}")
    assert signature("secret", 2, b"{}") != base
    assert signature("secret", 1, b"{ }") != base
    assert signature("other", 1, b"{}") != base


# --- the retry schedule ----------------------------------------------------------------------------


@pytest.mark.parametrize("environment", list(Environment))
def test_each_retry_waits_longer_until_the_cap(environment: Environment) -> None:
    policy = RETRY_POLICIES[environment]
    delays = [policy.delay(n, 0.5) for n in range(1, policy.retries + 1)]
    assert all(d is not None for d in delays)
    steady = [d for d in delays if d is not None]
    assert steady[0] == pytest.approx(policy.first)
    assert all(a < b or b == pytest.approx(policy.cap) for a, b in itertools.pairwise(steady))
    assert max(steady) == pytest.approx(policy.cap)


@pytest.mark.parametrize("environment", list(Environment))
@pytest.mark.parametrize("failed", [1, 2, 3])
def test_jitter_stretches_a_delay_by_at_most_ten_percent(environment: Environment, failed: int) -> None:
    policy = RETRY_POLICIES[environment]
    middle = policy.delay(failed, 0.5)
    low, high = policy.delay(failed, 0.0), policy.delay(failed, 0.999999)
    assert middle is not None
    assert low is not None
    assert high is not None
    assert low == pytest.approx(middle * 0.9)
    assert low < middle < high < middle * 1.1


@pytest.mark.parametrize("environment", list(Environment))
def test_no_retry_remains_after_the_last_one(environment: Environment) -> None:
    policy = RETRY_POLICIES[environment]
    assert policy.delay(policy.retries, 0.5) is not None
    assert policy.delay(policy.retries + 1, 0.5) is None
    assert policy.delay(policy.retries + 10, 0.0) is None


def test_live_retries_60_times_over_about_three_days() -> None:
    policy = RETRY_POLICIES[LIVE]
    assert policy.retries == 60
    assert timedelta(days=2.9) <= timedelta(seconds=policy.window) <= timedelta(days=3.1)


def test_sandbox_retries_three_times_within_a_quarter_hour() -> None:
    policy = RETRY_POLICIES[SANDBOX]
    assert policy.retries == 3
    assert policy.window <= 15 * 60
    assert [policy.delay(n, 0.5) for n in (1, 2, 3, 4)] == [60.0, 180.0, 540.0, None]


def test_a_policys_window_sums_its_unjittered_delays() -> None:
    policy = RetryPolicy(retries=4, first=10.0, factor=2.0, cap=50.0)
    assert policy.window == 10 + 20 + 40 + 50
    assert [policy.delay(n, 0.5) for n in range(1, 6)] == [10.0, 20.0, 40.0, 50.0, None]


# --- what an attempt does --------------------------------------------------------------------------


def test_an_outcome_is_delivered_only_on_2xx() -> None:
    assert Outcome(200, None, "").delivered
    assert Outcome(204, None, "").delivered
    assert Outcome(299, None, "").delivered
    assert not Outcome(199, None, "").delivered
    assert not Outcome(301, None, "").delivered
    assert not Outcome(500, None, "").delivered
    assert not Outcome.no_response("timeout").delivered


def test_no_response_keeps_a_short_reason_and_may_be_permanent() -> None:
    outcome = Outcome.no_response("x" * 2000, permanent=True)
    assert (outcome.response_code, outcome.response_content_type) == (0, None)
    assert len(outcome.response_body) == EXCERPT_MAX
    assert outcome.permanent
    assert not Outcome.no_response("refused").permanent


def test_a_2xx_delivers() -> None:
    notification = make_notification()
    after, log = after_attempt(notification, Outcome(200, "text/plain", "ok"), now=LATER, jitter=0.5)
    assert after.status is NotificationStatus.DELIVERED
    assert (after.delivered_at, after.last_attempt_at, after.retry_at) == (LATER, LATER, None)
    assert after.times_attempted == 1
    assert is_id("ntflog", log.id)
    assert (log.notification_id, log.response_code, log.response_content_type) == (
        notification.id,
        200,
        "text/plain",
    )
    assert (log.response_body, log.attempted_at) == ("ok", LATER)


def test_a_500_needs_a_retry_at_the_schedules_time() -> None:
    notification = make_notification(LIVE)
    after, log = after_attempt(notification, Outcome(500, None, "boom"), now=LATER, jitter=0.5)
    assert after.status is NotificationStatus.NEEDS_RETRY
    assert after.retry_at == after.due_at == LATER + timedelta(seconds=60)
    assert (after.times_attempted, after.last_attempt_at, after.delivered_at) == (1, LATER, None)
    assert log.response_code == 500
    again, _ = after_attempt(after, Outcome(503, None, ""), now=LATER, jitter=0.0)
    assert again.times_attempted == 2
    assert again.retry_at == LATER + timedelta(seconds=120 * 0.9)


def test_a_retry_that_succeeds_clears_retry_at() -> None:
    failing, _ = after_attempt(make_notification(), Outcome(500, None, ""), now=NOW, jitter=0.5)
    after, _ = after_attempt(failing, Outcome(200, None, ""), now=LATER, jitter=0.5)
    assert (after.status, after.retry_at, after.times_attempted) == (NotificationStatus.DELIVERED, None, 2)


def test_a_permanent_failure_fails_at_once() -> None:
    after, log = after_attempt(
        make_notification(LIVE), Outcome.no_response("blocked", permanent=True), now=LATER, jitter=0.5
    )
    assert (after.status, after.retry_at, after.times_attempted) == (NotificationStatus.FAILED, None, 1)
    assert (log.response_code, log.response_body) == (0, "blocked")


@pytest.mark.parametrize("environment", list(Environment))
def test_a_notification_fails_when_its_retries_are_exhausted(environment: Environment) -> None:
    retries = RETRY_POLICIES[environment].retries
    notification = make_notification(environment)
    for _ in range(retries):
        notification, _log = after_attempt(notification, Outcome(500, None, ""), now=NOW, jitter=0.5)
        assert notification.status is NotificationStatus.NEEDS_RETRY
    notification, _log = after_attempt(notification, Outcome(500, None, ""), now=LATER, jitter=0.5)
    assert notification.status is NotificationStatus.FAILED
    assert notification.times_attempted == retries + 1
    assert notification.retry_at is None


def test_time_scale_compresses_the_schedule() -> None:
    after, _ = after_attempt(
        make_notification(LIVE), Outcome(500, None, ""), now=NOW, jitter=0.5, time_scale=0.001
    )
    assert after.retry_at == NOW + timedelta(seconds=0.06)


def test_a_log_keeps_at_most_500_characters_of_the_answer() -> None:
    _, log = after_attempt(make_notification(), Outcome(500, "text/html", "é" * 5000), now=NOW, jitter=0.5)
    assert log.response_body == "é" * EXCERPT_MAX


# --- events built from a dict (notification_setting.disabled carries setting_json) ------------------


def test_an_event_may_carry_an_entitys_json_dict() -> None:
    wire = setting_json(make_setting(), with_secret=False)
    event = new_event(
        EventType.NOTIFICATION_SETTING_DISABLED,
        wire,
        account_id=ALICE,
        environment=SANDBOX,
        installation_id=None,
        now=NOW,
    )
    assert event.data == wire
    assert event_json(event)["event_type"] == "notification_setting.disabled"
    assert EVENT_TYPES[EventType.NOTIFICATION_SETTING_DISABLED][0] == "Notification setting"


def test_an_event_built_from_a_dict_is_a_copy_not_a_view_of_it() -> None:
    wire = setting_json(make_setting(), with_secret=False)
    event = new_event(
        EventType.NOTIFICATION_SETTING_DISABLED,
        wire,
        account_id=ALICE,
        environment=SANDBOX,
        installation_id=None,
        now=NOW,
    )
    wire["description"] = "changed afterwards"
    assert event.data["description"] == "Token audit"
