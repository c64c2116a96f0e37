"""Outermost ASGI layer: a request id and the response headers every answer carries.

It wraps the whole Litestar app, so even a 404 for an unknown route or an error raised before
routing has a ``request-id`` header equal to ``meta.request_id`` in the body.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

# Paddle's own response headers (observed), minus HSTS, which belongs to the TLS terminator.
SECURITY_HEADERS = [
    (b"cache-control", b"no-store, max-age=0"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"deny"),
    (b"referrer-policy", b"no-referrer"),
]


def request_id_of(scope: Scope | Any) -> str:
    state = scope.get("state") or {}
    return str(state.get("request_id") or uuid.uuid4())


class RequestContext:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        extra = [(b"request-id", request_id.encode()), *SECURITY_HEADERS]

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = [
                    *message.get("headers", []),
                    *(h for h in extra if h[0] not in names),
                ]
            await send(message)

        await self.app(scope, receive, send_with_headers)
