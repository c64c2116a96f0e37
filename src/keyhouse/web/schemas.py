"""Wire shapes of the server API (Paddle's), as msgspec Structs; the entity shapes come from the domain.

NOTE: wire format. Never reorder or rename fields; a new field gets a default.
"""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Operation

from keyhouse.domain.client_tokens import ClientTokenWire
from keyhouse.domain.keys import ApiKeyWire


class Meta(msgspec.Struct):
    request_id: str


class Pagination(msgspec.Struct):
    per_page: int
    next: str
    has_more: bool
    estimated_total: int


class MetaPaginated(msgspec.Struct):
    request_id: str
    pagination: Pagination


class FieldErrorWire(msgspec.Struct):
    field: str
    message: str


class ErrorBody(msgspec.Struct, omit_defaults=True):
    type: str
    code: str
    detail: str
    documentation_url: str
    errors: list[FieldErrorWire] | None = None


class ErrorEnvelope(msgspec.Struct):
    """Every error keyhouse returns, whatever the status."""

    error: ErrorBody
    meta: Meta


class ApiInfo(msgspec.Struct):
    name: str
    version: str
    environment: str
    documentation_url: str


class CallerAccount(msgspec.Struct):
    id: str


class Caller(msgspec.Struct):
    auth_type: str | None
    account: CallerAccount | None
    permissions: list[str]
    #: keyhouse extension: which key made the request.
    api_key_id: str | None = None


class ApiRoot(msgspec.Struct):
    api: ApiInfo
    caller: Caller


class ApiRootResponse(msgspec.Struct):
    data: ApiRoot
    meta: Meta


class ApiKeyResponse(msgspec.Struct):
    data: ApiKeyWire
    meta: Meta


class ApiKeyList(msgspec.Struct):
    data: list[ApiKeyWire]
    meta: MetaPaginated


class Health(msgspec.Struct):
    status: str
    database: str


class HealthResponse(msgspec.Struct):
    data: Health
    meta: Meta


class ClientTokenResponse(msgspec.Struct):
    data: ClientTokenWire
    meta: Meta


class ClientTokenList(msgspec.Struct):
    data: list[ClientTokenWire]
    meta: MetaPaginated


ERRORS = {
    status: ResponseSpec(ErrorEnvelope, description=text)
    for status, text in [
        (400, "Bad request or validation error"),
        (403, "Authentication missing, malformed or invalid, or a permission is missing"),
        (404, "Not found"),
        (409, "Conflict"),
        (429, "Too many requests"),
    ]
}


def meta(request: Request[Any, Any, Any]) -> Meta:
    return Meta(request_id=request.state.request_id)


def envelope(request: Request[Any, Any, Any], data: Any) -> dict[str, Any]:
    """Paddle's success envelope for JSON built by hand (``data`` and ``meta.request_id``)."""
    return {"data": data, "meta": {"request_id": request.state.request_id}}


def with_json_body(schema: dict[str, Any]) -> type[Operation]:
    """An OpenAPI operation documenting a JSON body the handler validates itself."""

    class OperationWithBody(Operation):
        def to_schema(self) -> dict[str, Any]:
            document = super().to_schema()
            document["requestBody"] = {"required": True, "content": {"application/json": {"schema": schema}}}
            return document

    return OperationWithBody
