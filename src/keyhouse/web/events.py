"""``GET /event-types`` (no permission) and ``GET /events`` (``notification.read``; there is no
``event.*`` permission in Paddle)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get
from litestar.params import QueryParameter

from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.events import EVENT_TYPES, EventType, event_json, event_type_json
from keyhouse.domain.permissions import Permission
from keyhouse.services import events
from keyhouse.services.deps import Deps
from keyhouse.web import pagination
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import ERRORS, envelope


def _types(raw: str | None) -> frozenset[EventType] | None:
    """``event_type`` (keyhouse extension): a comma-separated list of event type names."""
    if raw is None:
        return None
    names = [n.strip() for n in raw.split(",") if n.strip()]
    unknown = [n for n in names if n not in EventType._value2member_map_]
    if unknown or not names:
        raise InvalidField(
            errors=[FieldError("event_type", f"unknown event type(s): {', '.join(unknown) or raw}")]
        )
    return frozenset(EventType(n) for n in names)


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    @get(
        "/event-types",
        opt={"auth_optional": True},
        responses=ERRORS,
        summary="List event types",
        operation_id="list-event-types",
    )
    async def list_event_types(request: Request[Any, Any, Any]) -> dict[str, Any]:
        return envelope(request, [event_type_json(t) for t in EVENT_TYPES])

    @get(
        "/events",
        opt={"permission": Permission.NOTIFICATION_READ},
        responses=ERRORS,
        summary="List events",
        operation_id="list-events",
    )
    async def list_events(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return events after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        event_type: Annotated[
            str | None, QueryParameter(description="keyhouse extension: comma-separated event type names")
        ] = None,
    ) -> dict[str, Any]:
        key = principal_of(request)
        assert key is not None  # the guard authenticated it
        page = pagination.page_request(request, "evt", descending_default=True)
        found = await events.list_events(deps, key, _types(event_type), page)
        return pagination.page_envelope(request, urls, page, found, [event_json(e) for e in found.items])

    return Router(path="/", route_handlers=[list_event_types, list_events], guards=[make_guard(deps, hosts)])
