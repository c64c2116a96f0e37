"""Key usage: requests per day and which permissions a key actually used — the evidence behind
least-privilege advice ("granted, unused for 30 days")."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from keyhouse.domain.permissions import Permission, sorted_names

#: The row of a request that needed no permission (``GET /``, a key reading itself).
NO_PERMISSION = ""


@dataclass(frozen=True, slots=True)
class UsageRow:
    day: date
    permission: str  # a permission name, or NO_PERMISSION
    requests: int


def summary(rows: Iterable[UsageRow], granted: frozenset[Permission]) -> dict[str, object]:
    """Requests per day, the permissions used, and those granted but never used in the rows' window."""
    per_day: dict[date, int] = {}
    used: set[Permission] = set()
    for row in rows:
        per_day[row.day] = per_day.get(row.day, 0) + row.requests
        if row.permission in Permission._value2member_map_:
            used.add(Permission(row.permission))
    return {
        "days": [{"day": d.isoformat(), "requests": n} for d, n in sorted(per_day.items())],
        "requests": sum(per_day.values()),
        "permissions_used": sorted_names(frozenset(used)),
        # a write granted but only ever needed as its read shows here too: narrow it to the read
        "granted_unused": sorted_names(granted - used),
    }
