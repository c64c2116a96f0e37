"""``/api-keys/{api_key_id}/rotations``: a rotatable key replaces its own secret (no permission
needed; a key may only ever act on itself)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, post
from litestar.params import FromPath, QueryParameter

from keyhouse.domain.errors import InvalidField
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.rotations import GRACE_MAX_SECONDS, rotation_json
from keyhouse.services import rotations
from keyhouse.services.deps import Deps
from keyhouse.web import pagination
from keyhouse.web.bodies import json_object
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import ERRORS, envelope, with_json_body

CREATE_BODY = with_json_body(
    {
        "type": "object",
        "properties": {
            "grace_period_seconds": {"type": "integer", "minimum": 0, "maximum": GRACE_MAX_SECONDS},
            "new_key_expires_at": {"type": "string", "format": "date-time"},
        },
        "required": ["grace_period_seconds"],
    }
)


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    def caller(request: Request[Any, Any, Any]) -> ApiKey:
        key = principal_of(request)
        assert key is not None  # the guard authenticated it
        return key

    @post(
        "/api-keys/{api_key_id:str}/rotations",
        responses=ERRORS,
        operation_class=CREATE_BODY,
        summary="Create an API key rotation",
        operation_id="create-api-key-rotation",
    )
    async def create_api_key_rotation(
        request: Request[Any, Any, Any], api_key_id: FromPath[str]
    ) -> dict[str, Any]:
        key = caller(request)
        body = await json_object(request, {"grace_period_seconds", "new_key_expires_at"})
        if "grace_period_seconds" not in body:
            raise InvalidField.on("grace_period_seconds", "is required")
        rotation, rotated, plaintext = await rotations.rotate(
            deps,
            key,
            api_key_id,
            grace_period_seconds=body["grace_period_seconds"],
            new_key_expires_at=body.get("new_key_expires_at"),
        )
        return envelope(request, rotation_json(rotation, rotated, plaintext))

    @get(
        "/api-keys/{api_key_id:str}/rotations",
        responses=ERRORS,
        summary="List API key rotations",
        operation_id="list-api-key-rotations",
    )
    async def list_api_key_rotations(
        request: Request[Any, Any, Any],
        api_key_id: FromPath[str],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        id: Annotated[str | None, QueryParameter(description="Comma-separated apkrot ids")] = None,
    ) -> dict[str, Any]:
        key = caller(request)
        page = pagination.page_request(request, "apkrot", descending_default=True)
        ids = None if id is None else pagination.id_list("id", id, "apkrot", "API key rotation")
        found = await rotations.list_rotations(deps, key, api_key_id, ids, page)
        return pagination.page_envelope(
            request, urls, page, found, [rotation_json(r, key) for r in found.items]
        )

    @get(
        "/api-keys/{api_key_id:str}/rotations/{rotation_id:str}",
        responses=ERRORS,
        summary="Get an API key rotation",
        operation_id="get-api-key-rotation",
    )
    async def get_api_key_rotation(
        request: Request[Any, Any, Any], api_key_id: FromPath[str], rotation_id: FromPath[str]
    ) -> dict[str, Any]:
        key = caller(request)
        rotation = await rotations.get_rotation(deps, key, api_key_id, rotation_id)
        return envelope(request, rotation_json(rotation, key))

    return Router(
        path="/",
        route_handlers=[create_api_key_rotation, list_api_key_rotations, get_api_key_rotation],
        guards=[make_guard(deps, hosts)],
    )
