"""The operator CLI. Scripts depend on its contract, so it is stable:

* every command reads ``KEYHOUSE_DATABASE_URL`` and accepts ``--json``;
* success: exit 0 and exactly one JSON object on stdout (an entity as the API shows it, a list as
  ``{"data": [...]}``, or ``{"ok": true}``); a newly issued secret appears in full, once, in ``key``;
* failure: exit 1, the message on stderr and, under ``--json``, Paddle's ``{"error": ...}`` on stdout;
  usage errors exit 2. Warnings and progress go to stderr only.
"""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any, TypeVar

import typer

from keyhouse import bootstrap, services
from keyhouse.config import ConfigError, load_settings
from keyhouse.domain import keys as domain_keys
from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.errors import InvalidField, KeyhouseError
from keyhouse.domain.times import parse_rfc3339, rfc3339
from keyhouse.store import PageRequest

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
    as_json: JsonOpt = False,
) -> None:
    """Create an API key. Its full secret is printed once and never again."""
    environment_ = environment(env)
    expiry = _expiry(expires_at)

    async def work(deps: services.Deps) -> dict[str, Any]:
        granted = services.resolve_permissions(permission or [], all_permissions=all_permissions)
        key, plaintext = await services.create_key(
            deps,
            account_id=account,
            environment=environment_,
            name=name,
            description=description,
            permissions=granted,
            expires_at=expiry,
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
    new_key: Annotated[bool, typer.Option("--new-key", help="Issue another demo key and print it.")] = False,
    banner: Annotated[
        bool, typer.Option("--banner", help="Explain the result for a human (make run).")
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Idempotent demo data: an account with a sandbox key holding every permission."""

    async def work(deps: services.Deps) -> tuple[services.Seeded, datetime]:
        return await services.seed(deps, new_key=new_key), deps.clock()

    seeded, now = run(as_json, work)
    payload = {
        "account": account_json(seeded.account),
        "api_key": key_json(seeded.key, now, seeded.plaintext),
    }
    if as_json:
        emit(payload, True)
        return
    if seeded.plaintext:
        typer.echo(
            f"\nSandbox account {seeded.account.id} with an API key holding every permission.\n"
            f"This key is shown once; store it now:\n\n    {seeded.plaintext}\n\n"
            f"Try: curl -H 'Authorization: Bearer {seeded.plaintext}' http://127.0.0.1:8080/\n",
            err=True,
        )
    elif banner:
        typer.echo(
            f"\nReusing sandbox account {seeded.account.id} (key {seeded.key.id}).\n"
            "Its secret was shown once on the first run. For another key: "
            ".venv/bin/keyhouse seed --new-key\n",
            err=True,
        )


@app.command("serve")
def serve(
    host: Annotated[str, typer.Option("--host")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port")] = 8080,
    workers: Annotated[int, typer.Option("--workers", min=1)] = 1,
) -> None:
    """Serve the API (one process per worker; each checks its configuration at start)."""
    import uvicorn

    try:
        bootstrap.load_peppers(load_settings())
    except ConfigError as exc:
        _fail(KeyhouseError(str(exc)), False)
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
