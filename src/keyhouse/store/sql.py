"""The shared SQLAlchemy Core implementation of the store; dialect specifics live beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from importlib.resources import files
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.keys import ApiKey, KeyStatus, SecretHash
from keyhouse.domain.permissions import Permission, sorted_names
from keyhouse.store import Page, PageRequest
from keyhouse.store.tables import accounts, api_key_secrets, api_keys


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "account_id": key.account_id,
        "environment": key.environment.value,
        "name": key.name,
        "description": key.description,
        "status": key.status.value,
        "permissions": None if key.permissions is None else sorted_names(key.permissions),
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "exposed_at": key.exposed_at,
        "rotatable": key.rotatable,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
        "revoked_at": key.revoked_at,
    }


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        name=row.name,
        description=row.description,
        status=KeyStatus(row.status),
        permissions=None if row.permissions is None else frozenset(Permission(p) for p in row.permissions),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        exposed_at=row.exposed_at,
        rotatable=row.rotatable,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
    )


class SqlTransaction:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _page(
        self, table: sa.Table, where: sa.ColumnElement[bool], page: PageRequest
    ) -> tuple[list[sa.Row[Any]], bool, int]:
        """Rows of one cursor page (fetching one extra row tells whether more exist) and the total."""
        query = sa.select(table).where(where)
        if page.after is not None:
            query = query.where(table.c.id < page.after if page.descending else table.c.id > page.after)
        order = table.c.id.desc() if page.descending else table.c.id.asc()
        rows = list((await self.conn.execute(query.order_by(order).limit(page.limit + 1))).all())
        total = (
            await self.conn.execute(sa.select(sa.func.count()).select_from(table).where(where))
        ).scalar_one()
        return rows[: page.limit], len(rows) > page.limit, total

    async def add_account(self, account: Account) -> None:
        await self.conn.execute(
            accounts.insert().values(id=account.id, name=account.name, created_at=account.created_at)
        )

    async def get_account(self, account_id: str) -> Account | None:
        row = (await self.conn.execute(accounts.select().where(accounts.c.id == account_id))).first()
        return None if row is None else Account(id=row.id, name=row.name, created_at=row.created_at)

    async def list_accounts(self) -> list[Account]:
        rows = await self.conn.execute(accounts.select().order_by(accounts.c.id))
        return [Account(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    async def add_key(self, key: ApiKey, secret: SecretHash) -> None:
        await self.conn.execute(api_keys.insert().values(**_key_row(key)))
        await self.add_secret(secret)

    async def add_secret(self, secret: SecretHash) -> None:
        await self.conn.execute(
            api_key_secrets.insert().values(
                key_id=secret.key_id,
                pepper_id=secret.pepper_id,
                digest=secret.digest,
                valid_until=secret.valid_until,
                created_at=secret.created_at,
            )
        )

    async def update_key(self, key: ApiKey) -> None:
        row = _key_row(key)
        del row["id"], row["account_id"], row["environment"], row["created_at"]
        await self.conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(**row))

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = (await self.conn.execute(api_keys.select().where(api_keys.c.id == key_id))).first()
        return None if row is None else _key(row)

    async def list_keys(self, account_id: str, environment: Environment, page: PageRequest) -> Page[ApiKey]:
        where = sa.and_(api_keys.c.account_id == account_id, api_keys.c.environment == environment.value)
        rows, has_more, total = await self._page(api_keys, where, page)
        return Page([_key(r) for r in rows], has_more, total)

    async def secrets_of(self, key_id: str) -> list[SecretHash]:
        rows = await self.conn.execute(
            api_key_secrets.select().where(api_key_secrets.c.key_id == key_id).order_by(api_key_secrets.c.id)
        )
        return [
            SecretHash(
                key_id=r.key_id,
                pepper_id=r.pepper_id,
                digest=bytes(r.digest),
                valid_until=r.valid_until,
                created_at=r.created_at,
            )
            for r in rows
        ]

    async def find_key_by_digest(self, digests: Sequence[bytes]) -> str | None:
        query = (
            sa.select(api_key_secrets.c.key_id).where(api_key_secrets.c.digest.in_(list(digests))).limit(1)
        )
        return (await self.conn.execute(query)).scalar_one_or_none()

    async def touch_key(self, key_id: str, last_used_at: datetime) -> None:
        await self.conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id)
            .where(sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < last_used_at))
            .values(last_used_at=last_used_at)
        )


class SqlStore:
    """What both dialects share; subclasses open the engine and say how changes are noticed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[SqlTransaction]:
        async with self.engine.connect() as conn:
            conn = await conn.execution_options(keyhouse_write=write)
            async with conn.begin():
                yield SqlTransaction(conn)

    def transaction(self) -> Any:
        return self._connection(write=True)

    def read(self) -> Any:
        return self._connection(write=False)

    def change_marker(self) -> int | None:
        return None

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:  # any failure means "not healthy"; healthz reports it, never raises
            return False
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.engine.dispose()


def _run_alembic(conn: Any) -> None:
    config = Config()
    config.set_main_option("script_location", str(files("keyhouse.store") / "migrations"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


async def migrate(store: SqlStore) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    async with store.engine.connect() as conn:
        await conn.run_sync(_run_alembic)
        await conn.commit()
