"""The operator CLI. Scripts depend on its contract, so it is stable:

* every command reads ``KEYHOUSE_DATABASE_URL`` and accepts ``--json``;
* success: exit 0 and exactly one JSON object on stdout (an entity as the API shows it, a list as
  ``{"data": [...]}``, or ``{"ok": true}``); a newly issued secret appears in full, once, in ``key``;
* failure: exit 1, the message on stderr and, under ``--json``, Paddle's ``{"error": ...}`` on stdout;
  usage errors exit 2. Warnings and progress go to stderr only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import getpass
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import DBAPIError

from keyhouse import bootstrap, services
from keyhouse.config import ConfigError, load_settings
from keyhouse.domain import client_tokens as domain_tokens
from keyhouse.domain import keys as domain_keys
from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind, TokenStatus
from keyhouse.domain.errors import InvalidField, KeyhouseError, ServiceUnavailable
from keyhouse.domain.integrations import (
    Availability,
    Feature,
    audit_json,
    installation_json,
    integration_json,
)
from keyhouse.domain.notifications import notification_json, setting_json
from keyhouse.domain.permissions import Permission
from keyhouse.domain.rotations import DEFAULT_GRACE_SECONDS, rotation_json
from keyhouse.domain.times import parse_rfc3339, rfc3339
from keyhouse.services import client_side
from keyhouse.services import client_tokens as token_services
from keyhouse.services import integrations as integration_services
from keyhouse.services import keys as key_services
from keyhouse.services import notifications as notification_services
from keyhouse.services import rotations as rotation_services
from keyhouse.services import usage as usage_services
from keyhouse.services.client_tokens import TokenScope
from keyhouse.store import NotificationFilter, PageRequest

T = TypeVar("T")

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="keyhouse: API keys and client-side tokens."
)
db_app = typer.Typer(no_args_is_help=True, help="Database schema.")
accounts_app = typer.Typer(no_args_is_help=True, help="Merchant accounts.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys (created by account owners, never via the API).")
app.add_typer(db_app, name="db")
app.add_typer(accounts_app, name="accounts")
app.add_typer(keys_app, name="keys")
integrations_app = typer.Typer(
    no_args_is_help=True, help="Partner integrations (operator) and installing them."
)
installations_app = typer.Typer(no_args_is_help=True, help="Integrations installed in an account.")
features_app = typer.Typer(no_args_is_help=True, help="Operator feature switches.")
tokens_app = typer.Typer(no_args_is_help=True, help="Client-side tokens, as the account owner (never gated).")
app.add_typer(integrations_app, name="integrations")
app.add_typer(installations_app, name="installations")
app.add_typer(features_app, name="features")
app.add_typer(tokens_app, name="client-tokens")
webhooks_app = typer.Typer(
    no_args_is_help=True, help="Webhook destinations (notification settings) and their notifications."
)
app.add_typer(webhooks_app, name="webhooks")

JsonOpt = Annotated[bool, typer.Option("--json", help="Print exactly one JSON object on stdout.")]
AccountOpt = Annotated[str, typer.Option("--account", help="Account id (acc_…).")]
EnvOpt = Annotated[str, typer.Option("--env", help="sandbox or live.")]


def _fail(error: KeyhouseError, as_json: bool) -> None:
    if as_json:
        print(json.dumps(error.envelope(str(uuid.uuid4()))))
    typer.echo(f"error: {error.detail}", err=True)
    for field_error in error.errors or []:
        typer.echo(f"  {field_error.field}: {field_error.message}", err=True)
    raise typer.Exit(1)


def run(as_json: bool, work: Callable[[services.Deps], Awaitable[T]], *, migrate: bool = False) -> T:
    """Run one use case with a started store, mapping every failure to the contract."""
    try:
        settings = load_settings()

        async def main() -> T:
            if migrate:
                await bootstrap.upgrade_database(settings)
            async with bootstrap.running(settings) as deps:
                return await work(deps)

        return asyncio.run(main())
    except ConfigError as exc:
        _fail(KeyhouseError(str(exc)), as_json)
    except KeyhouseError as exc:
        _fail(exc, as_json)
    except (OSError, DBAPIError) as exc:
        # The driver's text may quote the URL; the type is enough to tell what failed.
        _fail(
            ServiceUnavailable(
                f"The database is not reachable or not migrated ({type(exc).__name__}); "
                "check KEYHOUSE_DATABASE_URL and run `keyhouse db upgrade`."
            ),
            as_json,
        )
    raise AssertionError("unreachable")


def emit(payload: dict[str, Any], as_json: bool, human: str | None = None) -> None:
    if as_json:
        print(json.dumps(payload))
    else:
        typer.echo(human if human is not None else json.dumps(payload, indent=2))


def environment(value: str) -> Environment:
    parsed = Environment.parse(value)
    if parsed is None:
        raise typer.BadParameter("must be sandbox or live", param_hint="--env")
    return parsed


def account_json(account: Account) -> dict[str, Any]:
    return {"id": account.id, "name": account.name, "created_at": rfc3339(account.created_at)}


def operator() -> str:
    """The person at the command line, as far as the OS knows."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def actor() -> str:
    """Who made an operator change, for the audit log."""
    return f"cli:{operator()}"


def warn_about(granted: frozenset[Permission]) -> None:
    if Permission.CLIENT_TOKEN_WRITE in granted:
        typer.echo(
            "warning: client_token.write lets this key create and revoke client-side tokens. Grant it only "
            "when the integration's documentation requires it.",
            err=True,
        )


def key_json(key: domain_keys.ApiKey, now: datetime, plaintext: str | None = None) -> dict[str, Any]:
    wire = domain_keys.to_wire(key, now, plaintext=plaintext)
    data = {name: getattr(wire, name) for name in wire.__dataclass_fields__}
    data["account_id"] = key.account_id
    data["environment"] = key.environment.wire
    return data


# --- db -------------------------------------------------------------------------------------------


@db_app.command("upgrade")
def db_upgrade(as_json: JsonOpt = False) -> None:
    """Migrate the database to the newest schema (and create the SQLite pepper file once)."""

    async def noop(_deps: services.Deps) -> None:
        return None

    run(as_json, noop, migrate=True)
    emit({"ok": True}, as_json, "database is up to date")


# --- accounts -------------------------------------------------------------------------------------


@accounts_app.command("create")
def accounts_create(name: Annotated[str, typer.Option("--name")], as_json: JsonOpt = False) -> None:
    account = run(as_json, lambda deps: services.create_account(deps, name))
    emit(account_json(account), as_json)


@accounts_app.command("set-tax-rate")
def accounts_set_tax_rate(
    account: AccountOpt,
    env: EnvOpt,
    rate: Annotated[str, typer.Option("--rate", help="A decimal such as 0.2 for 20 %.")],
    as_json: JsonOpt = False,
) -> None:
    """The flat tax rate previews apply in one environment (keyhouse has no tax engine)."""
    environment_ = environment(env)
    applied = run(as_json, lambda deps: client_side.set_tax_rate(deps, account, environment_, rate))
    emit({"account_id": account, "environment": environment_.wire, "tax_rate": applied}, as_json)


@accounts_app.command("list")
def accounts_list(as_json: JsonOpt = False) -> None:
    accounts = run(as_json, services.list_accounts)
    emit({"data": [account_json(a) for a in accounts]}, as_json)


# --- keys -----------------------------------------------------------------------------------------


def _expiry(value: str | None) -> datetime | None:
    if value is None:
        return None
    parsed = parse_rfc3339(value)
    if parsed is None:
        raise typer.BadParameter("must be an ISO 8601 / RFC 3339 time with a zone", param_hint="--expires-at")
    return parsed


@keys_app.command("create")
def keys_create(
    account: AccountOpt,
    env: EnvOpt,
    name: Annotated[str, typer.Option("--name")],
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="Repeat for each permission.")
    ] = None,
    all_permissions: Annotated[
        bool, typer.Option("--all-permissions", help="Every permission that exists now.")
    ] = False,
    description: Annotated[str | None, typer.Option("--description")] = None,
    expires_at: Annotated[
        str | None, typer.Option("--expires-at", help="RFC 3339, e.g. 2027-01-01T00:00:00Z")
    ] = None,
    rotatable: Annotated[
        bool, typer.Option("--rotatable", help="The key may rotate its own secret (POST .../rotations).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. Its full secret is printed once and never again."""
    environment_ = environment(env)
    expiry = _expiry(expires_at)

    async def work(deps: services.Deps) -> dict[str, Any]:
        granted = services.resolve_permissions(permission or [], all_permissions=all_permissions)
        warn_about(granted)
        key, plaintext = await services.create_key(
            deps,
            account_id=account,
            environment=environment_,
            name=name,
            description=description,
            permissions=granted,
            expires_at=expiry,
            rotatable=rotatable,
        )
        return key_json(key, deps.clock(), plaintext)

    created = run(as_json, work)
    if not as_json:
        typer.echo("Store this key now; it is shown only once:", err=True)
    emit(created, as_json, created["key"] if not as_json else None)


@keys_app.command("list")
def keys_list(account: AccountOpt, env: EnvOpt, as_json: JsonOpt = False) -> None:
    environment_ = environment(env)

    async def work(deps: services.Deps) -> list[dict[str, Any]]:
        await services.get_account(deps, account)
        found: list[dict[str, Any]] = []
        after = None
        while True:
            page = await services.list_keys(deps, account, environment_, PageRequest(after, 200, False))
            found += [key_json(k, deps.clock()) for k in page.items]
            if not page.has_more:
                return found
            after = page.items[-1].id

    emit({"data": run(as_json, work)}, as_json)


@keys_app.command("show")
def keys_show(key_id: str, as_json: JsonOpt = False) -> None:
    async def work(deps: services.Deps) -> dict[str, Any]:
        return key_json(await services.get_key(deps, key_id), deps.clock())

    emit(run(as_json, work), as_json)


@keys_app.command("revoke")
def keys_revoke(key_id: str, as_json: JsonOpt = False) -> None:
    """Revoke a key; every server refuses it from the next request on."""

    async def work(deps: services.Deps) -> dict[str, Any]:
        return key_json(await services.revoke_key(deps, key_id), deps.clock())

    emit(run(as_json, work), as_json)


@keys_app.command("reactivate")
def keys_reactivate(key_id: str, as_json: JsonOpt = False) -> None:
    """Undo a revoke within 60 minutes of it, keeping the key's expiry (never after an exposure)."""

    async def work(deps: services.Deps) -> dict[str, Any]:
        return key_json(await key_services.reactivate_key(deps, key_id), deps.clock())

    emit(run(as_json, work), as_json)


@keys_app.command("rotate")
def keys_rotate(
    key_id: str,
    grace_period_seconds: Annotated[
        int,
        typer.Option(
            "--grace-period-seconds",
            help="How long the old secret keeps working once the new one is first used (0–86400).",
        ),
    ] = DEFAULT_GRACE_SECONDS,
    new_key_expires_at: Annotated[
        str | None, typer.Option("--new-key-expires-at", help="RFC 3339: a new expiry for the key.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Rotate a rotatable key as its owner. The new secret is printed once and never again."""

    async def work(deps: services.Deps) -> dict[str, Any]:
        key = await services.get_key(deps, key_id)
        rotation, rotated, plaintext = await rotation_services.rotate(
            deps,
            key,
            key.id,
            grace_period_seconds=grace_period_seconds,
            new_key_expires_at=new_key_expires_at,
        )
        return rotation_json(rotation, rotated, plaintext)

    created = run(as_json, work)
    if not as_json:
        typer.echo(
            "Store this new secret now; it is shown only once. The old one keeps working until the new "
            f"one is first used, then for {grace_period_seconds} s:",
            err=True,
        )
    emit(created, as_json, created["new_key"] if not as_json else None)


@keys_app.command("usage")
def keys_usage(
    key_id: str,
    days: Annotated[int, typer.Option("--days", min=1, max=400, help="The window, ending today.")] = 30,
    as_json: JsonOpt = False,
) -> None:
    """Requests per day, permissions used, and permissions granted but unused in the window."""

    async def work(deps: services.Deps) -> dict[str, Any]:
        return await usage_services.key_usage(deps, await services.get_key(deps, key_id), days)

    emit(run(as_json, work), as_json)


@keys_app.command("exposures")
def keys_exposures(
    account: Annotated[str | None, typer.Option("--account", help="Only this account's keys.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Where keys were found exposed (a browser page, a public repository) and what was done."""
    found = run(as_json, lambda deps: client_side.list_exposures(deps, account))
    emit({"data": [dataclasses.asdict(e.wire()) for e in found]}, as_json)


@keys_app.command("import-legacy")
def keys_import_legacy(
    account: AccountOpt,
    env: EnvOpt,
    name: Annotated[str, typer.Option("--name")] = "Legacy API key",
    generate: Annotated[bool, typer.Option("--generate", help="Make a new legacy-format key.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Register a pre-2025 Paddle key read from stdin (only its hash is stored), or --generate one."""
    environment_ = environment(env)
    secret = None if generate else sys.stdin.readline().strip()
    if secret == "":
        _fail(InvalidField.on("key", "pipe the legacy key on stdin, or pass --generate"), as_json)

    async def work(deps: services.Deps) -> dict[str, Any]:
        key, plaintext = await services.import_legacy_key(
            deps, account_id=account, environment=environment_, name=name, secret=secret
        )
        return key_json(key, deps.clock(), plaintext if generate else None)

    emit(run(as_json, work), as_json)


# --- seed and serve -------------------------------------------------------------------------------


@app.command("seed")
def seed(
    new_key: Annotated[bool, typer.Option("--new-key", help="Issue new demo keys and print them.")] = False,
    banner: Annotated[
        bool, typer.Option("--banner", help="Explain the result for a human (make run).")
    ] = False,
    demo_origin: Annotated[
        list[str] | None,
        typer.Option("--demo-origin", help="Origin the /demo page is served from; repeat. Default :8080."),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Idempotent demo data: an account with a sandbox key holding every permission, and an
    allow-listed partner integration installed in it with client_token.read and client_token.write."""

    async def work(deps: services.Deps) -> tuple[services.Seeded, datetime]:
        origins = tuple(demo_origin) if demo_origin else services.DEFAULT_DEMO_ORIGINS
        return await services.seed(deps, new_key=new_key, demo_origins=origins), deps.clock()

    seeded, now = run(as_json, work)
    base = (demo_origin or ["http://127.0.0.1:8080"])[0]
    payload = {
        "account": account_json(seeded.account),
        "api_key": key_json(seeded.key, now, seeded.plaintext),
        "integration": integration_json(seeded.integration),
        "installation": installation_json(seeded.installation),
        "partner_api_key": key_json(seeded.partner_key, now, seeded.partner_plaintext),
        "demo_client_token": token_json(seeded.demo_token),
    }
    if as_json:
        emit(payload, True)
        return
    lines = []
    if seeded.plaintext:
        lines.append(f"  merchant key (every permission):        {seeded.plaintext}")
    if seeded.partner_plaintext:
        lines.append(f"  partner key (client_token.read, .write): {seeded.partner_plaintext}")
    if lines:
        typer.echo(
            f"\nSandbox account {seeded.account.id}. These keys are shown once; store them now:\n\n"
            + "\n".join(lines)
            + f"\n\nTry: curl -H 'Authorization: Bearer {seeded.plaintext or seeded.partner_plaintext}' "
            f"{base}/\nThe demo pricing page: {base}/demo\n"
            f"Webhooks: POST {base}/notification-settings with a destination such as "
            'http://127.0.0.1:9000/hooks (README, "Webhooks"); the worker delivers them.\n',
            err=True,
        )
    elif banner:
        typer.echo(
            f"\nReusing sandbox account {seeded.account.id} (keys {seeded.key.id}, {seeded.partner_key.id}).\n"
            "Their secrets were shown once, on the first run. For new ones: .venv/bin/keyhouse seed --new-key\n"
            f"The demo pricing page: {base}/demo\n",
            err=True,
        )


# --- integrations, installations, features --------------------------------------------------------


def _integration_with_history(pair: tuple[Any, list[Any]]) -> dict[str, Any]:
    integration, history = pair
    return {**integration_json(integration), "history": [audit_json(e) for e in history]}


@integrations_app.command("register")
def integrations_register(
    name: Annotated[str, typer.Option("--name")],
    early_access: Annotated[
        bool, typer.Option("--early-access", help="Allow-list it for early access.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    integration = run(
        as_json,
        lambda deps: integration_services.register_integration(
            deps, name, early_access=early_access, actor=actor()
        ),
    )
    emit(integration_json(integration), as_json)


@integrations_app.command("list")
def integrations_list(as_json: JsonOpt = False) -> None:
    """Every integration, with who changed its allow-list flag, when, from → to."""
    found = run(as_json, integration_services.list_integrations)
    emit({"data": [_integration_with_history(p) for p in found]}, as_json)


@integrations_app.command("update")
def integrations_update(
    integration_id: str,
    early_access: Annotated[
        bool, typer.Option("--early-access/--no-early-access", help="On or off the early-access allow-list.")
    ],
    as_json: JsonOpt = False,
) -> None:
    integration = run(
        as_json,
        lambda deps: integration_services.set_early_access(deps, integration_id, early_access, actor=actor()),
    )
    emit(integration_json(integration), as_json)


@integrations_app.command("install")
def integrations_install(
    account: AccountOpt,
    env: EnvOpt,
    integration: Annotated[str, typer.Option("--integration", help="Integration id (itg_…).")],
    permission: Annotated[
        list[str] | None, typer.Option("--permission", help="Repeat for each permission.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Install an integration into an environment: prints the installation and its new API key (once)."""
    environment_ = environment(env)

    async def work(deps: services.Deps) -> dict[str, Any]:
        granted = services.resolve_permissions(permission or [], all_permissions=False)
        warn_about(granted)
        installation, key, plaintext = await integration_services.install(
            deps,
            account_id=account,
            environment=environment_,
            integration_id=integration,
            permissions=granted,
        )
        return {
            "installation": installation_json(installation),
            "api_key": key_json(key, deps.clock(), plaintext),
        }

    emit(run(as_json, work), as_json)


@integrations_app.command("uninstall")
def integrations_uninstall(installation_id: str, as_json: JsonOpt = False) -> None:
    """Revoke the installation's API keys and every client-side token it created."""
    installation = run(as_json, lambda deps: integration_services.uninstall(deps, installation_id))
    emit(installation_json(installation), as_json)


@installations_app.command("list")
def installations_list(account: AccountOpt, as_json: JsonOpt = False) -> None:
    found = run(as_json, lambda deps: integration_services.list_installations(deps, account))
    emit({"data": [installation_json(i) for i in found]}, as_json)


FEATURES = {f.value: f for f in Feature}
AVAILABILITIES = {a.value: a for a in Availability}


@features_app.command("set")
def features_set(
    feature: Annotated[str, typer.Argument(help=f"One of: {', '.join(FEATURES)}")],
    availability: Annotated[str, typer.Argument(help=f"One of: {', '.join(AVAILABILITIES)}")],
    as_json: JsonOpt = False,
) -> None:
    """Switch a feature; every server sees it within a second, with no restart."""
    if feature not in FEATURES:
        raise typer.BadParameter(f"must be one of: {', '.join(FEATURES)}", param_hint="FEATURE")
    if availability not in AVAILABILITIES:
        raise typer.BadParameter(f"must be one of: {', '.join(AVAILABILITIES)}", param_hint="AVAILABILITY")
    run(
        as_json,
        lambda deps: integration_services.set_feature(
            deps, FEATURES[feature], AVAILABILITIES[availability], actor=actor()
        ),
    )
    features_show(as_json)


@features_app.command("show")
def features_show(as_json: JsonOpt = False) -> None:
    """Each feature's state and the history of its changes."""

    async def work(deps: services.Deps) -> dict[str, Any]:
        history = await integration_services.feature_history(deps)
        data = []
        for feature in Feature:
            state = await integration_services.feature_state(deps, feature)
            changes = [audit_json(e) for e in history if e.subject == f"feature:{feature.value}"]
            data.append({"feature": feature.value, "availability": state.value, "history": changes})
        return {"data": data}

    emit(run(as_json, work), as_json)


# --- client-side tokens, as the merchant ----------------------------------------------------------


def token_json(token: ClientToken) -> dict[str, Any]:
    wire = domain_tokens.to_wire(token)
    data = {name: getattr(wire, name) for name in wire.__dataclass_fields__}
    data["created_by"] = str(token.created_by)
    return data


@tokens_app.command("create")
def tokens_create(
    account: AccountOpt,
    env: EnvOpt,
    name: Annotated[str, typer.Option("--name")],
    description: Annotated[str | None, typer.Option("--description")] = None,
    allowed_origin: Annotated[
        list[str] | None,
        typer.Option(
            "--allowed-origin", help="A page origin that may use the token; repeat. None: any origin."
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    environment_ = environment(env)
    token = run(
        as_json,
        lambda deps: token_services.create_token(
            deps,
            TokenScope(account, environment_),
            name=name,
            description=description,
            created_by=Creator(CreatorKind.CLI, operator()),
            allowed_origins=allowed_origin or None,
        ),
    )
    emit(token_json(token), as_json)


@tokens_app.command("list")
def tokens_list(
    account: AccountOpt,
    env: EnvOpt,
    status: Annotated[
        str, typer.Option("--status", help="Comma-separated: active, revoked")
    ] = "active,revoked",
    as_json: JsonOpt = False,
) -> None:
    """Every token of the environment, whoever created it (``created_by``)."""
    environment_ = environment(env)
    names = [s.strip() for s in status.split(",") if s.strip()]
    if not names or any(n not in TokenStatus._value2member_map_ for n in names):
        raise typer.BadParameter("must be a comma-separated list of: active, revoked", param_hint="--status")
    statuses = frozenset(TokenStatus(n) for n in names)

    async def work(deps: services.Deps) -> list[dict[str, Any]]:
        await services.get_account(deps, account)
        found: list[dict[str, Any]] = []
        after = None
        while True:
            page = await token_services.list_tokens(
                deps, TokenScope(account, environment_), statuses, PageRequest(after, 200, True)
            )
            found += [token_json(t) for t in page.items]
            if not page.has_more:
                return found
            after = page.items[-1].id

    emit({"data": run(as_json, work)}, as_json)


@tokens_app.command("revoke")
def tokens_revoke(token_id: str, account: AccountOpt, env: EnvOpt, as_json: JsonOpt = False) -> None:
    environment_ = environment(env)
    token = run(
        as_json, lambda deps: token_services.revoke_token(deps, TokenScope(account, environment_), token_id)
    )
    emit(token_json(token), as_json)


# --- webhooks ----------------------------------------------------------------------------------------


@webhooks_app.command("create")
def webhooks_create(
    account: AccountOpt,
    env: EnvOpt,
    url: Annotated[str, typer.Option("--url", help="Where to POST (sandbox may use http://localhost).")],
    event: Annotated[list[str], typer.Option("--event", help="An event type to receive; repeat.")],
    description: Annotated[str, typer.Option("--description")] = "Created at the command line",
    as_json: JsonOpt = False,
) -> None:
    """A destination as the account owner; prints its endpoint_secret_key (the signing secret)."""
    environment_ = environment(env)
    fields = {"type": "url", "description": description, "destination": url, "subscribed_events": event}
    setting = run(
        as_json,
        lambda deps: notification_services.create_setting(
            deps, TokenScope(account, environment_), Creator(CreatorKind.CLI, operator()), fields
        ),
    )
    emit(setting_json(setting), as_json)


@webhooks_app.command("list")
def webhooks_list(account: AccountOpt, env: EnvOpt, as_json: JsonOpt = False) -> None:
    """Every destination of the environment, the partners' included."""
    environment_ = environment(env)

    async def work(deps: services.Deps) -> list[dict[str, Any]]:
        await services.get_account(deps, account)
        scope = TokenScope(account, environment_)
        found: list[dict[str, Any]] = []
        after = None
        while True:
            page = await notification_services.list_settings(
                deps, scope, None, None, PageRequest(after, 200, False)
            )
            found += [setting_json(s) for s in page.items]
            if not page.has_more:
                return found
            after = page.items[-1].id

    emit({"data": run(as_json, work)}, as_json)


@webhooks_app.command("delete")
def webhooks_delete(setting_id: str, account: AccountOpt, env: EnvOpt, as_json: JsonOpt = False) -> None:
    environment_ = environment(env)
    run(
        as_json,
        lambda deps: notification_services.delete_setting(
            deps, TokenScope(account, environment_), setting_id
        ),
    )
    emit({"id": setting_id, "deleted": True}, as_json)


@webhooks_app.command("notifications")
def webhooks_notifications(
    account: AccountOpt,
    env: EnvOpt,
    limit: Annotated[int, typer.Option("--limit", min=1, max=200)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """The newest notifications of the environment: status, attempts, next retry."""
    environment_ = environment(env)

    async def work(deps: services.Deps) -> list[dict[str, Any]]:
        await services.get_account(deps, account)
        page = await notification_services.list_notifications(
            deps, TokenScope(account, environment_), NotificationFilter(), PageRequest(None, limit, True)
        )
        return [notification_json(n) for n in page.items]

    emit({"data": run(as_json, work)}, as_json)


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
    with_worker: Annotated[
        bool, typer.Option("--with-worker", help="Also run `keyhouse worker` (webhooks) beside the server.")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Serve the API (one process per worker; each checks its configuration at start)."""
    import uvicorn

    try:
        bootstrap.load_peppers(load_settings())
    except ConfigError as exc:
        _fail(KeyhouseError(str(exc)), as_json)
    delivery = subprocess.Popen([sys.executable, "-m", "keyhouse", "worker"]) if with_worker else None
    typer.echo(
        f"keyhouse serving on http://{host}:{port}{' with a webhook worker' if delivery else ''} (Ctrl-C stops)",
        err=True,
    )
    try:
        uvicorn.run(
            "keyhouse.bootstrap:asgi_app",
            factory=True,
            host=host,
            port=port,
            workers=workers,
            proxy_headers=False,
            server_header=False,
            log_level="warning",
        )
    finally:
        if delivery is not None:
            delivery.terminate()  # SIGTERM: the worker finishes its batch in flight
            try:
                delivery.wait(timeout=10)
            except subprocess.TimeoutExpired:
                delivery.kill()


@app.command("worker")
def worker(as_json: JsonOpt = False) -> None:
    """Deliver webhooks (run one or more beside the server; SIGTERM stops after the batch in flight)."""
    try:
        settings = load_settings()
        bootstrap.load_peppers(settings)
    except ConfigError as exc:
        _fail(KeyhouseError(str(exc)), as_json)
    typer.echo("keyhouse worker delivering webhooks (Ctrl-C stops)", err=True)
    asyncio.run(bootstrap.run_worker(settings))
