"""The server API: routes authenticated with API keys, in Paddle's shapes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Annotated, Any

from litestar import HttpMethod, Request, Router, get, route
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import FromPath, QueryParameter

from keyhouse.domain import keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import InvalidUrl, ServiceUnavailable
from keyhouse.domain.permissions import Permission, sorted_names
from keyhouse.services import Deps, get_key, list_keys
from keyhouse.web import pagination
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import (
    ERRORS,
    ApiInfo,
    ApiKeyList,
    ApiKeyResponse,
    ApiRoot,
    ApiRootResponse,
    Caller,
    CallerAccount,
    ErrorEnvelope,
    Health,
    HealthResponse,
    meta,
)


@dataclass(slots=True)
class _HealthCache:
    """``/healthz`` asks the database at most once a second, so probes cannot load it."""

    checked_at: float = -1.0
    healthy: bool = False


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    """Every route here passes the authentication guard; each declares its needs in ``opt``."""
    health = _HealthCache()

    @get(
        "/",
        opt={"auth_optional": True},
        responses=ERRORS,
        summary="Get API root",
        operation_id="get-api-root",
    )
    async def api_root(request: Request[Any, Any, Any]) -> ApiRootResponse:
        key = principal_of(request)
        environment = (
            key.environment
            if key
            else (hosts.environment_of(request.headers.get("host")) or Environment.SANDBOX)
        )
        caller = Caller(auth_type=None, account=None, permissions=[])
        if key is not None:
            caller = Caller(
                auth_type="api_key",
                account=CallerAccount(id=key.account_id),
                permissions=sorted_names(key.granted),
                api_key_id=key.id,
            )
        api = ApiInfo(
            name="keyhouse (Paddle Billing API v1 compatible)",
            version="1",
            environment=environment.wire,
            documentation_url="https://developer.paddle.com/api-reference/overview",
        )
        return ApiRootResponse(data=ApiRoot(api=api, caller=caller), meta=meta(request))

    @get(
        "/api-keys",
        opt={"permission": Permission.API_KEY_READ},
        responses=ERRORS,
        summary="List API keys",
        operation_id="list-api-keys",
    )
    async def list_api_keys(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[ASC] (default) or id[DESC]")] = None,
    ) -> ApiKeyList:
        key = principal_of(request)
        assert key is not None
        page = pagination.page_request(request, "apikey", descending_default=False)
        found = await list_keys(deps, key.account_id, key.environment, page)
        now = deps.clock()
        return ApiKeyList(
            data=[keys.to_wire(k, now) for k in found.items],
            meta=pagination.meta(request, urls, page, found),
        )

    @get(
        "/api-keys/{api_key_id:str}",
        opt={"permission": Permission.API_KEY_READ, "self_allowed": True},
        responses=ERRORS,
        summary="Get an API key",
        operation_id="get-api-key",
    )
    async def get_api_key(request: Request[Any, Any, Any], api_key_id: FromPath[str]) -> ApiKeyResponse:
        key = principal_of(request)
        assert key is not None
        found = await get_key(deps, api_key_id, account_id=key.account_id, environment=key.environment)
        return ApiKeyResponse(data=keys.to_wire(found, deps.clock()), meta=meta(request))

    @get("/healthz", opt={"public": True}, responses={503: ResponseSpec(ErrorEnvelope)}, summary="Health")
    async def healthz(request: Request[Any, Any, Any]) -> HealthResponse:
        now = time.monotonic()
        if now - health.checked_at >= 1.0:
            health.healthy = await deps.store.ping()
            health.checked_at = now
        if not health.healthy:
            raise ServiceUnavailable("The database is not reachable.")
        return HealthResponse(data=Health(status="ok", database="ok"), meta=meta(request))

    @route(
        "/{path:path}",
        http_method=list(HttpMethod),
        opt={"auth_optional": True},
        include_in_schema=False,
    )
    async def unknown_route(path: FromPath[str]) -> None:
        """Any other URL: a presented credential is checked first (a bad key is ``invalid_token``
        wherever it is sent, as in Paddle), then the URL is ``invalid_url``."""
        raise InvalidUrl()

    return Router(
        path="/",
        route_handlers=[api_root, list_api_keys, get_api_key, healthz, unknown_route],
        guards=[make_guard(deps, hosts)],
    )
