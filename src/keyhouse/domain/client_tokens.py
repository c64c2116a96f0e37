"""Client-side tokens: publishable credentials for the frontend (Paddle.js and keyhouse.js).

A token is public by design, so it is stored retrievably and returned on every read, but it
authenticates only client-side operations (previews), never the server API. Revocation is one-way.
Each token records who created it; an installation's token belongs to that installation, which is
what lets a partner see and manage only its own tokens.

Beyond Paddle, a token may carry ``allowed_origins``: the web origins (``https://shop.example.com``,
``http://localhost:*``) whose pages may use it. Browsers send ``Origin`` on every cross-site and
every non-GET request and pages cannot forge it, so this stops other websites from using a
published token. It does not stop a script outside a browser, which can send any header it likes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import FieldError, InvalidField
from keyhouse.domain.ids import new_id
from keyhouse.domain.times import rfc3339, rfc3339_or_none

NAME_MAX = 150
DESCRIPTION_MAX = 500
ORIGINS_MAX = 20
# scheme://host[:port|:*] — no path, query or credentials; host is a name, IPv4 or [IPv6].
_ORIGIN = re.compile(r"(https?)://(\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(\d{1,5}|\*))?", re.ASCII)
_DEFAULT_PORTS = {"http": "80", "https": "443"}


class TokenStatus(StrEnum):
    ACTIVE = "active"
    REVOKED = "revoked"


class CreatorKind(StrEnum):
    INSTALLATION = "installation"  # a partner integration's key
    API_KEY = "api_key"  # a merchant's own key
    CLI = "cli"  # the account owner, at the command line


@dataclass(frozen=True, slots=True)
class Creator:
    kind: CreatorKind
    id: str  # installation id, api key id, or the operator's name

    def __str__(self) -> str:
        return f"{self.kind.value}:{self.id}"


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientToken:
    id: str
    account_id: str
    environment: Environment
    token: str
    name: str
    description: str | None
    status: TokenStatus
    created_by: Creator
    created_at: datetime
    updated_at: datetime
    revoked_at: datetime | None = None
    #: None: any origin may use the token (Paddle's behaviour).
    allowed_origins: tuple[str, ...] | None = None

    @property
    def installation_id(self) -> str | None:
        """The owning installation, when a partner created the token."""
        return self.created_by.id if self.created_by.kind is CreatorKind.INSTALLATION else None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClientTokenWire:
    """A client-side token as Paddle shows it.

    NOTE: wire format. Never reorder or rename fields; a new field gets a default.
    """

    id: str
    token: str
    name: str
    description: str | None
    status: str
    revoked_at: str | None
    created_at: str
    updated_at: str
    #: keyhouse extension (the SDKs ignore unknown fields).
    allowed_origins: list[str] | None = None


def to_wire(token: ClientToken) -> ClientTokenWire:
    return ClientTokenWire(
        id=token.id,
        token=token.token,
        name=token.name,
        description=token.description,
        status=token.status.value,
        revoked_at=rfc3339_or_none(token.revoked_at),
        created_at=rfc3339(token.created_at),
        updated_at=rfc3339(token.updated_at),
        allowed_origins=None if token.allowed_origins is None else list(token.allowed_origins),
    )


def validate_fields(name: object, description: object) -> tuple[str, str | None]:
    """The create body's fields, checked as Paddle does: name 1–150, description null or 1–500."""
    errors = []
    if not isinstance(name, str):
        errors.append(FieldError("name", "must be provided as a string"))
    elif not 1 <= len(name) <= NAME_MAX:
        errors.append(FieldError("name", f"length must be between 1 and {NAME_MAX}, provided {len(name)}"))
    if description is not None and not isinstance(description, str):
        errors.append(FieldError("description", "must be a string or null"))
    elif isinstance(description, str) and not 1 <= len(description) <= DESCRIPTION_MAX:
        errors.append(
            FieldError(
                "description", f"length must be between 1 and {DESCRIPTION_MAX}, provided {len(description)}"
            )
        )
    if errors:
        raise InvalidField(errors=errors)
    assert isinstance(name, str)
    return name, description if isinstance(description, str) else None


def issue_token(
    *,
    account_id: str,
    environment: Environment,
    name: object,
    description: object,
    created_by: Creator,
    now: datetime,
    allowed_origins: object = None,
) -> ClientToken:
    checked_name, checked_description = validate_fields(name, description)
    origins = validate_origins(allowed_origins)
    return ClientToken(
        id=new_id("ctkn"),
        account_id=account_id,
        environment=environment,
        token=credentials.new_client_token(environment),
        name=checked_name,
        description=checked_description,
        status=TokenStatus.ACTIVE,
        created_by=created_by,
        created_at=now,
        updated_at=now,
        allowed_origins=origins,
    )


def change_status(token: ClientToken, status: object, now: datetime) -> ClientToken:
    """Apply a PATCH ``status``: active → revoked only; the same status again changes nothing."""
    if not isinstance(status, str) or status not in TokenStatus._value2member_map_:
        raise InvalidField.on("status", "must be one of: active, revoked")
    wanted = TokenStatus(str(status))
    if wanted is token.status:
        return token
    if wanted is TokenStatus.ACTIVE:
        raise InvalidField.on("status", "a revoked client-side token can't be made active again")
    return revoke(token, now)


def revoke(token: ClientToken, now: datetime) -> ClientToken:
    if token.status is TokenStatus.REVOKED:
        return token
    return replace(token, status=TokenStatus.REVOKED, revoked_at=now, updated_at=now)


def normalize_origin(value: str) -> str | None:
    """``scheme://host[:port]`` in lower case without a default port, or ``None`` if not an origin."""
    match = _ORIGIN.fullmatch(value.strip().lower())
    if match is None:
        return None
    scheme, host, port = match.groups()
    if port is not None and port != "*":
        if not 0 < int(port) < 65536:
            return None
        port = str(int(port))  # "0443" is 443
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def validate_origins(value: object) -> tuple[str, ...] | None:
    """``allowed_origins`` from a request body: null, or a list of 1–20 origins (duplicates dropped)."""
    if value is None:
        return None
    if not isinstance(value, list) or not 1 <= len(value) <= ORIGINS_MAX:
        raise InvalidField.on("allowed_origins", f"must be null or a list of 1 to {ORIGINS_MAX} origins")
    errors = []
    origins: list[str] = []
    for index, item in enumerate(value):
        origin = normalize_origin(item) if isinstance(item, str) else None
        if origin is None:
            errors.append(
                FieldError(
                    f"allowed_origins[{index}]", "must be an origin: scheme://host[:port], port may be *"
                )
            )
        elif origin not in origins:
            origins.append(origin)
    if errors:
        raise InvalidField(errors=errors)
    return tuple(origins)


def origin_allowed(allowed: tuple[str, ...] | None, origin: str | None) -> bool:
    """May a request from ``origin`` (its ``Origin`` header; None when absent) use the token?

    A token without a list serves everyone. A token with one serves only pages of those origins, so
    a request with no ``Origin`` at all (not from a browser page) is refused too.
    """
    if allowed is None:
        return True
    if origin is None:
        return False
    normalized = normalize_origin(origin)
    if normalized is None or "*" in normalized:
        return False
    if normalized in allowed:
        return True
    match = _ORIGIN.fullmatch(normalized)
    assert match is not None  # normalize_origin returned it
    scheme, host, _port = match.groups()
    return f"{scheme}://{host}:*" in allowed


def change_origins(token: ClientToken, value: object, now: datetime) -> ClientToken:
    """Apply a PATCH ``allowed_origins`` (extension); a revoked token cannot change."""
    origins = validate_origins(value)
    if origins == token.allowed_origins:
        return token
    if token.status is TokenStatus.REVOKED:
        raise InvalidField.on("allowed_origins", "a revoked client-side token can't be changed")
    return replace(token, allowed_origins=origins, updated_at=now)
