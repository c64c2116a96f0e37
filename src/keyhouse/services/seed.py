"""Idempotent demo data for local use and partners' CI."""

from __future__ import annotations

from dataclasses import dataclass

from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.integrations import Installation, Integration
from keyhouse.domain.keys import ApiKey, KeyStatus
from keyhouse.domain.permissions import Permission
from keyhouse.services.deps import Deps
from keyhouse.services.integrations import (
    install,
    list_installations,
    list_integrations,
    register_integration,
)
from keyhouse.services.keys import create_account, create_key, list_accounts, list_keys
from keyhouse.store import PageRequest

DEMO_ACCOUNT_NAME = "keyhouse demo"
DEMO_KEY_NAME = "Sandbox demo key (all permissions)"
DEMO_INTEGRATION_NAME = "Demo partner integration"


@dataclass(frozen=True, slots=True)
class Seeded:
    account: Account
    key: ApiKey
    plaintext: str | None
    integration: Integration
    installation: Installation
    partner_key: ApiKey
    partner_plaintext: str | None


async def seed(deps: Deps, *, new_key: bool = False) -> Seeded:
    """One account with a sandbox key holding every permission, and an allow-listed partner integration
    installed in it with ``client_token.read`` and ``client_token.write``.

    Plaintexts are returned only when this call made the key (first run, or ``new_key``).
    """
    accounts = [a for a in await list_accounts(deps) if a.name == DEMO_ACCOUNT_NAME]
    account = accounts[0] if accounts else await create_account(deps, DEMO_ACCOUNT_NAME)
    key, plaintext = await _demo_key(deps, account, new_key)

    integrations = [i for i, _ in await list_integrations(deps) if i.name == DEMO_INTEGRATION_NAME]
    integration = (
        integrations[0]
        if integrations
        else await register_integration(deps, DEMO_INTEGRATION_NAME, early_access=True, actor="keyhouse seed")
    )
    installed = [
        i
        for i in await list_installations(deps, account.id)
        if i.integration_id == integration.id and i.active and i.environment is Environment.SANDBOX
    ]
    partner_plaintext = None
    if installed and not new_key:
        installation = installed[0]
        page = await list_keys(deps, account.id, Environment.SANDBOX, PageRequest(None, 200, False))
        partner_key = next(k for k in page.items if k.installation_id == installation.id)
    else:
        installation, partner_key, partner_plaintext = await install(
            deps,
            account_id=account.id,
            environment=Environment.SANDBOX,
            integration_id=integration.id,
            permissions=frozenset({Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE}),
        )
    return Seeded(account, key, plaintext, integration, installation, partner_key, partner_plaintext)


async def _demo_key(deps: Deps, account: Account, new_key: bool) -> tuple[ApiKey, str | None]:
    if not new_key:
        page = await list_keys(deps, account.id, Environment.SANDBOX, PageRequest(None, 200, False))
        now = deps.clock()
        for key in page.items:
            if key.name == DEMO_KEY_NAME and key.status_at(now) is KeyStatus.ACTIVE:
                return key, None
    return await create_key(
        deps,
        account_id=account.id,
        environment=Environment.SANDBOX,
        name=DEMO_KEY_NAME,
        description="Made by `keyhouse seed` for local use.",
        permissions=frozenset(Permission),
    )
