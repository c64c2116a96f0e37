"""HTTP surfaces. ``create_app`` receives everything it needs; it reads no settings of its own."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from litestar import Litestar, MediaType, Request, Response
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.types import ASGIApp

from keyhouse import __version__
from keyhouse.domain.errors import (
    BadRequest,
    InvalidUrl,
    KeyhouseError,
    MethodNotAllowed,
    RequestBodyTooLarge,
    TooManyRequests,
)
from keyhouse.services import Deps
from keyhouse.web import (
    api,
    catalogue,
    client_api,
    client_tokens,
    demo,
    events,
    notifications,
    rotations,
    secret_scanning,
)
from keyhouse.web.context import RequestContext, request_id_of
from keyhouse.web.guards import HostOptions
from keyhouse.web.pagination import UrlOptions
from keyhouse.web.ratelimits import RateLimitOptions, RateLimits

log = logging.getLogger("keyhouse.web")


@dataclass(frozen=True, slots=True)
class WebOptions:
    hosts: HostOptions = field(default_factory=HostOptions)
    urls: UrlOptions = field(default_factory=UrlOptions)
    max_body_bytes: int = 1_048_576
    rate_limits: RateLimitOptions = field(default_factory=RateLimitOptions)


def render(request: Request[Any, Any, Any], exc: KeyhouseError) -> Response[Any]:
    headers = {"retry-after": str(exc.retry_after)} if isinstance(exc, TooManyRequests) else {}
    return Response(
        exc.envelope(request_id_of(request.scope)),
        status_code=exc.status,
        media_type=MediaType.JSON,
        headers=headers,
    )


def render_http(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    """Litestar's own refusals (routing, body size, parsing), in the Paddle envelope."""
    mapped: KeyhouseError
    if exc.status_code == 404:
        mapped = InvalidUrl()
    elif exc.status_code == 405:
        response = render(request, MethodNotAllowed())
        response.headers["allow"] = (exc.headers or {}).get("allow", "")
        return response
    elif exc.status_code == 413:
        mapped = RequestBodyTooLarge()
    elif 400 <= exc.status_code < 500:
        mapped = BadRequest()
    else:
        return render_unexpected(request, exc)
    return render(request, mapped)


def render_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    # The exception text may quote input; log its type and the request id only.
    log.error("unhandled %s on request %s", type(exc).__name__, request_id_of(request.scope))
    return render(request, KeyhouseError())


def create_app(deps: Deps, options: WebOptions | None = None) -> ASGIApp:
    options = options or WebOptions()
    rate_limits = RateLimits(options.rate_limits)
    app = Litestar(
        route_handlers=[
            api.make_router(deps, options.hosts, options.urls),
            client_tokens.make_router(deps, options.hosts, options.urls),
            catalogue.make_router(deps, options.hosts, options.urls),
            client_api.make_router(deps, options.hosts, rate_limits),
            demo.make_router(deps, options.urls),
            events.make_router(deps, options.hosts, options.urls),
            notifications.make_router(deps, options.hosts, options.urls),
            secret_scanning.make_router(deps, options.hosts),
            rotations.make_router(deps, options.hosts, options.urls),
        ],
        exception_handlers={
            KeyhouseError: render,
            HTTPException: render_http,
            Exception: render_unexpected,
        },
        on_startup=[deps.store.start],
        on_shutdown=[deps.usage.aclose, deps.store.close, rate_limits.close],
        request_max_body_size=options.max_body_bytes,
        openapi_config=OpenAPIConfig(
            title="keyhouse",
            version=__version__,
            description="Paddle Billing API v1 compatible API keys and client-side tokens.",
            path="/openapi.json",
            render_plugins=[JsonRenderPlugin(path="/")],
        ),
        debug=False,
        logging_config=None,  # bootstrap configures logging; Litestar must not reset it
    )
    return RequestContext(client_api.ClientSideCors(app))
