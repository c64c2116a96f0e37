"""Time on the wire: RFC 3339 in UTC with microseconds and ``Z``, as Paddle writes it."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def rfc3339_or_none(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def parse_rfc3339(value: str) -> datetime | None:
    """An aware datetime, or ``None`` unless ``value`` is RFC 3339 with a zone (a bare date: midnight UTC)."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if len(value.strip()) == 10:
        return parsed.replace(tzinfo=UTC)
    return None if parsed.tzinfo is None else parsed.astimezone(UTC)


def utc_now() -> datetime:
    return datetime.now(UTC)
