"""Time on the wire: RFC 3339 in UTC with microseconds and ``Z``, as Paddle writes it."""

from __future__ import annotations

import re
from datetime import UTC, datetime

_RFC3339 = re.compile(r"\d{4}-\d\d-\d\d([T ]\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d))?", re.ASCII)


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_or_none(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def parse_rfc3339(value: str) -> datetime | None:
    """An aware datetime, or ``None`` unless ``value`` is RFC 3339 with a zone (a bare date: midnight UTC)."""
    value = value.strip().upper()  # RFC 3339 allows a lowercase t and z
    if _RFC3339.fullmatch(value) is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # e.g. year 1 moved west of UTC
        return None


def utc_now() -> datetime:
    return datetime.now(UTC)
