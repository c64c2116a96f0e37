"""Real ``keyhouse`` processes for tests that talk over a socket: the server and the CLI.

A test module enables these fixtures with ``pytest_plugins = ["tests.servers"]`` and imports names
from here only under ``TYPE_CHECKING`` (importing the module first would stop pytest from
registering it as a plugin). Then:

* ``keyhouse`` — a :class:`Keyhouse` on emptied tables of one store (parametrised sqlite/postgres):
  ``.server`` is a ``keyhouse serve`` shared by the whole session for that store (startup is the slow
  part), ``.serve(workers=N)`` starts a private one, ``.cli(...)`` runs the CLI as its own process,
  ``.member()`` makes an account and a key the servers will accept.

Every server runs in its own process group and is always stopped (SIGTERM, then SIGKILL), even when
a test fails, so ``--workers N`` children never outlive the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.permissions import Permission
from keyhouse.store.sql import SqlStore
from tests.conftest import TEST_PEPPER, TestDatabase, _missing, empty_tables, need

T = TypeVar("T")
KEYHOUSE = str(Path(sys.executable).with_name("keyhouse"))
STARTUP_TIMEOUT = 30.0
#: The shared servers log at debug level, so the no-plaintext test searches the most verbose output.
SERVER_ENV = {"KEYHOUSE_LOG_LEVEL": "debug"}


def keyhouse_env(database_url: str, **extra: str) -> dict[str, str]:
    """A child's environment: ours minus any stray KEYHOUSE_*, plus the test database and pepper."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(KEYHOUSE_DATABASE_URL=database_url, KEYHOUSE_PEPPER=TEST_PEPPER, **extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Server:
    """A running ``keyhouse serve`` and the files its stdout and stderr go to."""

    process: subprocess.Popen[bytes]
    url: str
    stdout: Path
    stderr: Path

    def output(self) -> str:
        """Everything the server has written so far, stdout then stderr."""
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)


def _wait_until_healthy(server: Server) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"keyhouse serve exited with {server.process.returncode}:\n{server.output()}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{server.url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    pytest.fail(f"keyhouse serve was not healthy within {STARTUP_TIMEOUT}s:\n{server.output()}")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group (workers included), SIGKILL if it lingers."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    # A worker may outlive a parent that died first; the group still carries the parent's pid.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


@contextlib.contextmanager
def serving(database_url: str, log_dir: Path, *, workers: int = 1, **env: str) -> Iterator[Server]:
    """``keyhouse serve`` on a free port, healthy on entry, stopped on exit whatever happened."""
    port = free_port()
    log_dir.mkdir(parents=True, exist_ok=True)
    stdout, stderr = log_dir / f"serve-{port}.out", log_dir / f"serve-{port}.err"
    with stdout.open("wb") as out, stderr.open("wb") as err:
        process = subprocess.Popen(
            [KEYHOUSE, "serve", "--port", str(port), "--workers", str(workers)],
            env=keyhouse_env(database_url, **env),
            stdout=out,
            stderr=err,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        server = Server(process, f"http://127.0.0.1:{port}", stdout, stderr)
        _wait_until_healthy(server)
        yield server
    finally:
        _stop(process)


# --- what tests hold -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Member:
    """An account with one key (plaintext in ``key``) that the test pepper verifies."""

    account_id: str
    key_id: str
    key: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def fresh_deps(database: TestDatabase) -> services.Deps:
    """Deps on a new store of ``database``, with the real clock and the servers' pepper."""
    return services.Deps(store=database.open(), peppers=services.Peppers(Pepper(TEST_PEPPER.encode())))


@dataclass
class Keyhouse:
    """keyhouse on one test database: its shared server, private servers, and its CLI as a process."""

    database: TestDatabase
    server: Server
    log_dir: Path
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def serve(self, *, workers: int = 1, **env: str) -> Server:
        """A private ``keyhouse serve``, stopped when the test ends."""
        return self._stack.enter_context(serving(self.database.url, self.log_dir, workers=workers, **env))

    def cli(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [KEYHOUSE, *args],
            env=keyhouse_env(self.database.url),
            input=stdin,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def start_cli(self, *args: str) -> subprocess.Popen[str]:
        """The CLI in the background (``communicate()`` to finish), to overlap process start-ups."""
        return subprocess.Popen(
            [KEYHOUSE, *args],
            env=keyhouse_env(self.database.url),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def cli_json(self, *args: str, stdin: str = "") -> dict[str, Any]:
        """``keyhouse ... --json`` in its own process: it must succeed with exactly one JSON object."""
        done = self.cli(*args, "--json", stdin=stdin)
        assert done.returncode == 0, f"keyhouse {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
        payload = json.loads(done.stdout)
        assert isinstance(payload, dict)
        return payload

    def call(self, work: Callable[[services.Deps], Awaitable[T]]) -> T:
        """Run a use case in this process, on a store of its own (quicker than a CLI process)."""

        async def main() -> T:
            deps = fresh_deps(self.database)
            try:
                return await work(deps)
            finally:
                await deps.store.close()

        return asyncio.run(main())

    def member(
        self,
        *,
        environment: Environment = Environment.SANDBOX,
        permissions: frozenset[Permission] = frozenset(Permission),
    ) -> Member:
        """An account and a key, made in this process (the CLI has its own tests)."""

        async def make(deps: services.Deps) -> Member:
            account = await services.create_account(deps, "Alice's shop")
            key, plaintext = await services.create_key(
                deps, account_id=account.id, environment=environment, name="CRM", permissions=permissions
            )
            return Member(account.id, key.id, plaintext)

        return self.call(make)


# --- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def shared_server(
    request: pytest.FixtureRequest,
    sqlite_database: TestDatabase,
    postgres_database: TestDatabase | None,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[TestDatabase, Server]]:
    """One ``keyhouse serve`` per store for the whole session."""
    if request.param == "sqlite":
        database = sqlite_database
    else:
        if postgres_database is None:
            need("PostgreSQL", _missing.get("PostgreSQL", "not reachable"))
        assert postgres_database is not None
        database = postgres_database
    with serving(database.url, tmp_path_factory.mktemp("shared-server"), **SERVER_ENV) as server:
        yield database, server


async def _empty(database: TestDatabase) -> None:
    store = database.open()
    try:
        assert isinstance(store, SqlStore)
        await empty_tables(store)
    finally:
        await store.close()


@pytest.fixture
def keyhouse(shared_server: tuple[TestDatabase, Server], tmp_path: Path) -> Iterator[Keyhouse]:
    """keyhouse on emptied tables (the shared server's caches see the deletes like any other change)."""
    database, server = shared_server
    asyncio.run(_empty(database))
    with contextlib.ExitStack() as stack:
        yield Keyhouse(database, server, tmp_path / "logs", stack)
