"""The demo pricing page (``/demo``) and the static browser module (``/static/keyhouse.js``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from litestar import MediaType, Request, Response, Router, get
from litestar.static_files import create_static_files_router

from keyhouse.domain.previews import format_money
from keyhouse.services import demo_page
from keyhouse.services.deps import Deps
from keyhouse.web.pagination import UrlOptions, base_url

HERE = Path(__file__).parent
templates = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(["html"]))


def make_router(deps: Deps, urls: UrlOptions) -> Router:
    @get("/demo", opt={"public": True}, include_in_schema=False, media_type=MediaType.HTML)
    async def demo(request: Request[Any, Any, Any]) -> Response[str]:
        page = await demo_page(deps)
        if page is None:
            html = templates.get_template("demo_missing.html").render()
            return Response(html, status_code=404, media_type=MediaType.HTML)
        config = {
            "token": page.token.token,
            "environment": page.token.environment.wire,
            "apiBase": base_url(request, urls),
        }
        lines = [
            {
                "price_id": price.id,
                "product": product.name,
                "name": price.name or price.description,
                "unit": format_money(int(price.unit_price.amount), price.unit_price.currency_code),
                "cycle": price.billing_cycle.interval if price.billing_cycle else None,
            }
            for price, product in page.lines
        ]
        html = templates.get_template("demo.html").render(
            lines=lines, config=json.dumps(config), origins=page.token.allowed_origins or ()
        )
        return Response(html, media_type=MediaType.HTML)

    static = create_static_files_router(
        path="/static", directories=[HERE / "static"], include_in_schema=False
    )
    return Router(path="/", route_handlers=[demo, static])
