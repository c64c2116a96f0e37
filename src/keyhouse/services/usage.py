"""Counting what keys do, cheaply: per process in memory, written in one batch now and then.

Recording is a dictionary increment on the request path (no I/O). A flush writes every pending
count in one transaction at most once per ``flush_interval`` (and when the server stops), so a
busy key costs one upsert per interval, not one per request. A process killed hard loses at most
its last interval of counts — acceptable for advice, never used for billing or limits.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import date, timedelta
from typing import TYPE_CHECKING

import structlog

from keyhouse.domain.errors import KeyhouseError
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.domain.usage import NO_PERMISSION, summary

if TYPE_CHECKING:
    from keyhouse.services.deps import Deps

log = structlog.get_logger("keyhouse.usage")


class UsageRecorder:
    def __init__(self, deps: Deps, flush_interval: timedelta = timedelta(seconds=60)) -> None:
        self.deps = deps
        self.flush_interval = flush_interval
        self._pending: Counter[tuple[str, date, str]] = Counter()
        self._last_flush = deps.clock()
        self._flushing: asyncio.Task[None] | None = None

    def record(self, key_id: str, permission: Permission | None) -> None:
        now = self.deps.clock()
        self._pending[(key_id, now.date(), NO_PERMISSION if permission is None else permission.value)] += 1
        if now - self._last_flush >= self.flush_interval and self._flushing is None:
            self._last_flush = now
            self._flushing = asyncio.get_running_loop().create_task(self._background_flush())

    async def _background_flush(self) -> None:
        try:
            await self.flush()
        except KeyhouseError as exc:  # e.g. the database is busy: the counts were put back
            log.warning("usage flush failed", error=exc.detail)
        finally:
            self._flushing = None

    async def aclose(self) -> None:
        """Wait for a flush in flight, then write what is left (the server calls this as it stops)."""
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.flush()

    async def flush(self) -> None:
        pending, self._pending = self._pending, Counter()
        if not pending:
            return
        try:
            async with self.deps.store.transaction() as tx:
                await tx.add_usage(dict(pending))
        except BaseException:
            self._pending.update(pending)  # try again with the next flush
            raise


async def key_usage(deps: Deps, key: ApiKey, days: int) -> dict[str, object]:
    since = deps.clock().date() - timedelta(days=days - 1)
    async with deps.store.read() as tx:
        rows = await tx.usage_of(key.id, since)
    return {"api_key_id": key.id, "since": since.isoformat(), **summary(rows, key.granted)}
