"""Server API routes for webhooks: ``/notification-settings`` (``notification_setting.read|write``)
and ``/notifications`` with logs and replay (``notification.read|write``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, Router, delete, get, patch, post
from litestar.params import FromPath, QueryParameter

from keyhouse.domain.errors import InvalidField, InvalidTimeQueryParameter
from keyhouse.domain.events import EventType
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.notifications import (
    NotificationStatus,
    TrafficSource,
    log_json,
    notification_json,
    setting_json,
)
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import parse_rfc3339
from keyhouse.services import notifications as service
from keyhouse.services.client_tokens import TokenScope as Scope
from keyhouse.services.deps import Deps
from keyhouse.store import NotificationFilter
from keyhouse.web import pagination
from keyhouse.web.bodies import json_object
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import ERRORS, envelope, with_json_body

FIELDS = {
    "description": {"type": "string", "minLength": 1, "maxLength": 500},
    "type": {"type": "string", "enum": ["url"], "description": "keyhouse delivers to URLs only"},
    "destination": {"type": "string", "minLength": 1, "maxLength": 2048, "format": "uri"},
    "active": {"type": "boolean"},
    "api_version": {"type": "integer", "enum": [1]},
    "include_sensitive_fields": {"type": "boolean"},
    "subscribed_events": {"type": "array", "items": {"type": "string", "enum": [t.value for t in EventType]}},
    "traffic_source": {"type": "string", "enum": [t.value for t in TrafficSource]},
}
CREATE_FIELDS = {name for name in FIELDS if name != "active"}
CREATE_BODY = with_json_body(
    {
        "type": "object",
        "properties": {k: v for k, v in FIELDS.items() if k in CREATE_FIELDS},
        "required": ["type", "description", "destination", "subscribed_events"],
    }
)
UPDATE_BODY = with_json_body({"type": "object", "properties": FIELDS})


def _time(raw: str | None) -> datetime | None:
    if raw is None:
        return None
    parsed = parse_rfc3339(raw)
    if parsed is None:
        raise InvalidTimeQueryParameter()
    return parsed


def _active(raw: str | None) -> bool | None:
    if raw is None:
        return None
    if raw.lower() not in ("true", "false"):
        raise InvalidField.on("active", "must be true or false")
    return raw.lower() == "true"


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    def caller(request: Request[Any, Any, Any]) -> ApiKey:
        key = principal_of(request)
        assert key is not None  # the guard authenticated it and checked the permission
        return key

    # --- notification settings ---------------------------------------------------------------------
    @get(
        "/notification-settings",
        opt={"permission": Permission.NOTIFICATION_SETTING_READ},
        responses=ERRORS,
        summary="List notification settings",
        operation_id="list-notification-settings",
    )
    async def list_notification_settings(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 200")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[ASC] (default) or id[DESC]")] = None,
        active: Annotated[str | None, QueryParameter(description="true or false")] = None,
        traffic_source: Annotated[
            str | None, QueryParameter(description="platform, simulation or all")
        ] = None,
    ) -> dict[str, Any]:
        key = caller(request)
        if traffic_source is not None and traffic_source not in TrafficSource._value2member_map_:
            raise InvalidField.on("traffic_source", "must be one of: platform, simulation, all")
        source = None if traffic_source is None else TrafficSource(traffic_source)
        page = pagination.page_request(request, "ntfset", descending_default=False, per_page_default=200)
        found = await service.list_settings(deps, Scope.of_key(key), _active(active), source, page)
        return pagination.page_envelope(request, urls, page, found, [setting_json(s) for s in found.items])

    @post(
        "/notification-settings",
        opt={"permission": Permission.NOTIFICATION_SETTING_WRITE},
        responses=ERRORS,
        operation_class=CREATE_BODY,
        summary="Create a notification setting",
        operation_id="create-notification-setting",
    )
    async def create_notification_setting(request: Request[Any, Any, Any]) -> dict[str, Any]:
        key = caller(request)
        body = await json_object(request, CREATE_FIELDS)
        scope = Scope.of_key(key)
        setting = await service.create_setting(deps, scope, scope.creator(key), body)
        return envelope(request, setting_json(setting))

    @get(
        "/notification-settings/{notification_setting_id:str}",
        opt={"permission": Permission.NOTIFICATION_SETTING_READ},
        responses=ERRORS,
        summary="Get a notification setting",
        operation_id="get-notification-setting",
    )
    async def get_notification_setting(
        request: Request[Any, Any, Any], notification_setting_id: FromPath[str]
    ) -> dict[str, Any]:
        setting = await service.get_setting(deps, Scope.of_key(caller(request)), notification_setting_id)
        return envelope(request, setting_json(setting))

    @patch(
        "/notification-settings/{notification_setting_id:str}",
        opt={"permission": Permission.NOTIFICATION_SETTING_WRITE},
        responses=ERRORS,
        operation_class=UPDATE_BODY,
        summary="Update a notification setting",
        operation_id="update-notification-setting",
    )
    async def update_notification_setting(
        request: Request[Any, Any, Any], notification_setting_id: FromPath[str]
    ) -> dict[str, Any]:
        key = caller(request)
        body = await json_object(request, set(FIELDS))
        setting = await service.update_setting(deps, Scope.of_key(key), notification_setting_id, body)
        return envelope(request, setting_json(setting))

    @delete(
        "/notification-settings/{notification_setting_id:str}",
        opt={"permission": Permission.NOTIFICATION_SETTING_WRITE},
        responses=ERRORS,
        summary="Delete a notification setting",
        operation_id="delete-notification-setting",
    )
    async def delete_notification_setting(
        request: Request[Any, Any, Any], notification_setting_id: FromPath[str]
    ) -> None:
        await service.delete_setting(deps, Scope.of_key(caller(request)), notification_setting_id)

    # --- notifications -----------------------------------------------------------------------------
    @get(
        "/notifications",
        opt={"permission": Permission.NOTIFICATION_READ},
        responses=ERRORS,
        summary="List notifications",
        operation_id="list-notifications",
    )
    async def list_notifications(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        notification_setting_id: Annotated[
            str | None, QueryParameter(description="Comma-separated ntfset ids")
        ] = None,
        status: Annotated[
            str | None,
            QueryParameter(description="Comma-separated: not_attempted, needs_retry, delivered, failed"),
        ] = None,
        search: Annotated[
            str | None, QueryParameter(description="Matches id and type (≤ 100 characters)")
        ] = None,
        from_: Annotated[str | None, QueryParameter(name="from", description="RFC 3339, inclusive")] = None,
        to: Annotated[str | None, QueryParameter(description="RFC 3339, exclusive")] = None,
    ) -> dict[str, Any]:
        key = caller(request)
        page = pagination.page_request(request, "ntf", descending_default=True)
        if search is not None and len(search) > 100:
            raise InvalidField.on("search", "must be at most 100 characters")
        filters = NotificationFilter(
            setting_ids=None
            if notification_setting_id is None
            else pagination.id_list(
                "notification_setting_id", notification_setting_id, "ntfset", "notification setting"
            ),
            statuses=None if status is None else pagination.enum_list("status", status, NotificationStatus),
            search=search or None,
            occurred_from=_time(from_),
            occurred_to=_time(to),
        )
        found = await service.list_notifications(deps, Scope.of_key(key), filters, page)
        return pagination.page_envelope(
            request, urls, page, found, [notification_json(n) for n in found.items]
        )

    @get(
        "/notifications/{notification_id:str}",
        opt={"permission": Permission.NOTIFICATION_READ},
        responses=ERRORS,
        summary="Get a notification",
        operation_id="get-notification",
    )
    async def get_notification(
        request: Request[Any, Any, Any], notification_id: FromPath[str]
    ) -> dict[str, Any]:
        found = await service.get_notification(deps, Scope.of_key(caller(request)), notification_id)
        return envelope(request, notification_json(found))

    @get(
        "/notifications/{notification_id:str}/logs",
        opt={"permission": Permission.NOTIFICATION_READ},
        responses=ERRORS,
        summary="List logs for a notification",
        operation_id="list-notification-logs",
    )
    async def list_notification_logs(
        request: Request[Any, Any, Any],
        notification_id: FromPath[str],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
    ) -> dict[str, Any]:
        page = pagination.page_request(request, "ntflog", descending_default=True)
        found = await service.list_logs(deps, Scope.of_key(caller(request)), notification_id, page)
        return pagination.page_envelope(
            request, urls, page, found, [log_json(entry) for entry in found.items]
        )

    @post(
        "/notifications/{notification_id:str}/replay",
        opt={"permission": Permission.NOTIFICATION_WRITE},
        responses=ERRORS,
        status_code=202,
        summary="Replay a notification",
        operation_id="replay-notification",
    )
    async def replay_notification(
        request: Request[Any, Any, Any], notification_id: FromPath[str]
    ) -> dict[str, Any]:
        fresh = await service.replay(deps, Scope.of_key(caller(request)), notification_id)
        return envelope(request, {"notification_id": fresh.id})

    return Router(
        path="/",
        route_handlers=[
            list_notification_settings,
            create_notification_setting,
            get_notification_setting,
            update_notification_setting,
            delete_notification_setting,
            list_notifications,
            get_notification,
            list_notification_logs,
            replay_notification,
        ],
        guards=[make_guard(deps, hosts)],
    )
