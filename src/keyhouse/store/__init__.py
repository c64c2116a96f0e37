"""The one repository interface. Two stores implement it: SQLite and PostgreSQL.

Only Protocols and plain values live here, no SQL and no driver, so that importing the interface
never drags a database in (the services import this module and nothing below it).
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.keys import ApiKey, SecretHash

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class PageRequest:
    """A cursor page: items strictly after ``after`` in id order, at most ``limit`` of them."""

    after: str | None
    limit: int
    descending: bool


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    items: list[T]
    has_more: bool
    estimated_total: int


class Transaction(Protocol):
    """One unit of work. Commits when the ``async with`` block ends cleanly, rolls back otherwise."""

    async def add_account(self, account: Account) -> None: ...
    async def get_account(self, account_id: str) -> Account | None: ...
    async def list_accounts(self) -> list[Account]: ...

    async def add_key(self, key: ApiKey, secret: SecretHash) -> None: ...
    async def update_key(self, key: ApiKey) -> None: ...
    async def get_key(self, key_id: str) -> ApiKey | None: ...
    async def list_keys(
        self, account_id: str, environment: Environment, page: PageRequest
    ) -> Page[ApiKey]: ...
    async def secrets_of(self, key_id: str) -> list[SecretHash]: ...
    async def find_key_by_digest(self, digests: Sequence[bytes]) -> str | None: ...
    async def touch_key(self, key_id: str, last_used_at: datetime) -> None: ...


class Store(Protocol):
    def transaction(self) -> AbstractAsyncContextManager[Transaction]:
        """A write transaction (SQLite: ``BEGIN IMMEDIATE``, so writers queue instead of failing)."""
        ...

    def read(self) -> AbstractAsyncContextManager[Transaction]:
        """A read-only snapshot; never blocks writers."""
        ...

    def change_marker(self) -> int | None:
        """A cheap, synchronous value that changes whenever any process may have changed a credential.

        Caches compare it per request. ``None`` means "cannot tell right now": do not trust a cache.
        """
        ...

    async def ping(self) -> bool: ...
    async def start(self) -> None: ...
    async def close(self) -> None: ...
