"""Authentication and permission checks, run before every handler.

Each route declares what it needs in ``opt``: ``permission`` (a :class:`Permission`),
``auth_optional`` (``GET /``), ``public`` (health, OpenAPI), ``self_allowed`` (a key may read itself),
``gate`` (the early-access gate of the client-side tokens API).
Order, as Paddle: header missing → malformed → invalid token → missing permission.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.types import Guard

from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import AuthenticationMalformed, AuthenticationMissing, Forbidden
from keyhouse.domain.keys import ApiKey, Denied, authorize
from keyhouse.services import Deps
from keyhouse.services.client_tokens import check_gate

CLIENT_TOKEN_ON_SERVER_API = (
    "Client-side tokens only work with client-side operations (pricing and transaction previews). "
    "Use an API key for this request."
)


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Optional hostnames that pin an environment, as Paddle's api. and sandbox-api. hosts do."""

    sandbox_host: str | None = None
    live_host: str | None = None

    @property
    def configured(self) -> bool:
        return bool(self.sandbox_host or self.live_host)

    def environment_of(self, host: str | None) -> Environment | None:
        if not host or not self.configured:
            return None
        hostname = host.lower()
        for configured, environment in (
            (self.sandbox_host, Environment.SANDBOX),
            (self.live_host, Environment.LIVE),
        ):
            if configured and (
                hostname == configured.lower() or hostname.split(":")[0] == configured.lower()
            ):
                return environment
        return None


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> ApiKey | None:
    principal: ApiKey | None = connection.scope["state"].get("principal")
    return principal


def header(connection: ASGIConnection[Any, Any, Any, Any], name: bytes) -> str | None:
    """One request header, read straight from the scope: this runs on every request, and building
    Litestar's header mapping for it costs more than the whole key verification."""
    for key, value in connection.scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


def make_guard(deps: Deps, hosts: HostOptions) -> Guard:
    authenticator = deps.authenticator

    async def authenticate(connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler) -> None:
        opt = handler.opt
        if opt.get("public"):
            return
        authorization = header(connection, b"authorization")
        if authorization is None:
            if opt.get("auth_optional"):
                return
            raise AuthenticationMissing()
        credential = credentials.parse_bearer(authorization)
        if credential is None:
            raise AuthenticationMalformed()
        if credentials.parse_client_token(credential) is not None:
            raise Forbidden(CLIENT_TOKEN_ON_SERVER_API)
        expected = hosts.environment_of(header(connection, b"host")) if hosts.configured else None
        key = await authenticator.authenticate(credential, expected)
        connection.scope["state"]["principal"] = key
        needed = opt.get("permission")
        if (
            needed is not None
            and opt.get("self_allowed")
            and connection.path_params.get("api_key_id") == key.id
        ):
            needed = None  # a key reading itself needs no permission
        if needed is not None:
            decision = authorize(key, needed)
            if isinstance(decision, Denied):
                raise Forbidden(decision.reason)
        if opt.get("gate") == "client_tokens":  # after the permission, as the gate's contract says
            await check_gate(deps, key)
        deps.usage.record(key.id, needed)

    return authenticate
