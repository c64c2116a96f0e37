"""The official SDKs, unchanged, drive the client-side API of a served keyhouse (issue 4).

Both SDKs hold a *client-side token* as their key and preview prices and a transaction with it;
both also parse a client token entity that carries keyhouse's ``allowed_origins`` extension, read
with a partner's key. ``paddle-python-sdk`` runs here; ``@paddle/paddle-node-sdk@3.10.0`` runs
``tests/node/client_side.test.mjs`` under ``node --test``. The catalogue, the tax rate and the tokens
are made in this process on the served store (``Keyhouse.call``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import httpx
import pytest
from paddle_billing import Client, Options
from paddle_billing.Entities.ClientTokens import ClientTokenStatus
from paddle_billing.Entities.PricingPreviews import PricePreviewItem
from paddle_billing.Entities.Shared import CurrencyCode
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Resources.PricingPreviews.Operations import PreviewPrice
from paddle_billing.Resources.Transactions.Operations import PreviewTransaction
from paddle_billing.Resources.Transactions.Operations.Preview import TransactionItemPreviewWithPriceId

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.permissions import Permission
from keyhouse.services import catalogue, client_side, integrations
from keyhouse.services import client_tokens as token_services
from keyhouse.services.client_tokens import TokenScope
from tests.conftest import need

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from tests.servers import Keyhouse, Server

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

NODE_TESTS = Path(__file__).resolve().parent / "node"
SHOP = "https://shop.example.com"
SANDBOX = Environment.SANDBOX


@dataclass(frozen=True)
class Shop:
    """alice's sandbox: a tax rate of 0.2, two USD prices, tokens, and bob the partner."""

    account_id: str
    price_id: str  # 1500 USD
    addon_id: str  # 250 USD, internal tax mode
    token: str  # an active client-side token, no origin list
    token_id: str
    restricted_token: str  # allowed_origins: [SHOP, http://localhost:*]
    restricted_id: str
    partner_key: str  # bob's key: client_token.read and .write
    transaction_key: str  # alice's key with transaction.read only


async def _open_shop(deps: services.Deps) -> Shop:
    account = await services.create_account(deps, "Alice's shop")
    await client_side.set_tax_rate(deps, account.id, SANDBOX, "0.2")
    product = await catalogue.create_product(
        deps, account.id, SANDBOX, {"name": "AeroEdit Pro", "tax_category": "standard"}
    )

    async def price(amount: str, **extra: object) -> str:
        body = {
            "description": "Monthly",
            "product_id": product.id,
            "unit_price": {"amount": amount, "currency_code": "USD"},
            "billing_cycle": {"interval": "month", "frequency": 1},
            **extra,
        }
        return (await catalogue.create_price(deps, account.id, SANDBOX, body)).id

    price_id, addon_id = await price("1500"), await price("250", tax_mode="internal")
    bob = await integrations.register_integration(deps, "Bob's paywalls", early_access=True, actor="test")
    installation, _, partner_key = await integrations.install(
        deps,
        account_id=account.id,
        environment=SANDBOX,
        integration_id=bob.id,
        permissions=frozenset({Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE}),
    )
    scope = TokenScope(account.id, SANDBOX, installation.id)
    creator = Creator(CreatorKind.INSTALLATION, installation.id)
    token = await token_services.create_token(
        deps, scope, name="Pricing page", description=None, created_by=creator
    )
    restricted = await token_services.create_token(
        deps,
        scope,
        name="Shop only",
        description="Pages of the shop",
        created_by=creator,
        allowed_origins=[SHOP, "http://localhost:*"],
    )
    _, transaction_key = await services.create_key(
        deps,
        account_id=account.id,
        environment=SANDBOX,
        name="Server previews",
        permissions=frozenset({Permission.TRANSACTION_READ}),
    )
    return Shop(
        account_id=account.id,
        price_id=price_id,
        addon_id=addon_id,
        token=token.token,
        token_id=token.id,
        restricted_token=restricted.token,
        restricted_id=restricted.id,
        partner_key=partner_key,
        transaction_key=transaction_key,
    )


@pytest.fixture
def shop(keyhouse: Keyhouse) -> Shop:
    """The shop, once the shared server lets bob in (it reads the allow-list at most once a second)."""
    made = keyhouse.call(_open_shop)
    deadline = time.monotonic() + 3
    with keyhouse.server.client() as client:
        auth = {"Authorization": f"Bearer {made.partner_key}"}
        while (response := client.get("/client-tokens", headers=auth)).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
    return made


def sdk(server: Server, key: str) -> Client:
    return Client(key, options=Options(environment=SimpleNamespace(base_url=server.url)))


# --- Python ---------------------------------------------------------------------------------------


def test_the_python_sdk_previews_prices_with_a_client_token(keyhouse: Keyhouse, shop: Shop) -> None:
    client = sdk(keyhouse.server, shop.token)
    preview = client.pricing_previews.preview_prices(
        PreviewPrice(
            items=[
                PricePreviewItem(price_id=shop.price_id, quantity=3),
                PricePreviewItem(price_id=shop.addon_id, quantity=2),
            ]
        )
    )
    assert preview.currency_code == CurrencyCode.USD
    first, second = preview.details.line_items
    assert (first.price.id, first.quantity, first.tax_rate) == (shop.price_id, 3, "0.2")
    assert first.product.name == "AeroEdit Pro"
    assert (first.unit_totals.subtotal, first.unit_totals.tax, first.unit_totals.total) == (
        "1500",
        "300",
        "1800",
    )
    assert (first.totals.subtotal, first.totals.tax, first.totals.total) == ("4500", "900", "5400")
    assert (first.formatted_totals.subtotal, first.formatted_totals.total) == ("$45.00", "$54.00")
    assert first.formatted_unit_totals.total == "$18.00"
    # internal tax mode: 2 × 250 includes the tax
    assert (second.totals.subtotal, second.totals.tax, second.totals.total) == ("417", "83", "500")


def test_the_python_sdk_previews_a_transaction_with_a_client_token(keyhouse: Keyhouse, shop: Shop) -> None:
    client = sdk(keyhouse.server, shop.token)
    preview = client.transactions.preview(
        PreviewTransaction(
            items=[
                TransactionItemPreviewWithPriceId(price_id=shop.price_id, quantity=3),
                TransactionItemPreviewWithPriceId(
                    price_id=shop.addon_id, quantity=1, include_in_totals=False
                ),
            ]
        )
    )
    assert preview.currency_code == CurrencyCode.USD
    assert [(i.price.id, i.quantity, i.include_in_totals) for i in preview.items] == [
        (shop.price_id, 3, True),
        (shop.addon_id, 1, False),
    ]
    totals = preview.details.totals
    assert (totals.subtotal, totals.tax, totals.total, totals.grand_total) == ("4500", "900", "5400", "5400")
    assert [line.totals.total for line in preview.details.line_items] == ["5400", "250"]
    assert [rate.tax_rate for rate in preview.details.tax_rates_used] == ["0.2"]


def test_the_python_sdks_transaction_preview_request_is_accepted(keyhouse: Keyhouse, shop: Shop) -> None:
    """What the SDK sends for ``transactions.preview`` is served; only parsing the answer fails (above)."""
    client = sdk(keyhouse.server, shop.token)
    operation = PreviewTransaction(
        items=[
            TransactionItemPreviewWithPriceId(price_id=shop.price_id, quantity=3),
            TransactionItemPreviewWithPriceId(price_id=shop.addon_id, quantity=1, include_in_totals=False),
        ],
        currency_code=CurrencyCode.USD,
        ignore_trials=True,
    )
    response = client.post_raw("/transactions/preview", operation)
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert (data["currency_code"], data["ignore_trials"]) == ("USD", True)
    totals = data["details"]["totals"]
    assert (totals["subtotal"], totals["tax"], totals["total"]) == ("4500", "900", "5400")


def test_the_python_sdk_previews_with_an_api_key_holding_transaction_read(
    keyhouse: Keyhouse, shop: Shop
) -> None:
    client = sdk(keyhouse.server, shop.transaction_key)
    preview = client.pricing_previews.preview_prices(
        PreviewPrice(items=[PricePreviewItem(price_id=shop.price_id, quantity=1)])
    )
    assert preview.details.line_items[0].totals.total == "1800"


def test_the_python_sdk_raises_api_errors_from_the_client_side_api(keyhouse: Keyhouse, shop: Shop) -> None:
    client = sdk(keyhouse.server, shop.token)
    with pytest.raises(ApiError) as raised:
        client.pricing_previews.preview_prices(
            PreviewPrice(items=[PricePreviewItem(price_id=shop.price_id, quantity=0)])
        )
    assert (raised.value.response.status_code, raised.value.error_code) == (400, "invalid_field")
    assert [e.field for e in raised.value.field_errors] == ["items[0].quantity"]

    # The restricted token refuses a caller without an Origin: the SDK runs on a server.
    with pytest.raises(ApiError) as raised:
        sdk(keyhouse.server, shop.restricted_token).transactions.preview(
            PreviewTransaction(items=[TransactionItemPreviewWithPriceId(price_id=shop.price_id, quantity=1)])
        )
    assert (raised.value.response.status_code, raised.value.error_code) == (403, "forbidden")

    # Revoked by the partner through the SDK: the very next preview is refused.
    sdk(keyhouse.server, shop.partner_key).client_tokens.revoke(shop.token_id)
    with pytest.raises(ApiError) as raised:
        client.pricing_previews.preview_prices(
            PreviewPrice(items=[PricePreviewItem(price_id=shop.price_id, quantity=1)])
        )
    assert (raised.value.response.status_code, raised.value.error_code) == (403, "invalid_client_token")
    assert raised.value.docs_url == "https://developer.paddle.com/v1/errors/shared/invalid_client_token"


def test_a_token_revoked_by_another_process_is_refused_by_the_servers_next_preview(
    request: pytest.FixtureRequest, keyhouse: Keyhouse, shop: Shop
) -> None:
    """The server caches tokens; a revoke committed elsewhere (here, the CLI's way) must still win."""
    if keyhouse.database.kind == "postgres":
        request.applymarker(
            pytest.mark.xfail(
                strict=False,  # a race: NOTIFY usually, not always, beats the next request
                reason="bug: on PostgreSQL the server's client-token cache hears of a revoke by "
                "asynchronous NOTIFY, so the very next preview can still pass (test_client_api.py "
                "has the deterministic twin)",
            )
        )
    client = sdk(keyhouse.server, shop.token)
    operation = PreviewPrice(items=[PricePreviewItem(price_id=shop.price_id, quantity=1)])
    client.pricing_previews.preview_prices(operation)
    client.pricing_previews.preview_prices(operation)  # the server has it cached now

    async def revoke(deps: services.Deps) -> None:
        await token_services.revoke_token(deps, TokenScope(shop.account_id, SANDBOX), shop.token_id)

    keyhouse.call(revoke)
    with pytest.raises(ApiError) as raised:
        client.pricing_previews.preview_prices(operation)
    assert raised.value.error_code == "invalid_client_token"


def test_the_python_sdk_parses_a_client_token_that_carries_allowed_origins(
    keyhouse: Keyhouse, shop: Shop
) -> None:
    raw = httpx.get(
        f"{keyhouse.server.url}/client-tokens/{shop.restricted_id}",
        headers={"Authorization": f"Bearer {shop.partner_key}"},
    )
    assert raw.json()["data"]["allowed_origins"] == [SHOP, "http://localhost:*"]

    client = sdk(keyhouse.server, shop.partner_key)
    token = client.client_tokens.get(shop.restricted_id)
    assert (token.id, token.token, token.name) == (shop.restricted_id, shop.restricted_token, "Shop only")
    assert (token.description, token.status, token.revoked_at) == (
        "Pages of the shop",
        ClientTokenStatus.Active,
        None,
    )
    listed = {t.id: t for t in client.client_tokens.list()}
    assert listed[shop.restricted_id] == token
    assert listed[shop.token_id].token == shop.token


# --- Node -----------------------------------------------------------------------------------------


def test_the_node_sdk_client_side_scenarios_pass_under_node_test(keyhouse: Keyhouse, shop: Shop) -> None:
    node = shutil.which("node")
    if node is None:
        need("Node SDK", "`node` is not on PATH")
    if not (NODE_TESTS / "node_modules" / "@paddle" / "paddle-node-sdk").is_dir():
        need("Node SDK", "tests/node/node_modules is missing: npm ci --prefix tests/node (make test does it)")
    assert node is not None
    env = {
        **os.environ,
        "KEYHOUSE_URL": keyhouse.server.url,
        "KEYHOUSE_CLIENT_TOKEN": shop.token,
        "KEYHOUSE_CLIENT_TOKEN_ID": shop.token_id,
        "KEYHOUSE_RESTRICTED_TOKEN": shop.restricted_token,
        "KEYHOUSE_RESTRICTED_TOKEN_ID": shop.restricted_id,
        "KEYHOUSE_PARTNER_KEY": shop.partner_key,
        "KEYHOUSE_PRICE_ID": shop.price_id,
        "KEYHOUSE_ADDON_ID": shop.addon_id,
        "KEYHOUSE_ORIGIN": SHOP,
    }
    done = subprocess.run(
        [node, "--test", "tests/node/client_side.test.mjs"],
        cwd=NODE_TESTS.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# pass 4" in done.stdout, done.stdout  # every scenario ran, none skipped
    assert "# skipped 0" in done.stdout, done.stdout
