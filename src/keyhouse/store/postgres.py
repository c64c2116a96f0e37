"""PostgreSQL: asyncpg; credential changes announced with NOTIFY by triggers, heard with LISTEN."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import create_async_engine

from keyhouse.store.sql import SqlStore, SqlTransaction

CHANNEL = "keyhouse_changes"
log = logging.getLogger(__name__)


class PostgresStore(SqlStore):
    """``change_marker`` is a counter bumped by every NOTIFY that the credential tables' triggers send.

    While the listening connection is down the marker is ``None``, so caches are bypassed rather than
    trusted: a revoke is never missed, only the cache's speed is lost until the listener reconnects.
    """

    def __init__(self, dsn: str, schema: str | None = None, pool_size: int = 10) -> None:
        connect_args: dict[str, Any] = {}
        if schema:
            connect_args["server_settings"] = {"search_path": schema}
        super().__init__(
            create_async_engine(
                f"postgresql+asyncpg://{dsn.split('://', 1)[1]}",
                connect_args=connect_args,
                pool_size=pool_size,
                pool_pre_ping=True,
            )
        )
        self.dsn = dsn
        self.schema = schema
        self._counter = 0
        self._listening = False
        self._listener: asyncpg.Connection | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self._lost = asyncio.Event()

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[SqlTransaction]:
        async with super()._connection(write=write) as tx:
            yield tx
        if write:
            # NOTIFY reaches even this process only after a round trip; a write made here must be seen
            # by this process's very next request, so count it now.
            self._counter += 1

    async def start(self) -> None:
        if self._supervisor is not None:
            return
        await self._listen()
        self._supervisor = asyncio.create_task(self._supervise())

    async def _listen(self) -> None:
        conn = await asyncpg.connect(self.dsn)
        await conn.add_listener(CHANNEL, self._heard)
        conn.add_termination_listener(self._terminated)
        self._listener = conn
        self._counter += 1  # anything may have changed while we were not listening
        self._listening = True

    def _heard(self, *_args: Any) -> None:
        self._counter += 1

    def _terminated(self, *_args: Any) -> None:
        self._listening = False
        self._lost.set()

    async def _supervise(self) -> None:
        while True:
            await self._lost.wait()
            self._lost.clear()
            delay = 0.1
            while not self._listening:
                try:
                    await self._listen()
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("keyhouse: LISTEN connection lost, retrying in %.1fs: %s", delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 5.0)

    def change_marker(self) -> int | None:
        return self._counter if self._listening else None

    async def close(self) -> None:
        if self._supervisor is not None:
            self._supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._supervisor
        if self._listener is not None:
            self._listening = False
            await self._listener.close()
        await super().close()
