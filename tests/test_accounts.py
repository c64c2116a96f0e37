"""Environments: sandbox and live inside keyhouse, ``sandbox``/``production`` on Paddle's wire."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

from keyhouse.domain.accounts import Account, Environment


def test_there_are_two_environments_sandbox_and_live() -> None:
    assert [e.value for e in Environment] == ["sandbox", "live"]


@pytest.mark.parametrize(
    ("environment", "wire", "key_marker", "client_token_prefix"),
    [(Environment.SANDBOX, "sandbox", "sdbx", "test"), (Environment.LIVE, "production", "live", "live")],
)
def test_each_environment_has_its_wire_word_key_marker_and_token_prefix(
    environment: Environment, wire: str, key_marker: str, client_token_prefix: str
) -> None:
    assert environment.wire == wire
    assert environment.key_marker == key_marker
    assert environment.client_token_prefix == client_token_prefix


@pytest.mark.parametrize(
    ("value", "environment"),
    [
        ("sandbox", Environment.SANDBOX),
        ("live", Environment.LIVE),
        ("production", Environment.LIVE),  # Paddle's wire word
        ("LIVE", Environment.LIVE),
        (" Sandbox ", Environment.SANDBOX),
        ("Production\n", Environment.LIVE),
    ],
)
def test_environment_parse_accepts_the_cli_words_and_the_wire_word(
    value: str, environment: Environment
) -> None:
    assert Environment.parse(value) is environment


@pytest.mark.parametrize(
    "value",
    ["", " ", "sdbx", "test", "prod", "develop", "sand box", "livee", "sandbox,live", "SANDBOX_"],
)
def test_environment_parse_refuses_anything_else(value: str) -> None:
    assert Environment.parse(value) is None


def test_an_account_is_a_frozen_value() -> None:
    account = Account(
        id="acc_01jkdpbhazdpn3wpcya45alice", name="Alice", created_at=datetime(2025, 1, 1, tzinfo=UTC)
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        account.name = "Mallory"  # type: ignore[misc]
