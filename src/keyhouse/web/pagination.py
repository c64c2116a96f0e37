"""Paddle's cursor pagination: ``after``, ``per_page``, ``order_by`` in; ``meta.pagination`` out."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol, TypeVar
from urllib.parse import urlencode

import msgspec
from litestar import Request

from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import is_id
from keyhouse.store import Page, PageRequest
from keyhouse.web.schemas import MetaPaginated, Pagination

DEFAULT_PER_PAGE = 50
MAX_PER_PAGE = 200
_ORDER_BY = re.compile(r"id\[(asc|desc)\]", re.IGNORECASE)
_DIGITS = re.compile(r"[0-9]{1,6}")  # not str.isdigit(): that also admits "²" and "٣"


@dataclass(frozen=True, slots=True)
class UrlOptions:
    """How to write absolute ``next`` links."""

    public_url: str | None = None
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()


def page_request(
    request: Request[Any, Any, Any],
    id_prefix: str,
    *,
    descending_default: bool,
    per_page_default: int = DEFAULT_PER_PAGE,
) -> PageRequest:
    """Read the list query; bad values are ``invalid_field``, values above the maximum are clamped."""
    query = request.query_params
    errors = []
    after = query.get("after") or None  # an empty cursor (from an empty page) means the start
    if after is not None and not is_id(id_prefix, after):
        errors.append(FieldError("after", f"must be a valid {id_prefix} id"))
    per_page = per_page_default
    raw = query.get("per_page")
    if raw is not None:
        if _DIGITS.fullmatch(raw) and int(raw) >= 1:
            per_page = min(int(raw), MAX_PER_PAGE)
        else:
            errors.append(FieldError("per_page", "must be a positive integer"))
    descending = descending_default
    raw = query.get("order_by")
    if raw is not None:
        match = _ORDER_BY.fullmatch(raw)
        if match is None:
            errors.append(FieldError("order_by", "must be id[ASC] or id[DESC]"))
        else:
            descending = match.group(1).lower() == "desc"
    if errors:
        raise InvalidField(errors=errors)
    return PageRequest(after=after, limit=per_page, descending=descending)


E = TypeVar("E", bound=StrEnum)


def comma_separated(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def enum_list(field: str, raw: str, enum: type[E]) -> frozenset[E]:
    """A comma-separated list filter (``status=active,revoked``); anything else names the choices."""
    names = comma_separated(raw)
    if not names or any(n not in enum._value2member_map_ for n in names):
        choices = ", ".join(member.value for member in enum)
        raise InvalidField.on(field, f"must be a comma-separated list of: {choices}")
    return frozenset(enum(n) for n in names)


def id_list(field: str, raw: str, prefix: str, what: str) -> frozenset[str]:
    """A comma-separated list of ids of one kind (``product_id=pro_…,pro_…``)."""
    ids = comma_separated(raw)
    if not ids or not all(is_id(prefix, i) for i in ids):
        raise InvalidField.on(field, f"must be a comma-separated list of {what} ids ({prefix}_…)")
    return frozenset(ids)


def page_envelope(
    request: Request[Any, Any, Any],
    options: UrlOptions,
    page: PageRequest,
    found: Page[Entity],
    data: list[Any],
) -> dict[str, Any]:
    """A list response built by hand: ``data`` and the paginated ``meta``."""
    return {"data": data, "meta": msgspec.to_builtins(meta(request, options, page, found))}


def base_url(request: Request[Any, Any, Any], options: UrlOptions) -> str:
    """The origin clients reached: the configured public URL, else scheme and host of the request.

    ``X-Forwarded-Proto``/``-Host`` are believed only from a configured trusted proxy, so a client
    cannot make keyhouse hand out links (which SDKs follow with the API key) to a host of its choosing.
    """
    if options.public_url:
        return options.public_url.rstrip("/")
    scheme = request.url.scheme
    host = request.headers.get("host") or request.url.netloc
    client = request.client.host if request.client else None
    if client and options.trusted_proxies and _trusted(client, options.trusted_proxies):
        scheme = request.headers.get("x-forwarded-proto", scheme).split(",")[0].strip()
        host = request.headers.get("x-forwarded-host", host).split(",")[0].strip()
    return f"{scheme}://{host}"


def _trusted(client: str, proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(client)
    except ValueError:
        return False
    return any(address in network for network in proxies)


class Identified(Protocol):
    @property
    def id(self) -> str: ...


Entity = TypeVar("Entity", bound=Identified)


def meta(
    request: Request[Any, Any, Any], options: UrlOptions, page: PageRequest, found: Page[Entity]
) -> MetaPaginated:
    """``next`` is absolute and keeps every original query parameter, with ``after`` set to the last id."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k != "after"]
    params.append(("after", found.items[-1].id if found.items else (page.after or "")))
    next_url = f"{base_url(request, options)}{request.url.path}?{urlencode(params)}"
    return MetaPaginated(
        request_id=request.state.request_id,
        pagination=Pagination(
            per_page=page.limit, next=next_url, has_more=found.has_more, estimated_total=found.estimated_total
        ),
    )
