"""``keyhouse serve`` as a real process: keys work over a socket, and a revoke made by another
process (the CLI) is refused on the very next request, whatever the verification caches hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx
import pytest

if TYPE_CHECKING:
    from tests.servers import Keyhouse, Server

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow


def fresh_connection_get(server: Server, path: str, headers: dict[str, str]) -> httpx.Response:
    """One request on a new connection, so that with several workers any of them may answer it."""
    with server.client() as client:
        return client.get(path, headers=headers)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_key_works_over_a_socket_until_the_cli_revokes_it_then_the_very_next_request_is_refused(
    keyhouse: Keyhouse, workers: int
) -> None:
    alice = keyhouse.member()
    server = keyhouse.server if workers == 1 else keyhouse.serve(workers=workers)
    with server.client() as kept_alive:
        # Warm every worker's verification cache (new connections are spread over the workers).
        for _ in range(4 * workers):
            response = fresh_connection_get(server, "/", alice.auth)
            assert response.status_code == 200, response.text
            caller = response.json()["data"]["caller"]
            assert (caller["api_key_id"], caller["account"]["id"]) == (alice.key_id, alice.account_id)
        assert kept_alive.get(f"/api-keys/{alice.key_id}", headers=alice.auth).status_code == 200

        revoked = keyhouse.cli_json("keys", "revoke", alice.key_id)
        assert revoked["status"] == "revoked"

        # The very next request, on the connection open all along, then on new ones (every worker).
        refusals = [kept_alive.get("/api-keys", headers=alice.auth)]
        refusals += [fresh_connection_get(server, "/", alice.auth) for _ in range(4 * workers)]
    for response in refusals:
        assert response.status_code == 403, response.text
        body = response.json()
        assert body["error"]["code"] == "invalid_token"
        assert response.headers["request-id"] == body["meta"]["request_id"]


def test_the_served_api_answers_refusals_in_the_paddle_envelope(keyhouse: Keyhouse) -> None:
    with keyhouse.server.client() as client:
        missing = client.get("/api-keys")
        unknown_route = client.get("/nothing-here")
        health = client.get("/healthz")
    assert (missing.status_code, missing.json()["error"]["code"]) == (403, "authentication_missing")
    assert (unknown_route.status_code, unknown_route.json()["error"]["code"]) == (404, "invalid_url")
    assert (health.status_code, health.json()["data"]["database"]) == (200, "ok")
