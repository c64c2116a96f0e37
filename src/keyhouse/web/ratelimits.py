"""Rate limits of the client-side API, with the ``limits`` library (Redis when configured).

Two budgets: one per credential for previews (Paddle allows 1,000 requests a minute there), and one
per client IP for *refused* requests (bad or revoked tokens, wrong origins), so a flood of invalid
tokens is bounded without spending the budget of the token being abused.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import limits
from limits.aio.strategies import FixedWindowRateLimiter
from limits.storage import storage_from_string

from keyhouse.domain.errors import TooManyRequests


@dataclass(frozen=True, slots=True)
class RateLimitOptions:
    #: ``async+memory://`` per process, or ``async+redis://host:port/db`` shared by every worker.
    storage_url: str = "async+memory://"
    per_credential: str = "1000/minute"
    refused_per_ip: str = "100/minute"


class RateLimits:
    def __init__(self, options: RateLimitOptions) -> None:
        extra = {"implementation": "redispy"} if options.storage_url.startswith("async+redis") else {}
        self._storage = storage_from_string(options.storage_url, **extra)
        self._limiter = FixedWindowRateLimiter(self._storage)
        self._credential = limits.parse(options.per_credential)
        self._refused = limits.parse(options.refused_per_ip)

    async def close(self) -> None:
        """Release the storage's connections (Redis) at shutdown."""
        # limits keeps the redis-py client on its bridge and offers no close of its own.
        client = getattr(getattr(self._storage, "bridge", None), "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()

    async def _refuse(self, item: limits.RateLimitItem, *identifiers: str) -> None:
        stats = await self._limiter.get_window_stats(item, *identifiers)
        raise TooManyRequests(retry_after=max(1, math.ceil(stats.reset_time - time.time())))

    async def check_ip(self, ip: str) -> None:
        """Before anything else: an IP that keeps sending bad credentials waits."""
        if not await self._limiter.test(self._refused, "refused", ip):
            await self._refuse(self._refused, "refused", ip)

    async def refused(self, ip: str) -> None:
        await self._limiter.hit(self._refused, "refused", ip)

    async def spend(self, credential_id: str) -> None:
        """One preview by this credential (a client token's id, or an API key's id)."""
        if not await self._limiter.hit(self._credential, "credential", credential_id):
            await self._refuse(self._credential, "credential", credential_id)
