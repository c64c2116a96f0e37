"""API-key exposures: a key was seen where it must not be (a public repository, a browser page).

NOTE: ``source`` ``browser`` is a keyhouse extension; Paddle's only source is ``github``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from keyhouse.domain.ids import new_id
from keyhouse.domain.keys import ApiKey, KeyStatus
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


# --- secret-scanning reports (GitHub's partner program) --------------------------------------------

#: More tokens than this in one report is not a scanner's report.
REPORT_MAX_TOKENS = 1000


@dataclass(frozen=True, slots=True)
class ReportedToken:
    """One match a scanner found: the token, its type (as the scanner named it), where, which source."""

    token: str
    type: str
    url: str
    source: str


def parse_report(body: object) -> list[ReportedToken]:
    """GitHub's report body: a JSON list of ``{token, type, url, source}``. ``ValueError`` otherwise."""
    if not isinstance(body, list) or not 1 <= len(body) <= REPORT_MAX_TOKENS:
        raise ValueError(f"a report is a JSON list of 1 to {REPORT_MAX_TOKENS} matches")
    found = []
    for item in body:
        if not isinstance(item, dict) or not all(
            isinstance(item.get(field), str) for field in ("token", "type", "url", "source")
        ):
            raise ValueError("each match is an object with string token, type, url and source")
        found.append(ReportedToken(item["token"], item["type"], item["url"], item["source"]))
    return found


def github_exposure(key: ApiKey, reported: ReportedToken, now: datetime) -> Exposure:
    """An API key found in public: high risk and revoked if it still worked; low, nothing to do, if it
    was already revoked or expired (Paddle's rule)."""
    active = key.status_at(now) is KeyStatus.ACTIVE
    return Exposure(
        id=new_id("apkexp"),
        api_key_id=key.id,
        account_id=key.account_id,
        risk_level=RiskLevel.HIGH if active else RiskLevel.LOW,
        action_taken=ActionTaken.REVOKED if active else ActionTaken.NONE,
        source=ExposureSource.GITHUB,
        reference=(reported.url or "unknown")[:250],
        description=f"Found by secret scanning in {reported.source or 'a public source'}."[:250],
        created_at=now,
    )


def report_answer(reported: ReportedToken, true_positive: bool) -> dict[str, str]:
    """GitHub's expected answer per match (``token_raw``, ``token_type``, ``label``)."""
    return {
        "token_raw": reported.token,
        "token_type": reported.type,
        "label": "true_positive" if true_positive else "false_positive",
    }
