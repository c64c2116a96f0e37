"""Events: what happened to an entity, written in the same transaction as the change (the outbox).

An event names the installation that owns its entity (if any), so a partner sees and receives only
events about its own entities. ``data`` is the entity as the API shows it at that moment.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from keyhouse.domain.accounts import Environment
from keyhouse.domain.ids import new_id
from keyhouse.domain.times import rfc3339


class EventType(StrEnum):
    """NOTE: wire names (Paddle's); never rename one. Alphabetical."""

    API_KEY_CREATED = "api_key.created"
    API_KEY_EXPIRED = "api_key.expired"
    API_KEY_EXPIRING = "api_key.expiring"
    API_KEY_REVOKED = "api_key.revoked"
    API_KEY_UPDATED = "api_key.updated"
    API_KEY_EXPOSURE_CREATED = "api_key_exposure.created"
    API_KEY_ROTATION_CREATED = "api_key_rotation.created"
    API_KEY_ROTATION_UPDATED = "api_key_rotation.updated"
    CLIENT_TOKEN_CREATED = "client_token.created"
    CLIENT_TOKEN_REVOKED = "client_token.revoked"
    CLIENT_TOKEN_UPDATED = "client_token.updated"
    #: keyhouse extension: a destination that failed for the whole retry window was switched off.
    NOTIFICATION_SETTING_DISABLED = "notification_setting.disabled"


#: What ``GET /event-types`` lists: group and description of every type keyhouse emits.
EVENT_TYPES: dict[EventType, tuple[str, str]] = {
    EventType.API_KEY_CREATED: ("API key", "An API key was created."),
    EventType.API_KEY_EXPIRED: ("API key", "An API key reached its expiry and can no longer authenticate."),
    EventType.API_KEY_EXPIRING: ("API key", "An API key expires in 7 days."),
    EventType.API_KEY_REVOKED: ("API key", "An API key was revoked."),
    EventType.API_KEY_UPDATED: ("API key", "An API key was updated."),
    EventType.API_KEY_EXPOSURE_CREATED: ("API key exposure", "An API key was found exposed."),
    EventType.API_KEY_ROTATION_CREATED: ("API key rotation", "An API key rotation was created."),
    EventType.API_KEY_ROTATION_UPDATED: (
        "API key rotation",
        "An API key rotation was completed (its new secret was first used) or canceled.",
    ),
    EventType.CLIENT_TOKEN_CREATED: ("Client-side token", "A client-side token was created."),
    EventType.CLIENT_TOKEN_REVOKED: ("Client-side token", "A client-side token was revoked."),
    EventType.CLIENT_TOKEN_UPDATED: ("Client-side token", "A client-side token was updated."),
    EventType.NOTIFICATION_SETTING_DISABLED: (
        "Notification setting",
        "keyhouse extension: a notification destination failed for its whole retry window and was deactivated.",
    ),
}


def event_type_json(type_: EventType) -> dict[str, Any]:
    group, description = EVENT_TYPES[type_]
    return {"name": type_.value, "description": description, "group": group, "available_versions": [1]}


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    id: str
    type: EventType
    occurred_at: datetime
    account_id: str
    environment: Environment
    installation_id: str | None
    data: dict[str, Any]


def new_event(
    type_: EventType,
    entity: Any,
    *,
    account_id: str,
    environment: Environment,
    installation_id: str | None,
    now: datetime,
) -> Event:
    """``entity`` is a wire dataclass (``ApiKeyWire``, ``ClientTokenWire``…) or its JSON dict."""
    return Event(
        id=new_id("evt"),
        type=type_,
        occurred_at=now,
        account_id=account_id,
        environment=environment,
        installation_id=installation_id,
        data=copy.deepcopy(entity) if isinstance(entity, dict) else dataclasses.asdict(entity),
    )


def event_json(event: Event) -> dict[str, Any]:
    """An event as ``GET /events`` shows it (NOTE: wire format, Paddle's field order)."""
    return {
        "event_id": event.id,
        "event_type": event.type.value,
        "occurred_at": rfc3339(event.occurred_at),
        "data": event.data,
    }
