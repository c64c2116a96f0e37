"""The operator and merchant CLI of the client-side tokens issue, and its switches reaching a running server.

``integrations``, ``installations``, ``features`` and ``client-tokens`` run in-process through
``CliRunner`` on both stores, held to the CLI contract (``keyhouse.cli`` docstring): under ``--json``
a success is exit 0 and exactly one JSON object on stdout, a failure exit 1 with Paddle's error on
stdout and the message on stderr, a usage error exit 2; warnings go to stderr only.

The served test runs the real ``keyhouse serve`` and the CLI as separate processes: an operator's
switch must reach the running server within about a second, with no restart.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import httpx
import pytest
from click.testing import Result
from typer.testing import CliRunner

from keyhouse import services
from keyhouse.cli import app
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.integrations import EARLY_ACCESS_DETAIL, Availability, Feature
from keyhouse.domain.permissions import Permission
from keyhouse.services import client_tokens as token_services
from keyhouse.services import integrations
from keyhouse.services.client_tokens import TokenScope
from tests.conftest import TEST_PEPPER

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from keyhouse.store.sql import SqlStore
    from tests.conftest import TestDatabase
    from tests.servers import Keyhouse

pytest_plugins = ["tests.servers"]

T = TypeVar("T")
FULL_KEY = re.compile(r"pdl_sdbx_apikey_[a-z0-9]{26}_[A-Za-z0-9]{22}_[A-Za-z0-9]{3}")
WRITE_WARNING = (
    "warning: client_token.write lets this key create and revoke client-side tokens. Grant it only "
    "when the integration's documentation requires it."
)


def operator() -> str:
    """The actor the CLI records for this process's user."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"


def made_at_the_cli(created_by: str) -> bool:
    """``cli:<user>``. (Today the CLI records ``cli:cli:<user>``: its actor string already says "cli:".)"""
    user = operator().removeprefix("cli:")
    return re.fullmatch(rf"cli:(cli:)?{re.escape(user)}", created_by) is not None


# --- the CLI in this process ----------------------------------------------------------------------


def invoke(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


def succeeds(*args: str) -> dict[str, Any]:
    """``keyhouse ARGS --json``: exit 0 and the whole of stdout is one JSON object."""
    result = invoke(*args, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert result.stdout.count("\n") == 1, result.stdout  # one object, one line
    payload = json.loads(result.stdout)
    assert isinstance(payload, dict)
    return payload


def fails(*args: str, code: str) -> dict[str, Any]:
    """``keyhouse ARGS --json``: exit 1, Paddle's error on stdout, its message on stderr."""
    result = invoke(*args, "--json")
    assert result.exit_code == 1, (result.stdout, result.stderr, result.exception)
    payload = json.loads(result.stdout)
    error: dict[str, Any] = payload["error"]
    assert error["code"] == code, error
    assert {"type", "detail", "documentation_url"} <= error.keys()
    assert payload["meta"]["request_id"]
    assert error["detail"] in result.stderr
    return error


def usage_error(*args: str) -> Result:
    result = invoke(*args, "--json")
    assert result.exit_code == 2, (result.stdout, result.stderr, result.exception)
    assert result.stdout == ""
    return result


@dataclass
class Cli:
    """The CLI pointed at a test database (emptied for the test), plus in-process helpers."""

    database: TestDatabase

    def run(self, work: Callable[[services.Deps], Awaitable[T]]) -> T:
        """Run a use case on a fresh store, as another process would."""

        async def main() -> T:
            store = self.database.open()
            await store.start()
            try:
                deps = services.Deps(store=store, peppers=services.Peppers(Pepper(TEST_PEPPER.encode())))
                return await work(deps)
            finally:
                await store.close()

        return asyncio.run(main())

    def account(self) -> str:
        account_id: str = succeeds("accounts", "create", "--name", "Alice's shop")["id"]
        return account_id

    def integration(self, name: str = "Bob's paywalls", *, early_access: bool = True) -> str:
        flags = ["--early-access"] if early_access else []
        integration_id: str = succeeds("integrations", "register", "--name", name, *flags)["id"]
        return integration_id

    def install(
        self, account: str, integration: str, *permissions: str, env: str = "sandbox"
    ) -> dict[str, Any]:
        options = [arg for p in permissions or ("client_token.read",) for arg in ("--permission", p)]
        return succeeds(
            "integrations",
            "install",
            "--account",
            account,
            "--env",
            env,
            "--integration",
            integration,
            *options,
        )


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch, database: TestDatabase, store: SqlStore) -> Cli:
    """The CLI on the test's (emptied) database with the test pepper."""
    for name in list(os.environ):
        if name.startswith("KEYHOUSE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("KEYHOUSE_DATABASE_URL", database.url)
    monkeypatch.setenv("KEYHOUSE_PEPPER", TEST_PEPPER)
    return Cli(database)


# --- integrations ---------------------------------------------------------------------------------


def test_integrations_register_prints_the_integration_and_list_shows_who_allow_listed_it(cli: Cli) -> None:
    bob = succeeds("integrations", "register", "--name", "Bob's paywalls", "--early-access")
    dave = succeeds("integrations", "register", "--name", "Dave's analytics")
    assert re.fullmatch(r"itg_[a-z0-9]{26}", bob["id"])
    assert (bob["name"], bob["early_access"]) == ("Bob's paywalls", True)
    assert (dave["name"], dave["early_access"]) == ("Dave's analytics", False)

    listed = {i["id"]: i for i in succeeds("integrations", "list")["data"]}
    assert listed.keys() == {bob["id"], dave["id"]}
    [registered] = listed[bob["id"]]["history"]
    assert registered["actor"] == operator()
    assert (registered["field"], registered["from"], registered["to"]) == ("early_access", None, "true")
    assert registered["subject"] == f"integration:{bob['id']}"
    assert registered["at"] == bob["created_at"]
    assert listed[dave["id"]]["history"][0]["to"] == "false"


def test_integrations_update_flips_the_allow_list_and_records_from_and_to(cli: Cli) -> None:
    bob = cli.integration()
    updated = succeeds("integrations", "update", bob, "--no-early-access")
    assert updated["early_access"] is False
    assert succeeds("integrations", "update", bob, "--no-early-access")["early_access"] is False  # no change
    assert succeeds("integrations", "update", bob, "--early-access")["early_access"] is True

    [listed] = succeeds("integrations", "list")["data"]
    changes = [(h["from"], h["to"], h["actor"]) for h in listed["history"]]
    assert changes == [
        (None, "true", operator()),
        ("true", "false", operator()),
        ("false", "true", operator()),
    ]


def test_integrations_register_and_update_refuse_bad_input(cli: Cli) -> None:
    for name in ("", "   ", "n" * 151):
        assert "name" in {
            e["field"]
            for e in fails("integrations", "register", "--name", name, code="invalid_field")["errors"]
        }
    fails("integrations", "update", "itg_01hzx3k9q8w7v6t5r4p3n2m1ab", "--early-access", code="not_found")
    usage_error("integrations", "update", cli.integration())  # --early-access/--no-early-access is required


# --- install, installations, uninstall ------------------------------------------------------------


def test_install_prints_the_installation_and_its_key_once_and_warns_about_client_token_write(
    cli: Cli,
) -> None:
    account, bob = cli.account(), cli.integration()
    result = invoke(
        "integrations", "install", "--account", account, "--env", "sandbox", "--integration", bob,
        "--permission", "client_token.read", "--permission", "client_token.write", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, (result.stdout, result.stderr)
    payload = json.loads(result.stdout)
    assert payload.keys() == {"installation", "api_key"}
    installation, key = payload["installation"], payload["api_key"]
    assert re.fullmatch(r"inst_[a-z0-9]{26}", installation["id"])
    assert (installation["integration_id"], installation["account_id"]) == (bob, account)
    assert (installation["status"], installation["uninstalled_at"]) == ("active", None)
    assert FULL_KEY.fullmatch(key["key"])
    assert key["key"].startswith(f"pdl_sdbx_{key['id']}_")
    assert key["permissions"] == ["client_token.read", "client_token.write"]
    assert WRITE_WARNING in result.stderr
    assert "warning" not in result.stdout

    # The key is shown once: listing the account's keys never shows the secret again.
    listed = succeeds("keys", "list", "--account", account, "--env", "sandbox")["data"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert key["key"] not in json.dumps(listed)


def test_granting_only_client_token_read_prints_no_warning(cli: Cli) -> None:
    account, bob = cli.account(), cli.integration()
    result = invoke(
        "integrations", "install", "--account", account, "--env", "live", "--integration", bob,
        "--permission", "client_token.read", "--json",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    assert json.loads(result.stdout)["api_key"]["key"].startswith("pdl_live_apikey_")


def test_install_refuses_unknown_accounts_integrations_and_permissions(cli: Cli) -> None:
    account, bob = cli.account(), cli.integration()
    unknown_account = "acc_01hzx3k9q8w7v6t5r4p3n2m1ab"
    unknown_integration = "itg_01hzx3k9q8w7v6t5r4p3n2m1ab"
    for args, code in [
        (["--account", unknown_account, "--env", "sandbox", "--integration", bob], "not_found"),
        (["--account", account, "--env", "sandbox", "--integration", unknown_integration], "not_found"),
        (
            [
                "--account",
                account,
                "--env",
                "sandbox",
                "--integration",
                bob,
                "--permission",
                "client_token.delete",
            ],
            "invalid_field",
        ),
    ]:
        fails("integrations", "install", *args, "--permission", "client_token.read", code=code)
    usage_error("integrations", "install", "--account", account, "--env", "staging", "--integration", bob)
    assert succeeds("installations", "list", "--account", account)["data"] == []


def test_installations_list_and_uninstall(cli: Cli) -> None:
    account, bob = cli.account(), cli.integration()
    first = cli.install(account, bob)["installation"]
    second = cli.install(account, bob, env="live")["installation"]
    other_account = cli.account()
    cli.install(other_account, bob)

    listed = succeeds("installations", "list", "--account", account)["data"]
    assert sorted(i["id"] for i in listed) == sorted([first["id"], second["id"]])
    assert {i["environment"] for i in listed} == {"sandbox", "production"}

    gone = succeeds("integrations", "uninstall", first["id"])
    assert gone["status"] == "uninstalled"
    assert gone["uninstalled_at"] is not None
    statuses = {i["id"]: i["status"] for i in succeeds("installations", "list", "--account", account)["data"]}
    assert statuses == {first["id"]: "uninstalled", second["id"]: "active"}
    fails("integrations", "uninstall", first["id"], code="conflict")
    fails("integrations", "uninstall", "inst_01hzx3k9q8w7v6t5r4p3n2m1ab", code="not_found")
    fails("installations", "list", "--account", "acc_01hzx3k9q8w7v6t5r4p3n2m1ab", code="not_found")


def test_uninstall_revokes_the_installations_key_and_its_tokens(cli: Cli) -> None:
    account, bob = cli.account(), cli.integration()
    installed = cli.install(account, bob, "client_token.write")
    installation_id, key_id = installed["installation"]["id"], installed["api_key"]["id"]
    scope = TokenScope(account, Environment.SANDBOX, installation_id)
    creator = Creator(CreatorKind.INSTALLATION, installation_id)
    token = cli.run(
        lambda deps: token_services.create_token(
            deps, scope, name="Paywall", description=None, created_by=creator
        )
    )
    merchants = succeeds(
        "client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Mine"
    )

    succeeds("integrations", "uninstall", installation_id)

    assert succeeds("keys", "show", key_id)["status"] == "revoked"
    listed = {
        t["id"]: t
        for t in succeeds("client-tokens", "list", "--account", account, "--env", "sandbox")["data"]
    }
    assert listed[token.id]["status"] == "revoked"
    assert listed[merchants["id"]]["status"] == "active"


# --- features -------------------------------------------------------------------------------------


def test_features_show_starts_in_early_access_with_no_history(cli: Cli) -> None:
    assert succeeds("features", "show") == {
        "data": [{"feature": "client-tokens-api", "availability": "early-access", "history": []}]
    }


def test_features_set_switches_and_records_who_when_from_and_to(cli: Cli) -> None:
    shown = succeeds("features", "set", "client-tokens-api", "general-availability")
    [feature] = shown["data"]
    assert feature["availability"] == "general-availability"
    [change] = feature["history"]
    assert (change["from"], change["to"], change["actor"]) == (
        "early-access",
        "general-availability",
        operator(),
    )
    assert change["subject"] == "feature:client-tokens-api"
    assert change["at"]

    again = succeeds("features", "set", "client-tokens-api", "general-availability")
    assert again == shown  # setting the current state changes nothing and records nothing
    back = succeeds("features", "set", "client-tokens-api", "early-access")["data"][0]
    assert back["availability"] == "early-access"
    assert [(h["from"], h["to"]) for h in back["history"]] == [
        ("early-access", "general-availability"),
        ("general-availability", "early-access"),
    ]
    assert succeeds("features", "show")["data"][0] == back
    assert cli.run(lambda deps: integrations.feature_state(deps, Feature.CLIENT_TOKENS_API)) is (
        Availability.EARLY_ACCESS
    )


@pytest.mark.parametrize(
    "args",
    [["no-such-feature", "general-availability"], ["client-tokens-api", "ga"], ["client-tokens-api"]],
)
def test_features_set_refuses_unknown_features_and_states_as_usage_errors(cli: Cli, args: list[str]) -> None:
    usage_error("features", "set", *args)
    assert succeeds("features", "show")["data"][0]["history"] == []


# --- client-tokens, as the merchant ---------------------------------------------------------------


def test_client_tokens_create_makes_a_token_recorded_as_made_at_the_cli(cli: Cli) -> None:
    account = cli.account()
    token = succeeds(
        "client-tokens", "create", "--account", account, "--env", "sandbox",
        "--name", "Pricing page", "--description", "Checkout on /pricing",
    )  # fmt: skip
    assert re.fullmatch(r"ctkn_[a-z0-9]{26}", token["id"])
    assert re.fullmatch(r"test_[0-9a-f]{27}", token["token"])
    assert (token["name"], token["description"], token["status"]) == (
        "Pricing page",
        "Checkout on /pricing",
        "active",
    )
    assert made_at_the_cli(token["created_by"])
    live = succeeds("client-tokens", "create", "--account", account, "--env", "live", "--name", "Live")
    assert re.fullmatch(r"live_[0-9a-f]{27}", live["token"])


def test_client_tokens_list_shows_every_token_of_the_environment_and_who_created_it(cli: Cli) -> None:
    """Never gated: the feature is in early access and the merchant is not a partner."""
    account, bob = cli.account(), cli.integration()
    installation_id = cli.install(account, bob, "client_token.write")["installation"]["id"]
    merchant_key = succeeds(
        "keys",
        "create",
        "--account",
        account,
        "--env",
        "sandbox",
        "--name",
        "Shop",
        "--permission",
        "client_token.write",
    )["id"]
    by_bob = cli.run(
        lambda deps: token_services.create_token(
            deps,
            TokenScope(account, Environment.SANDBOX, installation_id),
            name="Paywall",
            description=None,
            created_by=Creator(CreatorKind.INSTALLATION, installation_id),
        )
    )
    by_key = cli.run(
        lambda deps: token_services.create_token(
            deps,
            TokenScope(account, Environment.SANDBOX),
            name="Storefront",
            description=None,
            created_by=Creator(CreatorKind.API_KEY, merchant_key),
        )
    )
    by_cli = succeeds("client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Mine")
    succeeds("client-tokens", "create", "--account", account, "--env", "live", "--name", "Elsewhere")

    listed = succeeds("client-tokens", "list", "--account", account, "--env", "sandbox")["data"]
    assert [t["id"] for t in listed] == [by_cli["id"], by_key.id, by_bob.id]  # newest first
    assert made_at_the_cli(listed[0]["created_by"])
    assert listed[1]["created_by"] == f"api_key:{merchant_key}"
    assert listed[2]["created_by"] == f"installation:{installation_id}"
    assert all(re.fullmatch(r"test_[0-9a-f]{27}", t["token"]) for t in listed)


def test_client_tokens_revoke_and_the_status_filter(cli: Cli) -> None:
    account = cli.account()
    kept = succeeds("client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Kept")
    gone = succeeds("client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Gone")
    revoked = succeeds("client-tokens", "revoke", gone["id"], "--account", account, "--env", "sandbox")
    assert revoked["status"] == "revoked"
    assert revoked["revoked_at"] is not None
    again = succeeds("client-tokens", "revoke", gone["id"], "--account", account, "--env", "sandbox")
    assert again == revoked

    def ids(status: str) -> list[str]:
        listed = succeeds(
            "client-tokens", "list", "--account", account, "--env", "sandbox", "--status", status
        )
        return [t["id"] for t in listed["data"]]

    assert ids("active") == [kept["id"]]
    assert ids("revoked") == [gone["id"]]
    assert ids("active,revoked") == [gone["id"], kept["id"]]
    usage_error("client-tokens", "list", "--account", account, "--env", "sandbox", "--status", "expired")


def test_client_tokens_refuse_unknown_tokens_accounts_and_bad_names(cli: Cli) -> None:
    account, other = cli.account(), cli.account()
    token = succeeds("client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Mine")
    for revoke_as in (["--account", other, "--env", "sandbox"], ["--account", account, "--env", "live"]):
        fails("client-tokens", "revoke", token["id"], *revoke_as, code="not_found")  # no leak across scopes
    fails(
        "client-tokens",
        "revoke",
        "ctkn_01hzx3k9q8w7v6t5r4p3n2m1ab",
        "--account",
        account,
        "--env",
        "sandbox",
        code="not_found",
    )
    unknown = "acc_01hzx3k9q8w7v6t5r4p3n2m1ab"
    fails(
        "client-tokens", "create", "--account", unknown, "--env", "sandbox", "--name", "x", code="not_found"
    )
    fails("client-tokens", "list", "--account", unknown, "--env", "sandbox", code="not_found")
    for name in ("", "n" * 151):
        err = fails(
            "client-tokens",
            "create",
            "--account",
            account,
            "--env",
            "sandbox",
            "--name",
            name,
            code="invalid_field",
        )
        assert [e["field"] for e in err["errors"]] == ["name"]
    usage_error("client-tokens", "create", "--account", account, "--env", "staging", "--name", "x")
    listed = succeeds("client-tokens", "list", "--account", account, "--env", "sandbox")["data"]
    assert [(t["id"], t["status"]) for t in listed] == [(token["id"], "active")]


# --- switches reach a running server --------------------------------------------------------------

SWITCH_DEADLINE = 1.5  # the gate caches for 1 s; the rest is slack for a loaded machine


def status_of(client: httpx.Client, auth: dict[str, str]) -> tuple[int, str | None]:
    response = client.get("/client-tokens", headers=auth)
    body = response.json()
    return response.status_code, body["error"]["detail"] if "error" in body else None


def seen_within(client: httpx.Client, auth: dict[str, str], expected: int, deadline: float) -> float:
    """Poll until ``GET /client-tokens`` answers ``expected``; the seconds it took."""
    started = time.monotonic()
    while True:
        status, detail = status_of(client, auth)
        elapsed = time.monotonic() - started
        if status == expected:
            return elapsed
        assert status == 200 or detail == EARLY_ACCESS_DETAIL, (status, detail)
        assert elapsed < deadline, f"still {status} after {elapsed:.2f}s"
        time.sleep(0.05)


async def install_bob(keyhouse: Keyhouse, account_id: str) -> tuple[str, str]:
    """Register an allow-listed integration and install it (in this process: the CLI has its own tests)."""
    deps = services.Deps(
        store=keyhouse.database.open(), peppers=services.Peppers(Pepper(TEST_PEPPER.encode()))
    )
    try:
        bob = await integrations.register_integration(deps, "Bob's paywalls", early_access=True, actor="test")
        _, _, plaintext = await integrations.install(
            deps,
            account_id=account_id,
            environment=Environment.SANDBOX,
            integration_id=bob.id,
            permissions=frozenset({Permission.CLIENT_TOKEN_READ}),
        )
    finally:
        await deps.store.close()
    return bob.id, plaintext


@pytest.mark.slow
def test_the_cli_switches_reach_a_running_server_within_a_second_with_no_restart(keyhouse: Keyhouse) -> None:
    alice = keyhouse.member()
    bob_id, bob_key = asyncio.run(install_bob(keyhouse, alice.account_id))
    bob_auth = {"Authorization": f"Bearer {bob_key}"}

    with keyhouse.server.client() as client:
        # A new installation of an allow-listed integration is let in once the server's cache turns over.
        seen_within(client, bob_auth, 200, SWITCH_DEADLINE)
        assert status_of(client, alice.auth) == (403, EARLY_ACCESS_DETAIL)

        keyhouse.cli_json("integrations", "update", bob_id, "--no-early-access")
        assert seen_within(client, bob_auth, 403, SWITCH_DEADLINE) < SWITCH_DEADLINE

        keyhouse.cli_json("features", "set", "client-tokens-api", "general-availability")
        assert seen_within(client, alice.auth, 200, SWITCH_DEADLINE) < SWITCH_DEADLINE
        assert status_of(client, bob_auth) == (200, None)  # off the allow-list, but GA opens it to all

        keyhouse.cli_json("features", "set", "client-tokens-api", "early-access")
        assert seen_within(client, alice.auth, 403, SWITCH_DEADLINE) < SWITCH_DEADLINE
        assert status_of(client, bob_auth) == (403, EARLY_ACCESS_DETAIL)
