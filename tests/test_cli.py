"""The operator CLI and its contract (``keyhouse.cli`` docstring), on both stores, through ``CliRunner``.

Success: exit 0 and exactly one JSON object on stdout under ``--json``. Failure: exit 1, Paddle's
``{"error": ...}`` on stdout under ``--json`` and the message on stderr. Usage errors: exit 2.
A newly issued secret appears once, in ``key``; afterwards only the obfuscated form is shown.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import stat
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from click.testing import Result
from typer.testing import CliRunner

from keyhouse import services
from keyhouse.cli import app
from keyhouse.domain import credentials
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.errors import InvalidToken
from keyhouse.domain.permissions import Permission, sorted_names
from keyhouse.store.sqlite import SqliteStore
from tests.conftest import TEST_PEPPER

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from keyhouse.store.sql import SqlStore
    from tests.conftest import TestDatabase

FULL_KEY = re.compile(r"pdl_(sdbx|live)_apikey_([a-z0-9]{26})_[A-Za-z0-9]{22}_[A-Za-z0-9]{3}")
ACCOUNT_ID = re.compile(r"acc_[a-z0-9]{26}")
UNREACHABLE_POSTGRES = "postgresql://keyhouse@127.0.0.1:1/keyhouse"


def clear_keyhouse_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("KEYHOUSE_"):
            monkeypatch.delenv(name)


def invoke(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(app, list(args), input=input)


def succeeds(*args: str, input: str | None = None) -> dict[str, Any]:
    """``keyhouse ARGS --json``: exit 0 and the whole of stdout is one JSON object."""
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def fails(*args: str, code: str, input: str | None = None) -> dict[str, Any]:
    """``keyhouse ARGS --json``: exit 1, the Paddle error on stdout, its message on stderr."""
    result = invoke(*args, "--json", input=input)
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    payload = json.loads(result.stdout)
    error: dict[str, Any] = payload["error"]
    assert error["code"] == code
    assert {"type", "detail", "documentation_url"} <= error.keys()
    assert payload["meta"]["request_id"]
    assert error["detail"] in result.stderr
    for field_error in error.get("errors", []):
        assert field_error["message"] in result.stderr
    return error


@dataclass
class Cli:
    """The CLI pointed at a test database, and a way to check a key the way servers do."""

    database: TestDatabase

    def account(self, name: str = "Alice's shop") -> str:
        account_id: str = succeeds("accounts", "create", "--name", name)["id"]
        return account_id

    def key(self, account: str, *options: str, env: str = "sandbox") -> dict[str, Any]:
        options = options or ("--permission", "product.read")
        return succeeds("keys", "create", "--account", account, "--env", env, "--name", "CRM", *options)

    def verifies(self, key: str, pepper: str = TEST_PEPPER) -> bool:
        return asyncio.run(verifies(self.database.open(), key, pepper))


async def verifies(store: SqlStore, key: str, pepper: str) -> bool:
    """Would a server with this pepper accept ``key``?"""
    deps = services.Deps(store=store, peppers=services.Peppers(Pepper(pepper.encode())))
    try:
        await services.Authenticator(deps).authenticate(key)
    except InvalidToken:
        return False
    finally:
        await store.close()
    return True


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database: TestDatabase, store: SqlStore) -> Cli:
    """The CLI on the test's (emptied) database with the test pepper."""
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", database.url)
    monkeypatch.setenv("KEYHOUSE_PEPPER", TEST_PEPPER)
    return Cli(database)


# --- db and accounts ------------------------------------------------------------------------------


def test_db_upgrade_prints_ok_and_can_run_again(cli: Cli) -> None:
    assert succeeds("db", "upgrade") == {"ok": True}
    assert succeeds("db", "upgrade") == {"ok": True}


def test_accounts_create_prints_the_new_account_and_accounts_list_shows_every_account(cli: Cli) -> None:
    alice = succeeds("accounts", "create", "--name", "Alice's shop")
    charlie = succeeds("accounts", "create", "--name", "Charlie's shop")
    assert ACCOUNT_ID.fullmatch(alice["id"])
    assert alice["name"] == "Alice's shop"
    assert alice["created_at"].endswith("Z")
    listed = succeeds("accounts", "list")
    assert listed.keys() == {"data"}
    assert sorted(a["id"] for a in listed["data"]) == sorted([alice["id"], charlie["id"]])


def test_accounts_create_refuses_a_blank_name_with_invalid_field(cli: Cli) -> None:
    error = fails("accounts", "create", "--name", "   ", code="invalid_field")
    assert error["errors"][0]["field"] == "name"
    assert succeeds("accounts", "list") == {"data": []}


# --- keys create ----------------------------------------------------------------------------------


def test_keys_create_prints_the_full_key_once_with_the_permissions_given(cli: Cli) -> None:
    account = cli.account()
    created = cli.key(
        account, "--permission", "product.read", "--permission", "customer.write", "--description", "ours"
    )
    match = FULL_KEY.fullmatch(created["key"])
    assert match is not None
    assert created["id"] == f"apikey_{match.group(2)}"
    assert created["permissions"] == ["customer.write", "product.read"]
    assert (created["account_id"], created["environment"]) == (account, "sandbox")
    assert (created["status"], created["description"], created["expires_at"]) == ("active", "ours", None)
    assert cli.verifies(created["key"])

    shown = invoke("keys", "show", created["id"], "--json")
    assert created["key"] not in shown.stdout
    assert json.loads(shown.stdout)["key"] == created["key"][: len("pdl_sdbx_apikey_") + 10] + "****"


def test_a_live_key_has_the_live_prefix_and_production_on_the_wire(cli: Cli) -> None:
    created = cli.key(cli.account(), env="live")
    assert created["key"].startswith("pdl_live_apikey_")
    assert created["environment"] == "production"
    assert cli.verifies(created["key"])


def test_all_permissions_is_a_snapshot_of_the_whole_catalogue(cli: Cli) -> None:
    created = cli.key(cli.account(), "--all-permissions")
    assert created["permissions"] == sorted_names(Permission)
    assert succeeds("keys", "show", created["id"])["permissions"] == sorted_names(Permission)


def test_an_unknown_permission_is_invalid_field_on_stdout_and_a_message_on_stderr(cli: Cli) -> None:
    account = cli.account()
    scope = ("keys", "create", "--account", account, "--env", "sandbox", "--name", "CRM")
    error = fails(*scope, "--permission", "product.read", "--permission", "product.fly", code="invalid_field")
    assert error["errors"][0]["field"] == "permissions"
    assert "product.fly" in error["errors"][0]["message"]

    human = invoke(*scope, "--permission", "product.fly")
    assert (human.exit_code, human.stdout) == (1, "")
    assert "product.fly" in human.stderr
    assert succeeds("keys", "list", "--account", account, "--env", "sandbox") == {"data": []}


def test_a_key_without_any_permission_is_invalid_field(cli: Cli) -> None:
    account = cli.account()
    fails("keys", "create", "--account", account, "--env", "sandbox", "--name", "CRM", code="invalid_field")


@pytest.mark.parametrize(
    "bad",
    [
        ["--env", "staging"],
        ["--expires-at", "next tuesday"],
        ["--expires-at", "2030-01-01T00:00:00"],  # no zone
    ],
    ids=["env-staging", "expires-garbage", "expires-without-zone"],
)
def test_a_bad_env_or_expiry_is_a_usage_error_with_exit_code_2(cli: Cli, bad: list[str]) -> None:
    account = cli.account()
    options = {"--env": "sandbox", "--expires-at": "2030-01-01T00:00:00Z"} | {bad[0]: bad[1]}
    result = invoke(
        "keys", "create", "--account", account, "--name", "CRM", "--permission", "product.read",
        *(part for pair in options.items() for part in pair), "--json",
    )  # fmt: skip
    assert result.exit_code == 2, (result.stdout, result.stderr)
    assert result.stdout == ""
    assert bad[0] in result.stderr


def test_an_expiry_is_kept_and_one_in_the_past_is_invalid_field(cli: Cli) -> None:
    account = cli.account()
    created = cli.key(account, "--permission", "product.read", "--expires-at", "2999-01-01T00:00:00+02:00")
    assert datetime.fromisoformat(created["expires_at"]) == datetime(2998, 12, 31, 22, tzinfo=UTC)
    error = fails(
        "keys", "create", "--account", account, "--env", "sandbox", "--name", "CRM",
        "--permission", "product.read", "--expires-at", "2001-01-01T00:00:00Z", code="invalid_field",
    )  # fmt: skip
    assert error["errors"][0]["field"] == "expires_at"


def test_a_key_for_an_unknown_account_is_not_found(cli: Cli) -> None:
    fails(
        "keys", "create", "--account", "acc_" + "0" * 26, "--env", "sandbox", "--name", "CRM",
        "--permission", "product.read", code="not_found",
    )  # fmt: skip


# --- keys list, show, revoke ----------------------------------------------------------------------


def test_keys_list_shows_one_accounts_keys_in_one_environment_and_never_their_secrets(cli: Cli) -> None:
    alice, charlie = cli.account(), cli.account("Charlie's shop")
    mine = [cli.key(alice), cli.key(alice, "--all-permissions")]
    cli.key(alice, env="live")
    cli.key(charlie)
    result = invoke("keys", "list", "--account", alice, "--env", "sandbox", "--json")
    assert result.exit_code == 0
    listed = json.loads(result.stdout)
    assert [k["id"] for k in listed["data"]] == sorted(k["id"] for k in mine)
    assert all(k["key"].endswith("****") and k["account_id"] == alice for k in listed["data"])
    assert not any(k["key"] in result.stdout for k in mine)


def test_keys_list_for_an_unknown_account_is_not_found(cli: Cli) -> None:
    fails("keys", "list", "--account", "acc_" + "0" * 26, "--env", "live", code="not_found")


@pytest.mark.parametrize("command", ["show", "revoke"])
def test_keys_show_and_revoke_of_an_unknown_key_are_not_found(cli: Cli, command: str) -> None:
    fails("keys", command, "apikey_" + "0" * 26, code="not_found")


def test_keys_revoke_revokes_for_good_and_says_so_again_when_repeated(cli: Cli) -> None:
    created = cli.key(cli.account())
    revoked = succeeds("keys", "revoke", created["id"])
    assert (revoked["id"], revoked["status"]) == (created["id"], "revoked")
    assert revoked["key"].endswith("****")
    assert succeeds("keys", "show", created["id"])["status"] == "revoked"
    assert not cli.verifies(created["key"])
    assert succeeds("keys", "revoke", created["id"])["status"] == "revoked"


# --- legacy keys ----------------------------------------------------------------------------------


def test_import_legacy_reads_the_secret_on_stdin_and_never_prints_it(cli: Cli) -> None:
    account = cli.account()
    secret = credentials.new_legacy_key()
    scope = ("keys", "import-legacy", "--account", account, "--env", "sandbox")
    result = invoke(*scope, "--json", input=secret + "\n")
    assert result.exit_code == 0, result.stderr
    imported = json.loads(result.stdout)
    assert secret not in result.stdout + result.stderr
    assert imported["permissions"] is None
    assert imported["key"] == imported["id"][: len("apikey_") + 10] + "****"  # no pdl_ prefix
    assert cli.verifies(secret)

    error = fails(*scope, input=secret + "\n", code="invalid_field")
    assert error["errors"][0]["field"] == "key"
    assert len(succeeds("keys", "list", "--account", account, "--env", "sandbox")["data"]) == 1


def test_import_legacy_generate_prints_the_new_key_once(cli: Cli) -> None:
    generated = succeeds("keys", "import-legacy", "--account", cli.account(), "--env", "live", "--generate")
    assert re.fullmatch(r"[A-Za-z0-9]{50}", generated["key"])
    assert (generated["permissions"], generated["environment"]) == (None, "production")
    assert cli.verifies(generated["key"])
    assert succeeds("keys", "show", generated["id"])["key"].endswith("****")


@pytest.mark.parametrize("stdin", ["", "\n", "tooshort\n", "x" * 49 + "!\n"])
def test_import_legacy_refuses_a_missing_or_malformed_secret(cli: Cli, stdin: str) -> None:
    account = cli.account()
    fails(
        "keys", "import-legacy", "--account", account, "--env", "sandbox", input=stdin, code="invalid_field"
    )


def test_import_legacy_into_an_unknown_account_is_not_found(cli: Cli) -> None:
    fails(
        "keys", "import-legacy", "--account", "acc_" + "0" * 26, "--env", "sandbox", "--generate",
        code="not_found",
    )  # fmt: skip


# --- seed -----------------------------------------------------------------------------------------


def revealed(payload: dict[str, Any]) -> list[str]:
    """Every full API key anywhere in a CLI payload."""
    return [match.group(0) for match in FULL_KEY.finditer(json.dumps(payload))]


def test_seed_is_idempotent_and_prints_a_key_only_when_it_makes_one(cli: Cli) -> None:
    first = succeeds("seed")
    assert first["api_key"]["key"] in revealed(first)
    assert first["api_key"]["permissions"] == sorted_names(Permission)
    assert cli.verifies(first["api_key"]["key"])

    again = succeeds("seed")
    assert again["account"]["id"] == first["account"]["id"]
    assert again["api_key"]["id"] == first["api_key"]["id"]
    assert revealed(again) == []

    renewed = succeeds("seed", "--new-key")
    assert renewed["account"]["id"] == first["account"]["id"]
    assert renewed["api_key"]["id"] != first["api_key"]["id"]
    assert renewed["api_key"]["key"] in revealed(renewed)
    assert cli.verifies(renewed["api_key"]["key"])
    assert len(succeeds("accounts", "list")["data"]) == 1


def test_without_json_keys_create_prints_only_the_key_on_stdout(cli: Cli) -> None:
    account = cli.account()
    result = invoke(
        "keys",
        "create",
        "--account",
        account,
        "--env",
        "sandbox",
        "--name",
        "CRM",
        "--permission",
        "product.read",
    )
    assert result.exit_code == 0
    assert FULL_KEY.fullmatch(result.stdout.strip())
    assert "shown only once" in result.stderr


# --- the contract, command by command --------------------------------------------------------------

COMMANDS = [
    ["db", "upgrade"],
    ["accounts", "create"],
    ["accounts", "list"],
    ["keys", "create"],
    ["keys", "list"],
    ["keys", "show"],
    ["keys", "revoke"],
    ["keys", "import-legacy"],
    ["seed"],
    ["serve"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c))
def test_every_command_accepts_json(command: list[str]) -> None:
    result = invoke(*command, "--help")
    assert result.exit_code == 0
    assert "--json" in result.stdout


# --- the pepper -----------------------------------------------------------------------------------


def test_with_sqlite_and_no_pepper_db_upgrade_makes_a_0600_pepper_file_that_later_commands_use(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    database = tmp_path / "keyhouse.sqlite3"
    pepper_file = Path(f"{database}.pepper")
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", f"sqlite:///{database}")

    before = invoke("accounts", "list")
    assert before.exit_code == 1
    assert "KEYHOUSE_PEPPER" in before.stderr

    assert succeeds("db", "upgrade") == {"ok": True}
    assert stat.S_IMODE(pepper_file.stat().st_mode) == 0o600
    pepper = pepper_file.read_text().strip()
    assert len(pepper) >= 32
    assert succeeds("db", "upgrade") == {"ok": True}
    assert pepper_file.read_text().strip() == pepper

    account = succeeds("accounts", "create", "--name", "Alice's shop")["id"]
    created = succeeds(
        "keys",
        "create",
        "--account",
        account,
        "--env",
        "sandbox",
        "--name",
        "CRM",
        "--permission",
        "product.read",
    )

    async def check(with_pepper: str) -> bool:
        return await verifies(SqliteStore(str(database)), created["key"], with_pepper)

    assert asyncio.run(check(pepper))
    assert not asyncio.run(check(TEST_PEPPER))


@pytest.mark.parametrize(
    "command",
    [
        ["accounts", "list"],
        ["keys", "list", "--account", "acc_" + "0" * 26, "--env", "sandbox"],
        ["seed"],
        ["db", "upgrade"],
    ],
    ids=lambda c: " ".join(c[:2]),
)
def test_with_postgresql_and_no_pepper_commands_fail_naming_keyhouse_pepper(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    """Checked before any connection: the database here does not even exist."""
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", UNREACHABLE_POSTGRES)
    result = invoke(*command, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    assert "KEYHOUSE_PEPPER" in result.stderr
    assert "KEYHOUSE_PEPPER" in json.loads(result.stdout)["error"]["detail"]


@pytest.mark.slow
def test_with_postgresql_and_no_pepper_serve_refuses_to_start_naming_keyhouse_pepper() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env["KEYHOUSE_DATABASE_URL"] = UNREACHABLE_POSTGRES
    keyhouse = str(Path(sys.executable).with_name("keyhouse"))
    done = subprocess.run(
        [keyhouse, "serve", "--port", "1"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1
    assert "KEYHOUSE_PEPPER" in done.stderr


def test_an_unreachable_database_fails_with_the_error_envelope_not_a_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", UNREACHABLE_POSTGRES)
    monkeypatch.setenv("KEYHOUSE_PEPPER", TEST_PEPPER)
    result = invoke("accounts", "list", "--json")
    assert result.exit_code == 1
    assert json.loads(result.stdout)["error"]["code"] == "service_unavailable"
