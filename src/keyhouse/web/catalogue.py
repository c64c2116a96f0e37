"""Server API routes for the catalogue: ``/products`` and ``/prices`` (API keys only).

Lists follow Paddle: active entities unless ``status`` says otherwise, newest first (``id[DESC]``,
the spec's default and the order of its examples). ``include``, ``id``, ``type``, ``tax_category``
and ``recurring`` filters are not implemented yet.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from litestar import Request, Router, get, patch, post
from litestar.params import FromPath, QueryParameter

from keyhouse.domain import catalogue
from keyhouse.domain.catalogue import CatalogStatus, PriceWire, ProductWire
from keyhouse.domain.errors import NotFound
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.services import catalogue as catalogue_services
from keyhouse.services.deps import Deps
from keyhouse.web import pagination
from keyhouse.web.bodies import json_object
from keyhouse.web.guards import HostOptions, make_guard, principal_of
from keyhouse.web.schemas import ERRORS, Meta, MetaPaginated, meta, with_json_body


class ProductResponse(msgspec.Struct):
    data: ProductWire
    meta: Meta


class ProductList(msgspec.Struct):
    data: list[ProductWire]
    meta: MetaPaginated


class PriceResponse(msgspec.Struct):
    data: PriceWire
    meta: Meta


class PriceList(msgspec.Struct):
    data: list[PriceWire]
    meta: MetaPaginated


# Bodies are validated by the domain, so that every mistake is answered in Paddle's words; these
# schemas only document them.
_MONEY = {
    "type": "object",
    "properties": {
        "amount": {"type": "string", "pattern": "^[0-9]+$"},
        "currency_code": {"type": "string", "enum": list(catalogue.CURRENCY_CODES)},
    },
    "required": ["amount", "currency_code"],
}
_DURATION = {
    "type": "object",
    "properties": {
        "interval": {"type": "string", "enum": [i.value for i in catalogue.Interval]},
        "frequency": {"type": "integer", "minimum": 1},
    },
    "required": ["interval", "frequency"],
}
_PRODUCT_FIELDS: dict[str, Any] = {
    "name": {"type": "string", "minLength": 1, "maxLength": 200},
    "description": {"type": ["string", "null"], "maxLength": 2048},
    "type": {"type": "string", "enum": [t.value for t in catalogue.CatalogType]},
    "tax_category": {"type": "string", "enum": [t.value for t in catalogue.TaxCategory]},
    "image_url": {"type": ["string", "null"]},
    "custom_data": {"type": ["object", "null"]},
}
_PRICE_FIELDS: dict[str, Any] = {
    "description": {"type": "string", "minLength": 2, "maxLength": 500},
    "type": {"type": "string", "enum": [t.value for t in catalogue.CatalogType]},
    "name": {"type": ["string", "null"], "minLength": 1, "maxLength": 150},
    "billing_cycle": {"oneOf": [_DURATION, {"type": "null"}]},
    "trial_period": {"oneOf": [_DURATION, {"type": "null"}]},
    "tax_mode": {"type": "string", "enum": [t.value for t in catalogue.TaxMode]},
    "unit_price": _MONEY,
    "unit_price_overrides": {
        "type": "array",
        "maxItems": 250,
        "items": {
            "type": "object",
            "properties": {
                "country_codes": {"type": "array", "items": {"type": "string"}},
                "unit_price": _MONEY,
            },
            "required": ["country_codes", "unit_price"],
        },
    },
    "quantity": {
        "type": "object",
        "properties": {"minimum": {"type": "integer"}, "maximum": {"type": "integer"}},
        "required": ["minimum", "maximum"],
    },
    "custom_data": {"type": ["object", "null"]},
}
_STATUS = {"type": "string", "enum": [s.value for s in CatalogStatus]}

CREATE_PRODUCT_BODY = with_json_body(
    {"type": "object", "properties": _PRODUCT_FIELDS, "required": ["name", "tax_category"]}
)
UPDATE_PRODUCT_BODY = with_json_body({"type": "object", "properties": {**_PRODUCT_FIELDS, "status": _STATUS}})
CREATE_PRICE_BODY = with_json_body(
    {
        "type": "object",
        "properties": {**_PRICE_FIELDS, "product_id": {"type": "string", "pattern": "^pro_[a-z\\d]{26}$"}},
        "required": ["description", "product_id", "unit_price"],
    }
)
UPDATE_PRICE_BODY = with_json_body({"type": "object", "properties": {**_PRICE_FIELDS, "status": _STATUS}})


def _statuses(raw: str | None) -> frozenset[CatalogStatus]:
    """``status`` is a comma-separated list; Paddle's default lists active entities only."""
    if raw is None:
        return frozenset({CatalogStatus.ACTIVE})
    return pagination.enum_list("status", raw, CatalogStatus)


def _product_ids(raw: str | None) -> frozenset[str] | None:
    return None if raw is None else pagination.id_list("product_id", raw, "pro", "product")


def make_router(deps: Deps, hosts: HostOptions, urls: pagination.UrlOptions) -> Router:
    def caller(request: Request[Any, Any, Any]) -> ApiKey:
        key = principal_of(request)
        assert key is not None  # the guard authenticated it and checked the permission
        return key

    def product_id_or_404(product_id: str) -> str:
        if not is_id("pro", product_id):
            raise NotFound(f"Product {product_id} not found.")
        return product_id

    def price_id_or_404(price_id: str) -> str:
        if not is_id("pri", price_id):
            raise NotFound(f"Price {price_id} not found.")
        return price_id

    # --- products

    @post(
        "/products",
        opt={"permission": Permission.PRODUCT_WRITE},
        responses=ERRORS,
        operation_class=CREATE_PRODUCT_BODY,
        summary="Create a product",
        operation_id="create-product",
    )
    async def create_product(request: Request[Any, Any, Any]) -> ProductResponse:
        key = caller(request)
        body = await json_object(request, catalogue.PRODUCT_CREATE_FIELDS)
        product = await catalogue_services.create_product(deps, key.account_id, key.environment, body)
        return ProductResponse(data=catalogue.product_to_wire(product), meta=meta(request))

    @get(
        "/products",
        opt={"permission": Permission.PRODUCT_READ},
        responses=ERRORS,
        summary="List products",
        operation_id="list-products",
    )
    async def list_products(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        status: Annotated[
            str | None, QueryParameter(description="Comma-separated: active (default), archived")
        ] = None,
    ) -> ProductList:
        key = caller(request)
        page = pagination.page_request(request, "pro", descending_default=True)
        found = await catalogue_services.list_products(
            deps, key.account_id, key.environment, _statuses(status), page
        )
        return ProductList(
            data=[catalogue.product_to_wire(p) for p in found.items],
            meta=pagination.meta(request, urls, page, found),
        )

    @get(
        "/products/{product_id:str}",
        opt={"permission": Permission.PRODUCT_READ},
        responses=ERRORS,
        summary="Get a product",
        operation_id="get-product",
    )
    async def get_product(request: Request[Any, Any, Any], product_id: FromPath[str]) -> ProductResponse:
        key = caller(request)
        product = await catalogue_services.get_product(
            deps, key.account_id, key.environment, product_id_or_404(product_id)
        )
        return ProductResponse(data=catalogue.product_to_wire(product), meta=meta(request))

    @patch(
        "/products/{product_id:str}",
        opt={"permission": Permission.PRODUCT_WRITE},
        responses=ERRORS,
        operation_class=UPDATE_PRODUCT_BODY,
        summary="Update (or archive) a product",
        operation_id="update-product",
    )
    async def update_product(request: Request[Any, Any, Any], product_id: FromPath[str]) -> ProductResponse:
        key = caller(request)
        product_id = product_id_or_404(product_id)
        body = await json_object(request, catalogue.PRODUCT_UPDATE_FIELDS)
        product = await catalogue_services.update_product(
            deps, key.account_id, key.environment, product_id, body
        )
        return ProductResponse(data=catalogue.product_to_wire(product), meta=meta(request))

    # --- prices

    @post(
        "/prices",
        opt={"permission": Permission.PRICE_WRITE},
        responses=ERRORS,
        operation_class=CREATE_PRICE_BODY,
        summary="Create a price",
        operation_id="create-price",
    )
    async def create_price(request: Request[Any, Any, Any]) -> PriceResponse:
        key = caller(request)
        body = await json_object(request, catalogue.PRICE_CREATE_FIELDS)
        price = await catalogue_services.create_price(deps, key.account_id, key.environment, body)
        return PriceResponse(data=catalogue.price_to_wire(price), meta=meta(request))

    @get(
        "/prices",
        opt={"permission": Permission.PRICE_READ},
        responses=ERRORS,
        summary="List prices",
        operation_id="list-prices",
    )
    async def list_prices(
        request: Request[Any, Any, Any],
        after: Annotated[str | None, QueryParameter(description="Return entities after this id")] = None,
        per_page: Annotated[str | None, QueryParameter(description="1–200, default 50")] = None,
        order_by: Annotated[str | None, QueryParameter(description="id[DESC] (default) or id[ASC]")] = None,
        status: Annotated[
            str | None, QueryParameter(description="Comma-separated: active (default), archived")
        ] = None,
        product_id: Annotated[
            str | None, QueryParameter(description="Comma-separated product ids: prices of those only")
        ] = None,
    ) -> PriceList:
        key = caller(request)
        page = pagination.page_request(request, "pri", descending_default=True)
        found = await catalogue_services.list_prices(
            deps, key.account_id, key.environment, _product_ids(product_id), _statuses(status), page
        )
        return PriceList(
            data=[catalogue.price_to_wire(p) for p in found.items],
            meta=pagination.meta(request, urls, page, found),
        )

    @get(
        "/prices/{price_id:str}",
        opt={"permission": Permission.PRICE_READ},
        responses=ERRORS,
        summary="Get a price",
        operation_id="get-price",
    )
    async def get_price(request: Request[Any, Any, Any], price_id: FromPath[str]) -> PriceResponse:
        key = caller(request)
        price = await catalogue_services.get_price(
            deps, key.account_id, key.environment, price_id_or_404(price_id)
        )
        return PriceResponse(data=catalogue.price_to_wire(price), meta=meta(request))

    @patch(
        "/prices/{price_id:str}",
        opt={"permission": Permission.PRICE_WRITE},
        responses=ERRORS,
        operation_class=UPDATE_PRICE_BODY,
        summary="Update (or archive) a price",
        operation_id="update-price",
    )
    async def update_price(request: Request[Any, Any, Any], price_id: FromPath[str]) -> PriceResponse:
        key = caller(request)
        price_id = price_id_or_404(price_id)
        body = await json_object(request, catalogue.PRICE_UPDATE_FIELDS)
        price = await catalogue_services.update_price(deps, key.account_id, key.environment, price_id, body)
        return PriceResponse(data=catalogue.price_to_wire(price), meta=meta(request))

    return Router(
        path="/",
        route_handlers=[
            create_product,
            list_products,
            get_product,
            update_product,
            create_price,
            list_prices,
            get_price,
            update_price,
        ],
        guards=[make_guard(deps, hosts)],
    )
