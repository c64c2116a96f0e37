"""SQLite: one file, WAL, writers serialised by ``BEGIN IMMEDIATE``; changes seen via ``data_version``."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from keyhouse.store.sql import SqlStore, SqlTransaction


class SqliteStore(SqlStore):
    def __init__(self, path: str) -> None:
        super().__init__(create_async_engine(f"sqlite+aiosqlite:///{path}"))
        self.path = path
        sync_engine = self.engine.sync_engine
        event.listen(sync_engine, "connect", _on_connect)
        event.listen(sync_engine, "begin", _on_begin)
        # A plain connection of our own: ``PRAGMA data_version`` on it changes whenever any other
        # connection, in any process, commits. About 2 µs, so it is cheap enough to ask per request.
        self._watch: sqlite3.Connection | None = None
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[SqlTransaction]:
        if not write:
            async with super()._connection(write=False) as tx:
                yield tx
            return
        # SQLite has one writer at a time and its busy handler is not first come, first served:
        # queue this process's writers here, fairly, so only one of them waits on the file lock.
        async with self._write_lock, super()._connection(write=True) as tx:
            yield tx

    async def start(self) -> None:
        if self._watch is not None:
            return
        self._watch = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)

    def change_marker(self) -> int | None:
        if self._watch is None:
            return None
        row = self._watch.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    async def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
            self._watch = None
        await super().close()


def _on_connect(dbapi_connection: Any, _record: Any) -> None:
    # Let our "begin" hook, not the driver, start transactions, so writes can say IMMEDIATE.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    for pragma in ("journal_mode=WAL", "foreign_keys=ON", "busy_timeout=10000", "synchronous=NORMAL"):
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _on_begin(conn: Connection) -> None:
    write = conn.get_execution_options().get("keyhouse_write", True)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")
