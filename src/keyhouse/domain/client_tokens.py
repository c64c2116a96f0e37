"""Client-side tokens: publishable credentials for the frontend (Paddle.js and keyhouse.js).

A token is public by design, so it is stored retrievably and returned on every read, but it
authenticates only client-side operations (previews), never the server API. Revocation is one-way.
Each token records who created it; an installation's token belongs to that installation, which is
what lets a partner see and manage only its own tokens.
"""

from __future__ import annotations

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
) -> ClientToken:
    checked_name, checked_description = validate_fields(name, description)
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
