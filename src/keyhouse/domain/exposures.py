"""API-key exposures: a key was seen where it must not be (a public repository, a browser page).

NOTE: ``source`` ``browser`` is a keyhouse extension; Paddle's only source is ``github``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keyhouse.domain.ids import new_id
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.times import rfc3339


class RiskLevel(StrEnum):
    HIGH = "high"
    LOW = "low"


class ActionTaken(StrEnum):
    REVOKED = "revoked"
    NONE = "none"


class ExposureSource(StrEnum):
    GITHUB = "github"
    BROWSER = "browser"


@dataclass(frozen=True, slots=True, kw_only=True)
class ExposureWire:
    """NOTE: wire format (Paddle's ``api_key_exposure``); never reorder or rename fields."""

    id: str
    api_key_id: str
    risk_level: str
    action_taken: str
    source: str
    reference: str
    description: str | None
    created_at: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Exposure:
    id: str
    api_key_id: str
    account_id: str
    risk_level: RiskLevel
    action_taken: ActionTaken
    source: ExposureSource
    reference: str
    description: str | None
    created_at: datetime

    def wire(self) -> ExposureWire:
        return ExposureWire(
            id=self.id,
            api_key_id=self.api_key_id,
            risk_level=self.risk_level.value,
            action_taken=self.action_taken.value,
            source=self.source.value,
            reference=self.reference,
            description=self.description,
            created_at=rfc3339(self.created_at),
        )


def browser_exposure(key: ApiKey, origin: str, now: datetime) -> Exposure:
    """A key sent by a page of ``origin``: low risk, nothing revoked (a developer's mistake to fix)."""
    return Exposure(
        id=new_id("apkexp"),
        api_key_id=key.id,
        account_id=key.account_id,
        risk_level=RiskLevel.LOW,
        action_taken=ActionTaken.NONE,
        source=ExposureSource.BROWSER,
        reference=origin[:250],
        description="The API key was sent by a web page; use a client-side token in browsers.",
        created_at=now,
    )
