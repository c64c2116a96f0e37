"""The composition root: settings in, a wired store, services, ASGI app and worker out.

The only module that names a concrete store, reads ``Settings`` or creates an engine.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import secrets
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import structlog
from litestar.types import ASGIApp

from keyhouse.config import ConfigError, Settings, load_settings
from keyhouse.domain.credentials import Pepper
from keyhouse.services import Deps, Peppers
from keyhouse.services.secret_scanning import ScannerKeys
from keyhouse.store.postgres import PostgresStore
from keyhouse.store.sql import SqlStore, migrate
from keyhouse.store.sqlite import SqliteStore
from keyhouse.web import WebOptions, create_app
from keyhouse.web.guards import HostOptions
from keyhouse.web.pagination import UrlOptions
from keyhouse.web.ratelimits import RateLimitOptions
from keyhouse.webhooks.sender import Sender
from keyhouse.webhooks.worker import Worker, WorkerOptions


@dataclass(frozen=True, slots=True)
class Database:
    """A parsed ``KEYHOUSE_DATABASE_URL``."""

    kind: str  # "sqlite" | "postgresql"
    target: str  # file path, or a libpq DSN without keyhouse's own parameters
    schema: str | None = None

    @classmethod
    def parse(cls, url: str) -> Database:
        if url.startswith("sqlite:///"):
            return cls("sqlite", url.removeprefix("sqlite:///"))
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        schema = next((v for k, v in query if k == "schema"), None)
        rest = urlencode([(k, v) for k, v in query if k != "schema"])
        dsn = urlunsplit(("postgresql", parts.netloc, parts.path, rest, ""))
        return cls("postgresql", dsn, schema)

    @property
    def pepper_file(self) -> Path:
        return Path(f"{self.target}.pepper")


def open_store(settings: Settings) -> SqlStore:
    database = Database.parse(settings.database_url)
    if database.kind == "sqlite":
        return SqliteStore(database.target)
    return PostgresStore(database.target, database.schema, pool_size=settings.db_pool_size)


def load_peppers(settings: Settings, *, create: bool = False) -> Peppers:
    """The pepper from ``KEYHOUSE_PEPPER``; with SQLite and none set, from a 0600 file beside the database.

    ``create`` (only ``db upgrade``) writes that file the first time.
    """
    previous = tuple(
        Pepper(p.strip().encode())
        for p in (settings.previous_peppers.get_secret_value() if settings.previous_peppers else "").split(
            ","
        )
        if p.strip()
    )
    if settings.pepper is not None:
        return Peppers(Pepper(settings.pepper.get_secret_value().encode()), previous)
    database = Database.parse(settings.database_url)
    if database.kind != "sqlite":
        raise ConfigError("KEYHOUSE_PEPPER is required with PostgreSQL (at least 32 random characters).")
    path = database.pepper_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"no pepper: set KEYHOUSE_PEPPER, or run `keyhouse db upgrade` once to create {path}."
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48))
    return Peppers(Pepper(path.read_text().strip().encode()), previous)


def build_deps(settings: Settings) -> Deps:
    return Deps(
        store=open_store(settings),
        peppers=load_peppers(settings),
        token_cap_per_installation=settings.client_token_limit_per_installation,
        token_cap_per_environment=settings.client_token_limit_per_environment,
        webhooks_allow_private=settings.webhooks_allow_private,
        scanner_keys=load_scanner_keys(settings),
    )


def load_scanner_keys(settings: Settings) -> ScannerKeys | None:
    path = settings.secret_scanning_keys_file
    if path is None:
        return None
    try:
        return ScannerKeys.from_github_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"KEYHOUSE_SECRET_SCANNING_KEYS_FILE ({path}) is not usable: {exc}") from None


def web_options(settings: Settings) -> WebOptions:
    proxies = tuple(
        ipaddress.ip_network(p.strip(), strict=False)
        for p in settings.trusted_proxies.split(",")
        if p.strip()
    )
    return WebOptions(
        hosts=HostOptions(settings.sandbox_host, settings.live_host),
        urls=UrlOptions(settings.public_url, proxies),
        max_body_bytes=settings.max_body_bytes,
        rate_limits=RateLimitOptions(
            storage_url=f"async+{settings.redis_url}" if settings.redis_url else "async+memory://",
            per_credential=settings.preview_rate_limit,
            refused_per_ip=settings.refused_rate_limit,
        ),
    )


async def upgrade_database(settings: Settings) -> None:
    """Migrate to the newest schema; with SQLite and no pepper set, create the pepper file once."""
    database = Database.parse(settings.database_url)
    if database.kind == "sqlite":
        Path(database.target).parent.mkdir(parents=True, exist_ok=True)
    else:
        load_peppers(settings)  # refuse before touching the database when the pepper is missing
    store = open_store(settings)
    try:
        await migrate(store)
    finally:
        await store.close()
    load_peppers(settings, create=True)


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[Deps]:
    """Deps with a started store, closed on exit (for the CLI and scripts)."""
    deps = build_deps(settings)
    await deps.store.start()
    try:
        yield deps
    finally:
        await deps.store.close()


def configure_logging(settings: Settings) -> None:
    level = getattr(logging, settings.log_level.upper(), logging.INFO)
    logging.basicConfig(level=level, format="%(message)s")
    renderer = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso"),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
    )


def asgi_app() -> ASGIApp:
    """The uvicorn factory (``keyhouse.bootstrap:asgi_app``): one app per worker process."""
    settings = load_settings()
    configure_logging(settings)
    return create_app(build_deps(settings), web_options(settings))


def worker_options(settings: Settings) -> WorkerOptions:
    return WorkerOptions(
        batch_size=settings.worker_batch_size,
        lease=timedelta(seconds=settings.worker_lease_seconds),
        poll_seconds=settings.worker_poll_seconds,
        time_scale=settings.webhook_time_scale,
        jobs_seconds=settings.worker_jobs_seconds,
    )


async def run_worker(settings: Settings) -> None:
    """``keyhouse worker`` until SIGTERM or SIGINT; the batch in flight is finished first."""
    configure_logging(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    sender = Sender(allow_private=settings.webhooks_allow_private)
    try:
        async with running(settings) as deps:
            await Worker(deps, sender, worker_options(settings)).run(stop)
    finally:
        await sender.close()
