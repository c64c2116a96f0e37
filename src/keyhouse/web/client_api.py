"""The client-side API: what a browser page calls with a client-side token (Paddle.js, keyhouse.js).

``POST /pricing-preview`` and ``POST /transactions/preview`` accept a client-side token, or an API
key with ``transaction.read`` from a server. Checks, in order: the caller's IP is not over its
budget of refused requests; a credential is present and well formed; a client token belongs to the
intended environment, is active and allows the page's ``Origin``; an API key does not come from a
browser page (refused and recorded as an exposure) and holds the permission; then the credential's
own preview budget. Every refusal spends the IP's budget, never the token's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import HttpMethod, Request, Response, Router, post, route
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.handlers.base import BaseRouteHandler
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import AuthenticationMalformed, AuthenticationMissing, Forbidden, KeyhouseError
from keyhouse.domain.keys import Denied, authorize
from keyhouse.domain.permissions import Permission
from keyhouse.services import client_side, previews
from keyhouse.services.deps import Deps
from keyhouse.web.bodies import json_object
from keyhouse.web.guards import HostOptions, header
from keyhouse.web.ratelimits import RateLimits
from keyhouse.web.schemas import ERRORS, envelope

PATHS = ("/pricing-preview", "/transactions/preview")
ENVIRONMENT_HEADER = b"keyhouse-environment"
ALLOWED_HEADERS = "authorization, content-type, keyhouse-environment, paddle-version"


@dataclass(frozen=True, slots=True)
class PreviewCaller:
    account_id: str
    environment: Environment
    credential_id: str


def intended_environment(
    connection: ASGIConnection[Any, Any, Any, Any], hosts: HostOptions
) -> Environment | None:
    """The host's environment when hosts are configured, else what the page says it wants."""
    if hosts.configured:
        return hosts.environment_of(header(connection, b"host"))
    stated = header(connection, ENVIRONMENT_HEADER)
    return None if stated is None else Environment.parse(stated)


def make_router(deps: Deps, hosts: HostOptions, limits: RateLimits) -> Router:
    tokens = client_side.ClientTokenAuthenticator(deps)
    preflight = client_side.PreflightPolicy(deps)

    async def identify(connection: ASGIConnection[Any, Any, Any, Any]) -> PreviewCaller:
        authorization = header(connection, b"authorization")
        if authorization is None:
            raise AuthenticationMissing()
        credential = credentials.parse_bearer(authorization)
        if credential is None:
            raise AuthenticationMalformed()
        origin = header(connection, b"origin")
        token_shape = credentials.parse_client_token(credential)
        if token_shape is not None:
            intended = intended_environment(connection, hosts) or token_shape.environment
            token = await tokens.authenticate(credential, intended, origin)
            return PreviewCaller(token.account_id, token.environment, token.id)
        key = await deps.authenticator.authenticate(
            credential, hosts.environment_of(header(connection, b"host"))
        )
        if origin is not None:
            await client_side.record_browser_exposure(deps, key, origin)
            raise Forbidden(client_side.API_KEY_IN_BROWSER)
        decision = authorize(key, Permission.TRANSACTION_READ)
        if isinstance(decision, Denied):
            raise Forbidden(decision.reason)
        return PreviewCaller(key.account_id, key.environment, key.id)

    async def client_side_guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        ip = connection.client.host if connection.client else "unknown"
        await limits.check_ip(ip)
        try:
            caller = await identify(connection)
        except KeyhouseError as exc:
            if exc.status == 403:
                await limits.refused(ip)
            raise
        await limits.spend(caller.credential_id)
        connection.scope["state"]["preview_caller"] = caller

    def caller_of(request: Request[Any, Any, Any]) -> PreviewCaller:
        caller: PreviewCaller = request.scope["state"]["preview_caller"]
        return caller

    @post(
        "/pricing-preview",
        guards=[client_side_guard],
        status_code=200,
        responses=ERRORS,
        summary="Preview prices (client-side token or API key with transaction.read)",
        operation_id="preview-prices",
    )
    async def pricing_preview(request: Request[Any, Any, Any]) -> dict[str, Any]:
        caller = caller_of(request)
        body = await json_object(request, previews.PRICING_FIELDS)
        data = await previews.pricing_preview(deps, caller.account_id, caller.environment, body)
        return envelope(request, data)

    @post(
        "/transactions/preview",
        guards=[client_side_guard],
        status_code=200,
        responses=ERRORS,
        summary="Preview a transaction (client-side token or API key with transaction.read)",
        operation_id="preview-transaction-create",
    )
    async def transaction_preview(request: Request[Any, Any, Any]) -> dict[str, Any]:
        caller = caller_of(request)
        body = await json_object(request, previews.TRANSACTION_FIELDS)
        data = await previews.transaction_preview(deps, caller.account_id, caller.environment, body)
        return envelope(request, data)

    @route(list(PATHS), http_method=[HttpMethod.OPTIONS], include_in_schema=False)
    async def cors_preflight(request: Request[Any, Any, Any]) -> Response[Any]:
        origin = request.headers.get("origin")
        if origin is None or not await preflight.allows(origin):
            detail = "No active client-side token allows this origin."
            raise Forbidden(detail)
        return Response(
            content=None,
            status_code=204,
            headers={
                "access-control-allow-origin": origin,
                "access-control-allow-methods": "POST, OPTIONS",
                "access-control-allow-headers": ALLOWED_HEADERS,
                "access-control-max-age": "600",
                "vary": "Origin",
            },
        )

    # The preflight first: Litestar adds its own OPTIONS handler to a path that has none yet.
    return Router(path="/", route_handlers=[cors_preflight, pricing_preview, transaction_preview])


class ClientSideCors:
    """Lets a page read every answer of the client-side API, refusals included, so it can say
    *why* (revoked token, wrong environment, origin not allowed) instead of failing silently; and lets
    any page load the public browser module from ``/static/`` (module scripts need CORS).

    It grants nothing: the origin check of the previews has already happened, and static files are public.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        allow: bytes | None = None
        if scope["type"] == ScopeType.HTTP and scope["method"] != "OPTIONS":
            if scope["path"] in PATHS:
                allow = next((v for k, v in scope["headers"] if k == b"origin"), None)
            elif scope["path"].startswith("/static/"):
                allow = b"*"
        if allow is None:
            await self.app(scope, receive, send)
            return
        origin = allow

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"access-control-allow-origin", origin),
                    (b"vary", b"Origin"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_cors)
