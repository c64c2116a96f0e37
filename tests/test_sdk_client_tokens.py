"""The official SDKs, unchanged, drive the client-side tokens API of a served keyhouse.

``paddle-python-sdk`` runs here; ``@paddle/paddle-node-sdk@3.10.0`` runs ``tests/node`` under
``node --test`` (installed by ``make test`` with ``npm ci`` from the committed lock). Both are pointed
at keyhouse as ``sdk.md`` §1 shows and hold the key of a partner integration on the early-access
allow-list, installed with ``client_token.read`` and ``client_token.write``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import httpx
import pytest
from paddle_billing import Client, Options
from paddle_billing.Entities.ClientTokens import ClientTokenStatus
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Resources.ClientTokens.Operations import (
    CreateClientToken,
    ListClientTokens,
    UpdateClientToken,
)
from paddle_billing.Resources.Shared.Operations import OrderBy, Pager

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.credentials import Pepper
from keyhouse.domain.permissions import Permission
from keyhouse.services import integrations
from tests.conftest import TEST_PEPPER, need

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from tests.servers import Keyhouse, Server

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

NODE_TESTS = Path(__file__).resolve().parent / "node"
UNKNOWN_TOKEN = "ctkn_01hzx3k9q8w7v6t5r4p3n2m1ab"


async def _install_partner(keyhouse: Keyhouse) -> str:
    deps = services.Deps(
        store=keyhouse.database.open(), peppers=services.Peppers(Pepper(TEST_PEPPER.encode()))
    )
    try:
        account = await services.create_account(deps, "Alice's shop")
        bob = await integrations.register_integration(deps, "Bob's paywalls", early_access=True, actor="test")
        _, _, plaintext = await integrations.install(
            deps,
            account_id=account.id,
            environment=Environment.SANDBOX,
            integration_id=bob.id,
            permissions=frozenset({Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE}),
        )
    finally:
        await deps.store.close()
    return plaintext


def partner_key(keyhouse: Keyhouse) -> str:
    """A fresh allow-listed installation's key, once the shared server lets it in.

    The server reads the allow-list at most once a second, so an installation made by another
    process a moment ago may still be refused for up to a second.
    """
    key = asyncio.run(_install_partner(keyhouse))
    deadline = time.monotonic() + 3
    with keyhouse.server.client() as client:
        while (
            response := client.get("/client-tokens", headers={"Authorization": f"Bearer {key}"})
        ).status_code != 200:
            assert time.monotonic() < deadline, response.text
            time.sleep(0.05)
    return key


def sdk(server: Server, key: str) -> Client:
    return Client(key, options=Options(environment=SimpleNamespace(base_url=server.url)))


# --- Python ---------------------------------------------------------------------------------------


def test_the_python_sdk_creates_gets_lists_every_page_updates_and_revokes(keyhouse: Keyhouse) -> None:
    client = sdk(keyhouse.server, partner_key(keyhouse))
    made = [
        client.client_tokens.create(
            CreateClientToken(name=f"Python {i}", description="First" if i == 0 else None)
        )
        for i in range(5)
    ]
    first = made[0]
    assert first.token.startswith("test_")
    assert len(first.token) == 32
    assert (first.name, first.description, first.status) == ("Python 0", "First", ClientTokenStatus.Active)
    assert first.revoked_at is None
    assert first.created_at == first.updated_at
    assert made[1].description is None
    assert client.client_tokens.get(first.id) == first

    ids = sorted(t.id for t in made)
    # The Pager's default order is the lowercase id[asc]; two a page means three pages, all followed.
    assert [t.id for t in client.client_tokens.list(ListClientTokens(pager=Pager(per_page=2)))] == ids
    newest_first = client.client_tokens.list(
        ListClientTokens(pager=Pager(order_by=OrderBy.id_descending(), per_page=2))
    )
    assert [t.id for t in newest_first] == ids[::-1]
    assert [t.id for t in client.client_tokens.list()] == ids[::-1]  # no parameters at all

    updated = client.client_tokens.update(made[1].id, UpdateClientToken(status=ClientTokenStatus.Revoked))
    assert updated.status == ClientTokenStatus.Revoked
    assert updated.revoked_at is not None
    revoked = client.client_tokens.revoke(made[2].id)
    assert revoked.status == ClientTokenStatus.Revoked
    assert client.client_tokens.revoke(made[2].id) == revoked  # again: nothing changes

    def listed(*statuses: ClientTokenStatus) -> list[str]:
        found = client.client_tokens.list(ListClientTokens(pager=Pager(per_page=2), statuses=list(statuses)))
        return [t.id for t in found]

    assert listed() == sorted([made[0].id, made[3].id, made[4].id])  # active only by default
    assert listed(ClientTokenStatus.Active) == sorted([made[0].id, made[3].id, made[4].id])
    assert listed(ClientTokenStatus.Revoked) == sorted([made[1].id, made[2].id])
    assert listed(ClientTokenStatus.Active, ClientTokenStatus.Revoked) == ids


def test_the_python_sdk_raises_api_errors_with_every_field(keyhouse: Keyhouse) -> None:
    client = sdk(keyhouse.server, partner_key(keyhouse))
    token = client.client_tokens.revoke(client.client_tokens.create(CreateClientToken(name="Refusals")).id)

    with pytest.raises(ApiError) as raised:
        client.client_tokens.update(token.id, UpdateClientToken(status=ClientTokenStatus.Active))
    assert (raised.value.response.status_code, raised.value.error_code) == (400, "invalid_field")
    assert [e.field for e in raised.value.field_errors] == ["status"]

    with pytest.raises(ApiError) as raised:
        client.client_tokens.create(CreateClientToken(name="n" * 151))
    assert raised.value.error_code == "invalid_field"
    assert [e.field for e in raised.value.field_errors] == ["name"]

    for token_id in (UNKNOWN_TOKEN, "not-an-id"):
        with pytest.raises(ApiError) as raised:
            client.client_tokens.get(token_id)
        assert (raised.value.response.status_code, raised.value.error_code) == (404, "not_found")
        assert raised.value.docs_url == "https://developer.paddle.com/v1/errors/shared/not_found"

    with pytest.raises(ApiError) as raised:
        sdk(keyhouse.server, token.token).client_tokens.get(token.id)  # a client token is not an API key
    assert (raised.value.response.status_code, raised.value.error_code) == (403, "forbidden")


# --- Node -----------------------------------------------------------------------------------------


def test_the_node_sdk_scenarios_pass_under_node_test(keyhouse: Keyhouse) -> None:
    node = shutil.which("node")
    if node is None:
        need("Node SDK", "`node` is not on PATH")
    if not (NODE_TESTS / "node_modules" / "@paddle" / "paddle-node-sdk").is_dir():
        need("Node SDK", "tests/node/node_modules is missing: npm ci --prefix tests/node (make test does it)")
    assert node is not None
    env = {**os.environ, "KEYHOUSE_URL": keyhouse.server.url, "KEYHOUSE_KEY": partner_key(keyhouse)}
    done = subprocess.run(
        [node, "--test", "tests/node/"],
        cwd=NODE_TESTS.parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, f"node --test failed:\n{done.stdout}\n{done.stderr}"
    assert "# pass 2" in done.stdout, done.stdout  # both scenarios ran


def test_the_served_next_link_is_followed_by_both_sdks_because_it_starts_with_their_base_url(
    keyhouse: Keyhouse,
) -> None:
    """Node concatenates ``next`` onto its base URL unless ``next`` already starts with it (sdk.md)."""
    key = partner_key(keyhouse)
    client = sdk(keyhouse.server, key)
    for i in range(3):
        client.client_tokens.create(CreateClientToken(name=f"Link {i}"))
    response = httpx.get(
        f"{keyhouse.server.url}/client-tokens",
        params={"per_page": "1"},
        headers={"Authorization": f"bearer {key}"},  # as the Node SDK writes it
    )
    assert response.status_code == 200, response.text
    assert response.json()["meta"]["pagination"]["next"].startswith(f"{keyhouse.server.url}/client-tokens?")
