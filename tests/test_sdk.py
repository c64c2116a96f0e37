"""The official ``paddle-python-sdk``, unchanged, against a served keyhouse over real HTTP.

Pointed at keyhouse the way ``sdk.md`` §1 shows. Routes keyhouse does not serve (discounts,
customers) stand for "a route not built yet": the SDK must still turn every refusal into an
``ApiError`` whose fields all parse, which it only does when the Paddle envelope is complete.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest
from paddle_billing import Client, Options
from paddle_billing.Exceptions.ApiError import ApiError

from keyhouse import services
from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.ids import new_id
from keyhouse.domain.permissions import Permission

if TYPE_CHECKING:
    from tests.servers import Keyhouse

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

DOCS = "https://developer.paddle.com/v1/errors/shared/"
ROUTES: dict[str, Callable[[Client], Any]] = {
    # served
    "api_keys (get_raw)": lambda client: client.get_raw("/api-keys"),
    "client_tokens.list": lambda client: list(client.client_tokens.list()),
    # not built yet (keyhouse may never build them)
    "discounts.list": lambda client: list(client.discounts.list()),
    "customers.get": lambda client: client.customers.get("ctm_01h8441jn5pcwrfhwh78jqt8hk"),
}
NOT_BUILT = ["discounts.list", "customers.get"]


def sdk(keyhouse: Keyhouse, key: str) -> Client:
    return Client(key, options=Options(environment=SimpleNamespace(base_url=keyhouse.server.url)))


def raised(call: Callable[[], Any]) -> ApiError:
    with pytest.raises(ApiError) as caught:
        call()
    return caught.value


def assert_parsed(error: ApiError, status: int, code: str) -> None:
    """Every field the SDK reads is there, and agrees with the response it came in."""
    assert error.response.status_code == status
    assert (error.error_type, error.error_code) == ("request_error", code)
    assert error.detail
    assert error.docs_url == DOCS + code
    body = error.response.json()
    assert body["error"]["detail"] == error.detail
    assert error.response.headers["request-id"] == body["meta"]["request_id"]


def unknown_key() -> str:
    """Well-formed, correct checksum, but no such key: it reaches the verifier."""
    return credentials.format_api_key(Environment.SANDBOX, new_id("apikey"), "A" * 22)


@pytest.mark.parametrize("route", [r for r in ROUTES if r not in NOT_BUILT])
@pytest.mark.parametrize(
    "bad_key",
    [
        pytest.param(unknown_key, id="unknown-key"),
        pytest.param(lambda: unknown_key()[:-3] + "000", id="bad-checksum"),
        pytest.param(credentials.new_legacy_key, id="unknown-legacy-key"),
        pytest.param(lambda: "not-a-key", id="garbage"),
    ],
)
def test_a_bad_key_raises_an_api_error_with_every_field_parsed(
    keyhouse: Keyhouse, route: str, bad_key: Callable[[], str]
) -> None:
    error = raised(lambda: ROUTES[route](sdk(keyhouse, bad_key())))
    assert_parsed(error, 403, "invalid_token")
    assert error.field_errors == ()


@pytest.mark.parametrize("route", NOT_BUILT)
def test_a_bad_key_on_a_route_not_built_yet_raises_invalid_token(keyhouse: Keyhouse, route: str) -> None:
    error = raised(lambda: ROUTES[route](sdk(keyhouse, unknown_key())))
    assert_parsed(error, 403, "invalid_token")


def test_a_revoked_key_raises_invalid_token_through_the_sdk(keyhouse: Keyhouse) -> None:
    alice = keyhouse.member()
    client = sdk(keyhouse, alice.key)
    assert client.get_raw("/api-keys").status_code == 200
    keyhouse.call(lambda deps: services.revoke_key(deps, alice.key_id))
    assert_parsed(raised(lambda: client.get_raw("/api-keys")), 403, "invalid_token")


@pytest.mark.parametrize("route", NOT_BUILT)
def test_a_good_key_on_a_route_not_built_yet_raises_invalid_url(keyhouse: Keyhouse, route: str) -> None:
    alice = keyhouse.member()
    error = raised(lambda: ROUTES[route](sdk(keyhouse, alice.key)))
    assert_parsed(error, 404, "invalid_url")
    assert error.field_errors == ()
    assert error.retry_after is None


def test_a_key_without_the_permission_raises_forbidden_naming_it(keyhouse: Keyhouse) -> None:
    alice = keyhouse.member(permissions=frozenset({Permission.PRODUCT_READ}))
    error = raised(lambda: sdk(keyhouse, alice.key).get_raw("/api-keys"))
    assert_parsed(error, 403, "forbidden")
    assert "api_key.read" in error.detail


def test_invalid_list_parameters_raise_invalid_field_with_parsed_field_errors(keyhouse: Keyhouse) -> None:
    alice = keyhouse.member()
    client = sdk(keyhouse, alice.key)
    error = raised(lambda: client.get_raw("/api-keys", {"per_page": "0", "order_by": "sideways"}))
    assert_parsed(error, 400, "invalid_field")
    assert {e.field for e in error.field_errors} == {"per_page", "order_by"}
    assert all(e.error for e in error.field_errors)


def test_the_sdk_lists_api_keys_with_its_default_lowercase_pager(keyhouse: Keyhouse) -> None:
    alice = keyhouse.member()
    response = sdk(keyhouse, alice.key).get_raw("/api-keys", {"order_by": "id[asc]", "per_page": "1"})
    body = response.json()
    assert [k["id"] for k in body["data"]] == [alice.key_id]
    assert body["meta"]["pagination"]["per_page"] == 1
