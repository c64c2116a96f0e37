"""``POST /secret-scanning/reports``: where a secret scanner (GitHub) reports leaked credentials.

No API key: the report is authenticated by its ECDSA signature (``services.secret_scanning``). The
answer is GitHub's format — a bare JSON list of ``{token_raw, token_type, label}`` — not Paddle's
envelope, because GitHub is the client; refusals are Paddle envelopes like every other error.
"""

from __future__ import annotations

from typing import Any

from litestar import Request, Router, post

from keyhouse.services import secret_scanning
from keyhouse.services.deps import Deps
from keyhouse.web.guards import HostOptions, make_guard
from keyhouse.web.schemas import ERRORS, with_json_body

REPORT_BODY = with_json_body(
    {
        "type": "array",
        "minItems": 1,
        "maxItems": 1000,
        "items": {
            "type": "object",
            "properties": {
                "token": {"type": "string"},
                "type": {"type": "string"},
                "url": {"type": "string"},
                "source": {"type": "string"},
            },
            "required": ["token", "type", "url", "source"],
        },
    }
)


def make_router(deps: Deps, hosts: HostOptions) -> Router:
    @post(
        "/secret-scanning/reports",
        opt={"public": True},
        status_code=200,
        responses=ERRORS,
        operation_class=REPORT_BODY,
        summary="Report exposed credentials (GitHub secret-scanning partner program)",
        operation_id="report-exposed-credentials",
    )
    async def report(request: Request[Any, Any, Any]) -> list[dict[str, str]]:
        return await secret_scanning.handle_report(
            deps,
            request.headers.get("github-public-key-identifier"),
            request.headers.get("github-public-key-signature"),
            await request.body(),
        )

    return Router(path="/", route_handlers=[report], guards=[make_guard(deps, hosts)])
