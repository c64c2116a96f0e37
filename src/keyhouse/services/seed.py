"""Idempotent demo data for local use and partners' CI."""

from __future__ import annotations

from dataclasses import dataclass

from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.catalogue import CatalogStatus, Price, Product
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind, TokenStatus
from keyhouse.domain.integrations import Installation, Integration
from keyhouse.domain.keys import ApiKey, KeyStatus
from keyhouse.domain.permissions import Permission
from keyhouse.services import catalogue, client_tokens
from keyhouse.services.client_side import set_tax_rate
from keyhouse.services.client_tokens import TokenScope
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
    demo_token: ClientToken


#: Where `make run` serves the demo page by default; the demo token allows exactly these.
DEFAULT_DEMO_ORIGINS = ("http://127.0.0.1:8080", "http://localhost:8080")


async def seed(
    deps: Deps, *, new_key: bool = False, demo_origins: tuple[str, ...] = DEFAULT_DEMO_ORIGINS
) -> Seeded:
    """One account with a sandbox key holding every permission, an allow-listed partner integration
    installed in it with ``client_token.read`` and ``client_token.write``, and the demo page's
    catalogue and origin-restricted client token.

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
    demo_token = await seed_demo_catalogue(deps, account, list(demo_origins))
    return Seeded(
        account, key, plaintext, integration, installation, partner_key, partner_plaintext, demo_token
    )


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


# --- the demo pricing page ------------------------------------------------------------------------

FIRST_PAGE = PageRequest(None, 200, False)
DEMO_PRODUCT_NAME = "keyhouse Pro"
DEMO_TOKEN_NAME = "Demo pricing page"
DEMO_TAX_RATE = "0.2"


@dataclass(frozen=True, slots=True)
class DemoPage:
    """What /demo renders: the seeded token and the catalogue it prices."""

    token: ClientToken
    lines: list[tuple[Price, Product]]


async def seed_demo_catalogue(deps: Deps, account: Account, origins: list[str]) -> ClientToken:
    """A product with two prices, a 20 % sandbox tax rate and a client token restricted to the demo's
    own origins. Idempotent: an existing demo token is kept (its origins updated to ``origins``)."""
    scope = TokenScope(account.id, Environment.SANDBOX)
    products = await _active_products(deps, account)
    if not any(p.name == DEMO_PRODUCT_NAME for p in products):
        product = await catalogue.create_product(
            deps,
            account.id,
            Environment.SANDBOX,
            {
                "name": DEMO_PRODUCT_NAME,
                "tax_category": "standard",
                "description": "Everything keyhouse does, for one team.",
            },
        )
        for description, amount, interval in (("Monthly", "1500", "month"), ("Yearly", "15000", "year")):
            await catalogue.create_price(
                deps,
                account.id,
                Environment.SANDBOX,
                {
                    "product_id": product.id,
                    "description": description,
                    "name": description,
                    "unit_price": {"amount": amount, "currency_code": "USD"},
                    "billing_cycle": {"interval": interval, "frequency": 1},
                },
            )
        await set_tax_rate(deps, account.id, Environment.SANDBOX, DEMO_TAX_RATE)
    existing = await _demo_token(deps, account)
    if existing is not None:
        return await client_tokens.update_token(deps, scope, existing.id, {"allowed_origins": origins})
    return await client_tokens.create_token(
        deps,
        scope,
        name=DEMO_TOKEN_NAME,
        description="Used by the /demo pricing page; only that page's origins may use it.",
        created_by=Creator(CreatorKind.CLI, "keyhouse seed"),
        allowed_origins=origins,
    )


async def _demo_token(deps: Deps, account: Account) -> ClientToken | None:
    page = await client_tokens.list_tokens(
        deps, TokenScope(account.id, Environment.SANDBOX), frozenset({TokenStatus.ACTIVE}), FIRST_PAGE
    )
    return next((t for t in page.items if t.name == DEMO_TOKEN_NAME), None)


async def demo_page(deps: Deps) -> DemoPage | None:
    """The seeded demo, or None before ``keyhouse seed`` has run."""
    accounts = [a for a in await list_accounts(deps) if a.name == DEMO_ACCOUNT_NAME]
    if not accounts:
        return None
    token = await _demo_token(deps, accounts[0])
    if token is None:
        return None
    products = {p.id: p for p in await _active_products(deps, accounts[0]) if p.name == DEMO_PRODUCT_NAME}
    prices = await catalogue.list_prices(
        deps, accounts[0].id, Environment.SANDBOX, list(products), {CatalogStatus.ACTIVE}, FIRST_PAGE
    )
    lines = sorted(
        ((p, products[p.product_id]) for p in prices.items), key=lambda line: int(line[0].unit_price.amount)
    )
    return DemoPage(token, lines)


async def _active_products(deps: Deps, account: Account) -> list[Product]:
    page = await catalogue.list_products(
        deps, account.id, Environment.SANDBOX, {CatalogStatus.ACTIVE}, FIRST_PAGE
    )
    return page.items
