"""Accounts and environments: the tenancy boundary every query carries.

An account has two environments. Internally they are ``sandbox`` and ``live``; on the wire Paddle
calls them ``sandbox`` and ``production``. Credentials carry theirs in a prefix (``pdl_sdbx_`` /
``pdl_live_`` for API keys, ``test_`` / ``live_`` for client tokens), so nothing crosses.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Environment(StrEnum):
    SANDBOX = "sandbox"
    LIVE = "live"

    @property
    def wire(self) -> str:
        """Paddle's word for it in API responses."""
        return "sandbox" if self is Environment.SANDBOX else "production"

    @property
    def key_marker(self) -> str:
        """The environment part of an API key: ``pdl_<marker>_apikey_…``."""
        return "sdbx" if self is Environment.SANDBOX else "live"

    @property
    def client_token_prefix(self) -> str:
        return "test" if self is Environment.SANDBOX else "live"

    @classmethod
    def parse(cls, value: str) -> Environment | None:
        """Accepts the CLI words (``sandbox``/``live``) and the wire word ``production``."""
        value = value.strip().lower()
        if value == "production":
            return cls.LIVE
        return cls._value2member_map_.get(value)  # type: ignore[return-value]


@dataclass(frozen=True, slots=True, kw_only=True)
class Account:
    id: str
    name: str
    created_at: datetime
