"""Partner integrations, their installations in merchants' accounts, and the early-access gate.

The operator registers an integration (a partner such as a mobile-paywall provider). A merchant
installs it into one environment of their account; the installation gets its own API key, with the
permissions the merchant chose. While the client-side tokens API is in early access, only keys of
installations of allow-listed integrations may call it; general availability opens it to every key
holding the permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keyhouse.domain.accounts import Environment
from keyhouse.domain.keys import Allowed, ApiKey, Denied
from keyhouse.domain.times import rfc3339, rfc3339_or_none

EARLY_ACCESS_DETAIL = "The client-side tokens API is in early access for allow-listed partner integrations."


class Feature(StrEnum):
    CLIENT_TOKENS_API = "client-tokens-api"


class Availability(StrEnum):
    EARLY_ACCESS = "early-access"
    GENERAL_AVAILABILITY = "general-availability"


#: Where every feature starts on a new installation of keyhouse.
DEFAULT_AVAILABILITY = {Feature.CLIENT_TOKENS_API: Availability.EARLY_ACCESS}


@dataclass(frozen=True, slots=True, kw_only=True)
class Integration:
    id: str
    name: str
    early_access: bool  # on the client-tokens API allow-list
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class Installation:
    id: str
    integration_id: str
    account_id: str
    environment: Environment
    created_at: datetime
    uninstalled_at: datetime | None = None

    @property
    def active(self) -> bool:
        return self.uninstalled_at is None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditEntry:
    """One operator change: who, when, what, from → to."""

    at: datetime
    actor: str
    subject: str  # "feature:client-tokens-api" or "integration:<id>"
    field: str
    old: str | None
    new: str


def client_tokens_gate(
    availability: Availability, key: ApiKey, allow_listed_installations: frozenset[str]
) -> Allowed | Denied:
    """May ``key`` call the client-side tokens API at all (permissions are checked before this)?"""
    if availability is Availability.GENERAL_AVAILABILITY:
        return Allowed()
    if key.installation_id is not None and key.installation_id in allow_listed_installations:
        return Allowed()
    return Denied(EARLY_ACCESS_DETAIL)


def integration_json(integration: Integration) -> dict[str, object]:
    return {
        "id": integration.id,
        "name": integration.name,
        "early_access": integration.early_access,
        "created_at": rfc3339(integration.created_at),
        "updated_at": rfc3339(integration.updated_at),
    }


def installation_json(installation: Installation) -> dict[str, object]:
    return {
        "id": installation.id,
        "integration_id": installation.integration_id,
        "account_id": installation.account_id,
        "environment": installation.environment.wire,
        "status": "active" if installation.active else "uninstalled",
        "created_at": rfc3339(installation.created_at),
        "uninstalled_at": rfc3339_or_none(installation.uninstalled_at),
    }


def audit_json(entry: AuditEntry) -> dict[str, object]:
    return {
        "at": rfc3339(entry.at),
        "actor": entry.actor,
        "subject": entry.subject,
        "field": entry.field,
        "from": entry.old,
        "to": entry.new,
    }
