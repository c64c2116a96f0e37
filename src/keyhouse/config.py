"""Settings: read once from ``KEYHOUSE_*`` environment variables, checked at startup.

Only ``bootstrap`` and ``cli`` import this module. State an operator changes at run time (feature
flags, allow-lists) lives in the store instead, so it takes effect without restarts.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

import limits
from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "KEYHOUSE_"


class ConfigError(Exception):
    """A setting is missing or garbled; the message names the variable."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    #: ``sqlite:///path`` or ``postgresql://user@host:port/db`` (``?schema=NAME`` picks a schema).
    database_url: str = "sqlite:///keyhouse.sqlite3"
    #: HMAC key for API-key hashes. Required with PostgreSQL; with SQLite a file beside the database.
    pepper: SecretStr | None = None
    #: Comma-separated earlier peppers, still accepted for verification while keys are re-issued.
    previous_peppers: SecretStr | None = None
    sandbox_host: str | None = None
    live_host: str | None = None
    public_url: str | None = None
    #: Comma-separated CIDRs whose X-Forwarded-* headers are believed.
    trusted_proxies: str = ""
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    db_pool_size: int = Field(default=10, ge=1)
    client_token_limit_per_installation: int = Field(default=1_000, ge=1)
    client_token_limit_per_environment: int = Field(default=10_000, ge=1)
    #: Rate-limit counters shared by every worker (``redis://host:6379/0``); unset: per process.
    redis_url: str | None = None
    preview_rate_limit: str = "1000/minute"
    refused_rate_limit: str = "100/minute"
    log_level: str = "info"
    log_format: str = "console"
    #: Webhooks. ALLOW_PRIVATE is for tests: it lets destinations reach private networks and this
    #: machine in live too (sandbox always may reach http://localhost).
    webhooks_allow_private: bool = False
    #: Multiplies the retry schedule (0.001 turns a minute into 60 ms) for tests of the worker process.
    webhook_time_scale: float = Field(default=1.0, gt=0, le=1)
    #: A claim outlives this only if its worker died; then another worker takes the notification over.
    worker_lease_seconds: float = Field(default=60.0, ge=0.5)
    #: Idle workers look for due retries this often (new events wake them sooner).
    worker_poll_seconds: float = Field(default=1.0, gt=0)
    #: GitHub's secret-scanning public keys, saved from api.github.com/meta/public_keys/secret_scanning.
    secret_scanning_keys_file: Path | None = None
    worker_batch_size: int = Field(default=32, ge=1, le=500)
    #: How often a worker runs the scheduled jobs (the key-expiry notices and status changes).
    worker_jobs_seconds: float = Field(default=10.0, gt=0)

    @field_validator("database_url")
    @classmethod
    def _known_database(cls, value: str) -> str:
        if not value.startswith(("sqlite:///", "postgresql://", "postgres://")):
            raise ValueError("must start with sqlite:/// or postgresql://")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _cidrs(cls, value: str) -> str:
        for item in filter(None, (part.strip() for part in value.split(","))):
            ipaddress.ip_network(item, strict=False)
        return value

    @field_validator("pepper")
    @classmethod
    def _strong_pepper(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 32:
            raise ValueError("must be at least 32 characters")
        return value

    @field_validator("preview_rate_limit", "refused_rate_limit")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            limits.parse(value)
        except ValueError:
            raise ValueError("must be a rate such as 1000/minute") from None
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        if value and not value.startswith(("redis://", "rediss://")):
            raise ValueError("must start with redis:// or rediss://")
        return value or None

    @field_validator("public_url")
    @classmethod
    def _absolute(cls, value: str | None) -> str | None:
        if value and not value.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return value or None


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'.'.join(str(p) for p in err['loc']).upper()}: {err['msg']}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid configuration: {problems}") from None
