"""Request bodies: JSON objects only, refused in Paddle's envelope when they are anything else."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import msgspec
from litestar import Request

from keyhouse.domain.errors import BadRequest, FieldError, InvalidField


async def json_object(request: Request[Any, Any, Any], allowed: Collection[str]) -> dict[str, Any]:
    """The body as a dict whose keys are all in ``allowed``.

    Wrong content type, empty or broken JSON, or a non-object → 400 ``bad_request``; an unknown
    field → 400 ``invalid_field`` naming it (a typo should fail loudly, not be ignored).
    """
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json":
        raise BadRequest('Content-Type must be "application/json".')
    raw = await request.body()
    try:
        body = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):  # RecursionError: JSON nested ~1000 deep
        raise BadRequest("Invalid JSON in your request.") from None
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise InvalidField(errors=[FieldError(name, "unknown field") for name in unknown])
    return body
