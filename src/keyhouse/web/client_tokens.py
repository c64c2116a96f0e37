"""Server API routes for client-side tokens: ``/client-tokens`` (API keys only, early-access gated)."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Router, get, patch, post
from litestar.params import FromPath, QueryParameter

from keyhouse.domain import client_tokens
from keyhouse.domain.client_tokens import TokenStatus
from keyhouse.domain.errors import InvalidField, NotFound
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.services import client_tokens as tokens
from keyhouse.services.client_tokens import TokenScope
from keyhouse.services.deps import Deps
from keyhouse.web import pagination
from keyhouse.web.bodies import json_object
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import ERRORS, ClientTokenList, ClientTokenResponse, meta, with_json_body

# keyhouse extension: the pages that may use the token (null: any).
ORIGINS_SCHEMA = {
    "type": ["array", "null"],
    "items": {"type": "string", "examples": ["https://shop.example.com", "http://localhost:*"]},
    "minItems": 1,
    "maxItems": 20,
}
# Bodies are validated by the handlers themselves, so that every mistake is answered in Paddle's words;
# these schemas only document them.
CREATE_BODY = with_json_body(
    {
        "type": "object",
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 150},
            "description": {"type": ["string", "null"], "minLength": 1, "maxLength": 500},
            "allowed_origins": ORIGINS_SCHEMA,
        },
        "required": ["name"],
    }
)
UPDATE_BODY = with_json_body(
    {
        "type": "object",
        "properties": {
            "status": {"type": "string", "enum": ["active", "revoked"]},
            "allowed_origins": ORIGINS_SCHEMA,
        },
        "minProperties": 1,
    }
)
GATED = {"gate": "client_tokens"}


def _statuses(raw: str | None) -> frozenset[TokenStatus]:
    """``status`` is a comma-separated list; Paddle's default shows active tokens only."""
    if raw is None:
        return frozenset({TokenStatus.ACTIVE})
    return pagination.enum_list("status", raw, TokenStatus)


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    def caller(request: Request[Any, Any, Any]) -> ApiKey:
        key = principal_of(request)
        assert key is not None  # the guard authenticated it and checked permission and gate
        return key

    def token_id_or_404(token_id: str) -> str:
        if not is_id("ctkn", token_id):
            raise NotFound(f"Client-side token {token_id} not found.")
        return token_id

    @post(
        "/client-tokens",
        opt={"permission": Permission.CLIENT_TOKEN_WRITE, **GATED},
        responses=ERRORS,
        operation_class=CREATE_BODY,
        summary="Create a client-side token",
        operation_id="create-client-token",
    )
    async def create_client_token(request: Request[Any, Any, Any]) -> ClientTokenResponse:
        key = caller(request)
        body = await json_object(request, {"name", "description", "allowed_origins"})
        scope = TokenScope.of_key(key)
        token = await tokens.create_token(
            deps,
            scope,
            name=body.get("name"),
            description=body.get("description"),
            created_by=scope.creator(key),
            allowed_origins=body.get("allowed_origins"),
        )
        return ClientTokenResponse(data=client_tokens.to_wire(token), meta=meta(request))

    @get(
        "/client-tokens",
        opt={"permission": Permission.CLIENT_TOKEN_READ, **GATED},
        responses=ERRORS,
        summary="List client-side tokens",
        operation_id="list-client-tokens",
    )
    async def list_client_tokens(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        status: Annotated[str | None, QueryParameter(description="Comma-separated: active, revoked")] = None,
    ) -> ClientTokenList:
        key = caller(request)
        page = pagination.page_request(request, "ctkn", descending_default=True)
        found = await tokens.list_tokens(deps, TokenScope.of_key(key), _statuses(status), page)
        return ClientTokenList(
            data=[client_tokens.to_wire(t) for t in found.items],
            meta=pagination.meta(request, urls, page, found),
        )

    @get(
        "/client-tokens/{client_token_id:str}",
        opt={"permission": Permission.CLIENT_TOKEN_READ, **GATED},
        responses=ERRORS,
        summary="Get a client-side token",
        operation_id="get-client-token",
    )
    async def get_client_token(
        request: Request[Any, Any, Any], client_token_id: FromPath[str]
    ) -> ClientTokenResponse:
        key = caller(request)
        token = await tokens.get_token(deps, TokenScope.of_key(key), token_id_or_404(client_token_id))
        return ClientTokenResponse(data=client_tokens.to_wire(token), meta=meta(request))

    @patch(
        "/client-tokens/{client_token_id:str}",
        opt={"permission": Permission.CLIENT_TOKEN_WRITE, **GATED},
        responses=ERRORS,
        operation_class=UPDATE_BODY,
        summary="Update (revoke) a client-side token",
        operation_id="update-client-token",
    )
    async def update_client_token(
        request: Request[Any, Any, Any], client_token_id: FromPath[str]
    ) -> ClientTokenResponse:
        key = caller(request)
        body = await json_object(request, {"status", "allowed_origins"})
        if not body:  # Paddle requires status; keyhouse also accepts allowed_origins alone
            raise InvalidField.on("status", "must be provided as part of the request")
        token = await tokens.update_token(
            deps, TokenScope.of_key(key), token_id_or_404(client_token_id), body
        )
        return ClientTokenResponse(data=client_tokens.to_wire(token), meta=meta(request))

    return Router(
        path="/",
        route_handlers=[create_client_token, list_client_tokens, get_client_token, update_client_token],
        guards=[make_guard(deps, hosts)],
    )
