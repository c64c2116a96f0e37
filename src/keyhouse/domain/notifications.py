"""Webhooks: notification settings (destinations), notifications (one per event and destination),
their delivery attempts, the signature and the retry schedule.

A destination belongs to whoever created it. A partner's destination receives only events about
entities its own installation owns; a merchant's receives every event of its environment. Each
delivery attempt is signed anew (``Paddle-Signature: ts=…;h1=…``) because both official SDK
verifiers refuse a signature older than 5 seconds.

Where a destination may point is decided here, once, for two moments: when it is saved (the URL as
written) and when it is delivered to (each address its host resolves to, so a public name that
resolves to a private address is caught too — see ``webhooks``).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.errors import FieldError, InvalidField, UrlNotificationSettingIncorrect
from keyhouse.domain.events import Event, EventType, event_json, event_type_json
from keyhouse.domain.ids import new_id
from keyhouse.domain.times import rfc3339, rfc3339_or_none

DESCRIPTION_MAX = 500
DESTINATION_MAX = 2048
API_VERSIONS = (1,)
SECRET_PREFIX = "pdl_ntfset_"
_ALNUM = string.ascii_letters + string.digits
#: What a delivery log keeps of the receiver's answer: enough to debug, never a whole page.
EXCERPT_MAX = 500
#: Receivers must answer within this (Paddle's rule); the SDK verifiers allow 5 s of signature age.
DELIVERY_TIMEOUT_SECONDS = 5.0
#: Active destinations per account environment (Paddle has a cap; its value is not published).
MAX_ACTIVE_SETTINGS = 25


class TrafficSource(StrEnum):
    PLATFORM = "platform"
    SIMULATION = "simulation"
    ALL = "all"


class NotificationStatus(StrEnum):
    NOT_ATTEMPTED = "not_attempted"
    NEEDS_RETRY = "needs_retry"
    DELIVERED = "delivered"
    FAILED = "failed"


PENDING = frozenset({NotificationStatus.NOT_ATTEMPTED, NotificationStatus.NEEDS_RETRY})


class Origin(StrEnum):
    EVENT = "event"
    REPLAY = "replay"


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationSetting:
    id: str
    account_id: str
    environment: Environment
    description: str
    destination: str
    active: bool
    api_version: int
    include_sensitive_fields: bool
    subscribed_events: tuple[EventType, ...]
    #: The HMAC key of ``Paddle-Signature``: stored retrievably (signing needs it), never logged.
    endpoint_secret_key: str
    traffic_source: TrafficSource
    created_by: Creator
    created_at: datetime
    updated_at: datetime

    @property
    def installation_id(self) -> str | None:
        return self.created_by.id if self.created_by.kind is CreatorKind.INSTALLATION else None

    def __repr__(self) -> str:  # never let the secret reach a log line through a repr
        return f"NotificationSetting(id={self.id!r}, destination={self.destination!r}, active={self.active})"


@dataclass(frozen=True, slots=True, kw_only=True)
class Notification:
    id: str
    setting_id: str
    event_id: str
    account_id: str
    environment: Environment
    #: The destination's owner, copied so a partner's lists need no join.
    installation_id: str | None
    type: str
    status: NotificationStatus
    origin: Origin
    payload: dict[str, Any]
    occurred_at: datetime
    created_at: datetime
    #: When the worker may next attempt it (creation time, then each ``retry_at``).
    due_at: datetime
    delivered_at: datetime | None = None
    replayed_at: datetime | None = None
    last_attempt_at: datetime | None = None
    retry_at: datetime | None = None
    times_attempted: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NotificationLog:
    id: str
    notification_id: str
    #: 0 when no HTTP answer came (timeout, refused connection, blocked address).
    response_code: int
    response_content_type: str | None
    response_body: str
    attempted_at: datetime


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt produced."""

    response_code: int
    response_content_type: str | None
    response_body: str
    #: No retry can fix it (the address is blocked, the URL unusable): fail now.
    permanent: bool = False

    @property
    def delivered(self) -> bool:
        return 200 <= self.response_code < 300

    @classmethod
    def no_response(cls, reason: str, *, permanent: bool = False) -> Outcome:
        return cls(0, None, reason[:EXCERPT_MAX], permanent)


# --- where a destination may point ---------------------------------------------------------------


class HostKind(StrEnum):
    PUBLIC = "public"
    LOOPBACK = "loopback"
    PRIVATE = "private"  # private, link-local, multicast, reserved, unspecified, or a local-only name


_LOCAL_SUFFIXES = (".local", ".internal", ".lan", ".home.arpa", ".localdomain")


def address_kind(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> HostKind:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:10.0.0.1 is 10.0.0.1
    if address.is_loopback:
        return HostKind.LOOPBACK
    if (
        address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    ):
        return HostKind.PRIVATE
    return HostKind.PUBLIC


def host_kind(host: str) -> HostKind:
    """The class of a host as written: an address literal, or a name judged by its form alone."""
    try:
        return address_kind(ipaddress.ip_address(host))
    except ValueError:
        pass
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return HostKind.LOOPBACK
    if "." not in name or name.endswith(_LOCAL_SUFFIXES):
        return HostKind.PRIVATE
    return HostKind.PUBLIC


def refusal(kind: HostKind, scheme: str, environment: Environment, *, allow_private: bool) -> str | None:
    """Why a destination of this kind and scheme may not be used, or None when it may.

    Public hosts need ``https``. Sandbox may also reach this machine (``http://localhost``) so a
    partner can test without a tunnel; private networks only when the operator allows it (tests).
    """
    if kind is HostKind.PUBLIC:
        return None if scheme == "https" else "must use https"
    if allow_private or (kind is HostKind.LOOPBACK and environment is Environment.SANDBOX):
        return None
    if kind is HostKind.LOOPBACK:
        return "must not point at this machine in live (sandbox allows http://localhost)"
    return "must be a public address, not a private, link-local or local-network one"


def check_destination(value: object, environment: Environment, *, allow_private: bool) -> str:
    """A destination URL as saved; every problem is ``url_notification_setting_incorrect``."""

    def incorrect(message: str) -> UrlNotificationSettingIncorrect:
        return UrlNotificationSettingIncorrect(
            f"The destination {message}.", errors=[FieldError("destination", message)]
        )

    if not isinstance(value, str) or not 1 <= len(value) <= DESTINATION_MAX:
        raise incorrect(f"must be a URL of 1 to {DESTINATION_MAX} characters")
    if value != value.strip() or any(ch.isspace() or ord(ch) < 32 for ch in value):
        raise incorrect("must not contain spaces or control characters")
    try:
        parts = urlsplit(value)
        host, _ = parts.hostname, parts.port  # .port raises on a bad port
    except ValueError:
        raise incorrect("is not a valid URL") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise incorrect("must be an http or https URL")
    if not host:
        raise incorrect("must name a host")
    if parts.username is not None or parts.password is not None:
        raise incorrect("must not contain credentials")
    reason = refusal(host_kind(host), scheme, environment, allow_private=allow_private)
    if reason is not None:
        raise incorrect(reason)
    return value


# --- settings --------------------------------------------------------------------------------------


def new_secret(setting_id: str) -> str:
    """``pdl_ntfset_<the setting's 26 id characters>_<32 random alphanumerics>`` (Paddle's pattern)."""
    random_part = "".join(secrets.choice(_ALNUM) for _ in range(32))
    return f"{SECRET_PREFIX}{setting_id.removeprefix('ntfset_')}_{random_part}"


def _description(value: object) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > DESCRIPTION_MAX:
        raise InvalidField.on("description", f"must be a string of 1 to {DESCRIPTION_MAX} characters")
    return value


def _events(value: object) -> tuple[EventType, ...]:
    if not isinstance(value, list):
        raise InvalidField.on("subscribed_events", "must be a list of event type names")
    known = EventType._value2member_map_
    unknown = [str(v) for v in value if not isinstance(v, str) or v not in known]
    if unknown:
        raise InvalidField.on(
            "subscribed_events",
            f"unknown event type(s): {', '.join(unknown)} (GET /event-types lists the types keyhouse emits)",
        )
    return tuple(sorted({EventType(str(v)) for v in value}))


def _bool(field: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise InvalidField.on(field, "must be true or false")
    return value


def _api_version(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value not in API_VERSIONS:
        raise InvalidField.on("api_version", "must be 1, the only version of the API")
    return value


def _traffic_source(value: object) -> TrafficSource:
    if not isinstance(value, str) or value not in TrafficSource._value2member_map_:
        raise InvalidField.on("traffic_source", "must be one of: platform, simulation, all")
    return TrafficSource(value)


def _type(value: object) -> None:
    if value == "email":
        raise InvalidField.on("type", "keyhouse delivers to URLs only; email destinations are not supported")
    if value != "url":
        raise InvalidField.on("type", "must be url")


def new_setting(
    fields: Mapping[str, object],
    *,
    account_id: str,
    environment: Environment,
    created_by: Creator,
    now: datetime,
    allow_private: bool,
) -> NotificationSetting:
    """A destination from a create request's fields (``type``, ``description``, ``destination`` and
    ``subscribed_events`` required, as in Paddle)."""
    missing = [f for f in ("type", "description", "destination", "subscribed_events") if f not in fields]
    if missing:
        raise InvalidField(errors=[FieldError(f, "is required") for f in missing])
    _type(fields["type"])
    setting_id = new_id("ntfset")
    return NotificationSetting(
        id=setting_id,
        account_id=account_id,
        environment=environment,
        description=_description(fields["description"]),
        destination=check_destination(fields["destination"], environment, allow_private=allow_private),
        active=True,
        api_version=_api_version(fields.get("api_version", 1)),
        include_sensitive_fields=_bool(
            "include_sensitive_fields", fields.get("include_sensitive_fields", False)
        ),
        subscribed_events=_events(fields["subscribed_events"]),
        endpoint_secret_key=new_secret(setting_id),
        traffic_source=_traffic_source(fields.get("traffic_source", TrafficSource.PLATFORM.value)),
        created_by=created_by,
        created_at=now,
        updated_at=now,
    )


def change_setting(
    setting: NotificationSetting, changes: Mapping[str, object], *, now: datetime, allow_private: bool
) -> NotificationSetting:
    """Apply a PATCH; ``subscribed_events`` replaces the whole list; ``type`` cannot change."""
    if "type" in changes and changes["type"] != "url":
        raise InvalidField.on("type", "can't be changed")
    values: dict[str, Any] = {}
    if "description" in changes:
        values["description"] = _description(changes["description"])
    if "destination" in changes:
        values["destination"] = check_destination(
            changes["destination"], setting.environment, allow_private=allow_private
        )
    if "active" in changes:
        values["active"] = _bool("active", changes["active"])
    if "api_version" in changes:
        values["api_version"] = _api_version(changes["api_version"])
    if "include_sensitive_fields" in changes:
        values["include_sensitive_fields"] = _bool(
            "include_sensitive_fields", changes["include_sensitive_fields"]
        )
    if "subscribed_events" in changes:
        values["subscribed_events"] = _events(changes["subscribed_events"])
    if "traffic_source" in changes:
        values["traffic_source"] = _traffic_source(changes["traffic_source"])
    if all(getattr(setting, name) == value for name, value in values.items()):
        return setting
    return replace(setting, **values, updated_at=now)


def deactivate(setting: NotificationSetting, now: datetime) -> NotificationSetting:
    return setting if not setting.active else replace(setting, active=False, updated_at=now)


def receives(setting: NotificationSetting, event: Event) -> bool:
    """Whether this destination gets a notification for this event.

    keyhouse emits platform events only; ``simulation`` destinations receive none of them.
    """
    return (
        setting.active
        and setting.account_id == event.account_id
        and setting.environment is event.environment
        and event.type in setting.subscribed_events
        and setting.traffic_source is not TrafficSource.SIMULATION
        and (setting.installation_id is None or setting.installation_id == event.installation_id)
    )


def setting_json(setting: NotificationSetting, *, with_secret: bool = True) -> dict[str, Any]:
    """NOTE: wire format (Paddle's field order). Events about a setting leave the secret out."""
    wire: dict[str, Any] = {
        "id": setting.id,
        "description": setting.description,
        "type": "url",
        "destination": setting.destination,
        "active": setting.active,
        "api_version": setting.api_version,
        "include_sensitive_fields": setting.include_sensitive_fields,
        "subscribed_events": [event_type_json(t) for t in setting.subscribed_events],
        "endpoint_secret_key": setting.endpoint_secret_key,
        "traffic_source": setting.traffic_source.value,
    }
    if not with_secret:
        del wire["endpoint_secret_key"]
    return wire


# --- notifications ---------------------------------------------------------------------------------


def payload(event: Event, notification_id: str) -> dict[str, Any]:
    """The webhook body: the event plus ``notification_id`` (Paddle's key order)."""
    body = event_json(event)
    return {
        "event_id": body["event_id"],
        "event_type": body["event_type"],
        "occurred_at": body["occurred_at"],
        "notification_id": notification_id,
        "data": body["data"],
    }


def new_notification(setting: NotificationSetting, event: Event, now: datetime) -> Notification:
    notification_id = new_id("ntf")
    return Notification(
        id=notification_id,
        setting_id=setting.id,
        event_id=event.id,
        account_id=event.account_id,
        environment=event.environment,
        installation_id=setting.installation_id,
        type=event.type.value,
        status=NotificationStatus.NOT_ATTEMPTED,
        origin=Origin.EVENT,
        payload=payload(event, notification_id),
        occurred_at=event.occurred_at,
        created_at=now,
        due_at=now,
    )


def payload_with_id(body: Mapping[str, Any], notification_id: str) -> dict[str, Any]:
    return {**body, "notification_id": notification_id}


def replay(original: Notification, now: datetime) -> tuple[Notification, Notification]:
    """A new notification for the same event and destination, and the original marked as replayed.

    Raises ``ValueError`` naming Paddle's refusal code when the original may not be replayed.
    """
    if original.origin is not Origin.EVENT:
        raise ValueError("notification_replay_invalid_origin_type")
    if original.status in PENDING:
        raise ValueError("notification_cannot_replay")
    notification_id = new_id("ntf")
    fresh = replace(
        original,
        id=notification_id,
        status=NotificationStatus.NOT_ATTEMPTED,
        origin=Origin.REPLAY,
        payload=payload_with_id(original.payload, notification_id),
        created_at=now,
        due_at=now,
        delivered_at=None,
        replayed_at=None,
        last_attempt_at=None,
        retry_at=None,
        times_attempted=0,
    )
    return fresh, replace(original, replayed_at=now)


def notification_json(notification: Notification) -> dict[str, Any]:
    """NOTE: wire format (Paddle's field order)."""
    return {
        "id": notification.id,
        "type": notification.type,
        "status": notification.status.value,
        "payload": notification.payload,
        "occurred_at": rfc3339(notification.occurred_at),
        "delivered_at": rfc3339_or_none(notification.delivered_at),
        "replayed_at": rfc3339_or_none(notification.replayed_at),
        "origin": notification.origin.value,
        "last_attempt_at": rfc3339_or_none(notification.last_attempt_at),
        "retry_at": rfc3339_or_none(notification.retry_at),
        "times_attempted": notification.times_attempted,
        "notification_setting_id": notification.setting_id,
    }


def log_json(log: NotificationLog) -> dict[str, Any]:
    return {
        "id": log.id,
        "response_code": log.response_code,
        "response_content_type": log.response_content_type,
        "response_body": log.response_body,
        "attempted_at": rfc3339(log.attempted_at),
    }


# --- delivery --------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """``Paddle-Signature``: exactly ``ts=<unix seconds>;h1=<lowercase hex>`` — both SDK verifiers
    reject spaces or other keys. The signed message is ``"<ts>:<raw body>"``."""
    digest = hmac.new(secret.encode(), f"{timestamp}:".encode() + body, hashlib.sha256).hexdigest()
    return f"ts={timestamp};h1={digest}"


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff: ``first`` seconds after the first failure, times ``factor`` per retry,
    at most ``cap``, each stretched by ±10 % jitter so failed destinations are not hit in step."""

    retries: int
    first: float
    factor: float
    cap: float

    def delay(self, failed_attempts: int, jitter: float) -> float | None:
        """Seconds until the next attempt after ``failed_attempts`` failures (``jitter`` in [0, 1)),
        or None when no retry remains."""
        if failed_attempts > self.retries:
            return None
        base = min(self.first * self.factor ** (failed_attempts - 1), self.cap)
        return base * (0.9 + 0.2 * jitter)

    @property
    def window(self) -> float:
        """Seconds from the first failure to the last retry, without jitter."""
        return sum(min(self.first * self.factor**n, self.cap) for n in range(self.retries))


#: Live: Paddle's "up to 60 retries over 3 days" (60 s doubling to 80 min: ~72.8 h). Sandbox: three
#: retries within ~13 minutes, so a partner's test run learns quickly that its receiver is broken.
RETRY_POLICIES: dict[Environment, RetryPolicy] = {
    Environment.LIVE: RetryPolicy(retries=60, first=60.0, factor=2.0, cap=4800.0),
    Environment.SANDBOX: RetryPolicy(retries=3, first=60.0, factor=3.0, cap=540.0),
}


def after_attempt(
    notification: Notification,
    outcome: Outcome,
    *,
    now: datetime,
    jitter: float,
    time_scale: float = 1.0,
) -> tuple[Notification, NotificationLog]:
    """The notification after one attempt, and that attempt's log. ``time_scale`` compresses the
    retry schedule (tests run the worker as a process; production uses 1)."""
    attempts = notification.times_attempted + 1
    log = NotificationLog(
        id=new_id("ntflog"),
        notification_id=notification.id,
        response_code=outcome.response_code,
        response_content_type=outcome.response_content_type,
        response_body=outcome.response_body[:EXCERPT_MAX],
        attempted_at=now,
    )
    common: dict[str, Any] = {"last_attempt_at": now, "times_attempted": attempts, "retry_at": None}
    if outcome.delivered:
        return replace(notification, status=NotificationStatus.DELIVERED, delivered_at=now, **common), log
    delay = None if outcome.permanent else RETRY_POLICIES[notification.environment].delay(attempts, jitter)
    if delay is None:
        return replace(notification, status=NotificationStatus.FAILED, **common), log
    retry_at = now + timedelta(seconds=delay * time_scale)
    common["retry_at"] = retry_at
    return replace(notification, status=NotificationStatus.NEEDS_RETRY, due_at=retry_at, **common), log
