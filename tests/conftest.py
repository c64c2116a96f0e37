"""Shared fixtures: real stores (SQLite and PostgreSQL), a fake clock, the app, and the cast.

The cast (healthchecks' habit): **alice** owns account A, **charlie** owns account B; each has
sandbox and live keys. Later issues add bob, a partner integration installed in alice's account.

Each pytest session migrates one fresh, uniquely named PostgreSQL schema and one SQLite file;
tables are emptied before every test, so a test that starts other processes sees committed data.
Outside CI a missing service skips its tests with one loud summary line; with CI=true it fails them.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from keyhouse import services
from keyhouse.bootstrap import Database
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.permissions import Permission
from keyhouse.store.postgres import PostgresStore
from keyhouse.store.sql import SqlStore, migrate
from keyhouse.store.sqlite import SqliteStore
from keyhouse.store.tables import metadata
from keyhouse.web import WebOptions, create_app

POSTGRES_URL = os.environ.get("KEYHOUSE_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("KEYHOUSE_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
TEST_PEPPER = "test-pepper-" + "x" * 40
SCHEMA_PREFIX = "kh_test_"
_missing: dict[str, str] = {}


def need(service: str, reason: str) -> None:
    """Skip (or, under CI, fail) a test whose service is absent."""
    _missing[service] = reason
    if IN_CI:
        pytest.fail(f"{service} is required in CI and is not available: {reason}")
    pytest.skip(f"{service} not available: {reason}")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for service, reason in _missing.items():
        terminalreporter.write_line(
            f"!!! SKIPPED every {service} test: {service} is not available ({reason}). "
            "They run in CI, where a missing service fails the build. !!!",
            red=True,
            bold=True,
        )


# --- databases ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TestDatabase:
    kind: str
    url: str  # a KEYHOUSE_DATABASE_URL that subprocesses can use

    def open(self) -> SqlStore:
        parsed = Database.parse(self.url)
        if parsed.kind == "sqlite":
            return SqliteStore(parsed.target)
        return PostgresStore(parsed.target, parsed.schema, pool_size=5)


async def _prepare_postgres() -> str:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        # Schemas of earlier runs older than a day go; their names carry their birth time.
        cutoff = int(time.time()) - 86400
        for row in await conn.fetch(
            "SELECT nspname FROM pg_namespace WHERE nspname LIKE $1", SCHEMA_PREFIX + "%"
        ):
            born = row["nspname"].removeprefix(SCHEMA_PREFIX).split("_")[0]
            if born.isdigit() and int(born) < cutoff:
                await conn.execute(f'DROP SCHEMA IF EXISTS "{row["nspname"]}" CASCADE')
        schema = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(4)}"
        await conn.execute(f'CREATE SCHEMA "{schema}"')
        return schema
    finally:
        await conn.close()


async def _drop_schema(schema: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=3)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


async def _migrate(database: TestDatabase) -> None:
    store = database.open()
    try:
        await migrate(store)
    finally:
        await store.close()


@pytest.fixture(scope="session")
def sqlite_database(tmp_path_factory: pytest.TempPathFactory) -> TestDatabase:
    path = tmp_path_factory.mktemp("db") / "keyhouse.sqlite3"
    database = TestDatabase("sqlite", f"sqlite:///{path}")
    asyncio.run(_migrate(database))
    return database


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[TestDatabase | None]:
    try:
        schema = asyncio.run(_prepare_postgres())
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        yield None
        _missing.setdefault("PostgreSQL", f"{POSTGRES_URL}: {exc}")
        return
    database = TestDatabase("postgres", f"{POSTGRES_URL}?schema={schema}")
    asyncio.run(_migrate(database))
    yield database
    asyncio.run(_drop_schema(schema))


@pytest.fixture(params=["sqlite", "postgres"])
def database(
    request: pytest.FixtureRequest, sqlite_database: TestDatabase, postgres_database: TestDatabase | None
) -> TestDatabase:
    if request.param == "sqlite":
        return sqlite_database
    if postgres_database is None:
        need("PostgreSQL", _missing.get("PostgreSQL", POSTGRES_URL))
    assert postgres_database is not None
    return postgres_database


async def empty_tables(store: SqlStore) -> None:
    async with store.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            await conn.execute(sa.delete(table))


@pytest.fixture
async def store(database: TestDatabase) -> AsyncIterator[SqlStore]:
    store = database.open()
    await empty_tables(store)
    await store.start()
    yield store
    await store.close()


# --- time, deps, app ------------------------------------------------------------------------------


class FakeClock:
    """Time that moves only when a test says so."""

    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def pepper() -> Pepper:
    return Pepper(TEST_PEPPER.encode())


@pytest.fixture
async def deps(store: SqlStore, clock: FakeClock, pepper: Pepper) -> AsyncIterator[services.Deps]:
    deps = services.Deps(store=store, peppers=services.Peppers(pepper), clock=clock)
    yield deps
    await deps.usage.aclose()  # a background usage flush must not outlive the test's store


@pytest.fixture
def web_options() -> WebOptions:
    return WebOptions()


@pytest.fixture
async def client(deps: services.Deps, web_options: WebOptions) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(deps, web_options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


# --- the cast -------------------------------------------------------------------------------------


@dataclass
class Member:
    """One account owner and a key of theirs per environment."""

    account_id: str
    keys: dict[Environment, str]  # plaintext, per environment
    key_ids: dict[Environment, str]

    def auth(self, environment: Environment = Environment.SANDBOX) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[environment]}"}


async def make_member(
    deps: services.Deps, name: str, permissions: frozenset[Permission] = frozenset(Permission)
) -> Member:
    account = await services.create_account(deps, name)
    keys, ids = {}, {}
    for environment in Environment:
        key, plaintext = await services.create_key(
            deps,
            account_id=account.id,
            environment=environment,
            name=f"{name} {environment}",
            permissions=permissions,
        )
        keys[environment], ids[environment] = plaintext, key.id
    return Member(account.id, keys, ids)


@pytest.fixture
async def alice(deps: services.Deps) -> Member:
    return await make_member(deps, "Alice's shop")


@pytest.fixture
async def charlie(deps: services.Deps) -> Member:
    return await make_member(deps, "Charlie's shop")


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
