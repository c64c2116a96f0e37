"""``keyhouse webhooks``: destinations and notifications at the command line, for scripts and CI
(the --json contract of ``keyhouse.cli``), on both stores."""

from __future__ import annotations

import re

from tests.test_cli import Cli, cli, fails, invoke, succeeds

__all__ = ["cli"]  # the fixture, re-exported for pytest

SECRET = re.compile(r"pdl_ntfset_[a-zA-Z0-9]{26}_[a-zA-Z0-9]{32}")
HOOK = "http://127.0.0.1:9/hooks"


def create(account: str, *extra: str, env: str = "sandbox", url: str = HOOK) -> dict[str, object]:
    return succeeds(
        "webhooks", "create", "--account", account, "--env", env, "--url", url,
        "--event", "client_token.created", "--event", "client_token.revoked", *extra,
    )  # fmt: skip


def test_create_prints_the_destination_with_its_signing_secret_and_list_shows_it(cli: Cli) -> None:
    account = cli.account()
    created = create(account, "--description", "CI receiver")
    assert str(created["id"]).startswith("ntfset_")
    assert SECRET.fullmatch(str(created["endpoint_secret_key"]))
    assert created["destination"] == HOOK
    assert created["description"] == "CI receiver"
    assert [e["name"] for e in created["subscribed_events"]] == [  # type: ignore[attr-defined]
        "client_token.created",
        "client_token.revoked",
    ]
    listed = succeeds("webhooks", "list", "--account", account, "--env", "sandbox")["data"]
    assert [s["id"] for s in listed] == [created["id"]]
    assert succeeds("webhooks", "list", "--account", account, "--env", "live") == {"data": []}


def test_a_token_created_at_the_cli_is_queued_for_the_destination(cli: Cli) -> None:
    account = cli.account()
    setting = create(account)
    token = succeeds(
        "client-tokens", "create", "--account", account, "--env", "sandbox", "--name", "Checkout"
    )
    [notification] = succeeds("webhooks", "notifications", "--account", account, "--env", "sandbox")["data"]
    assert notification["type"] == "client_token.created"
    assert notification["status"] == "not_attempted"
    assert notification["notification_setting_id"] == setting["id"]
    assert notification["payload"]["data"]["id"] == token["id"]


def test_live_refuses_a_local_destination_and_an_unknown_event_is_refused(cli: Cli) -> None:
    account = cli.account()
    error = fails(
        "webhooks", "create", "--account", account, "--env", "live", "--url", HOOK,
        "--event", "client_token.created", code="url_notification_setting_incorrect",
    )  # fmt: skip
    assert error["errors"][0]["field"] == "destination"
    error = fails(
        "webhooks", "create", "--account", account, "--env", "sandbox", "--url", HOOK,
        "--event", "transaction.completed", code="invalid_field",
    )  # fmt: skip
    assert "transaction.completed" in error["errors"][0]["message"]


def test_delete_removes_the_destination_and_an_unknown_one_is_not_found(cli: Cli) -> None:
    account = cli.account()
    setting = create(account)
    assert succeeds("webhooks", "delete", str(setting["id"]), "--account", account, "--env", "sandbox") == {
        "id": setting["id"],
        "deleted": True,
    }
    assert succeeds("webhooks", "list", "--account", account, "--env", "sandbox") == {"data": []}
    fails(
        "webhooks", "delete", str(setting["id"]), "--account", account, "--env", "sandbox", code="not_found"
    )


def test_without_json_the_destination_is_printed_for_people(cli: Cli) -> None:
    account = cli.account()
    result = invoke(
        "webhooks", "create", "--account", account, "--env", "sandbox", "--url", HOOK,
        "--event", "api_key.revoked",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert SECRET.search(result.stdout)
