"""The permission catalogue (paddle-api.md §3): Paddle's names, write includes read, legacy is frozen."""

from __future__ import annotations

import pytest

from keyhouse.domain.permissions import LEGACY, Permission, parse_permissions, satisfies, sorted_names
from tests.spec import spec

#: components.schemas.permission of SPEC-2025-05: the catalogue when legacy keys were retired.
SPEC_2025_05 = {
    "address.read",
    "address.write",
    "adjustment.read",
    "adjustment.write",
    "business.read",
    "business.write",
    "customer.read",
    "customer.write",
    "customer_auth_token.write",
    "customer_portal_session.write",
    "discount.read",
    "discount.write",
    "notification.read",
    "notification.write",
    "notification_setting.read",
    "notification_setting.write",
    "notification_simulation.read",
    "notification_simulation.write",
    "payment_method.read",
    "payment_method.write",
    "price.read",
    "price.write",
    "product.read",
    "product.write",
    "report.read",
    "report.write",
    "subscription.read",
    "subscription.write",
    "transaction.read",
    "transaction.write",
}
ADDED_LATER = {
    "api_key.read",
    "checkout_domain.read",
    "checkout_domain.write",
    "client_token.read",
    "client_token.write",
    "metrics.read",
    "subscription_history.read",
}
WRITES_WITH_A_READ = [p for p in Permission if p.is_write and f"{p.entity}.read" in set(Permission)]
WRITE_ONLY = {"customer_auth_token.write", "customer_portal_session.write"}
READ_ONLY = {"api_key.read", "metrics.read", "subscription_history.read"}


def test_the_catalogue_is_the_37_permissions_of_the_paddle_spec() -> None:
    spec_enum = spec()["components"]["schemas"]["permission"]["enum"]
    assert len(Permission) == 37
    assert {p.value for p in Permission} == set(spec_enum)
    assert {p.value for p in Permission} == SPEC_2025_05 | ADDED_LATER


@pytest.mark.parametrize("permission", list(Permission))
def test_every_name_is_entity_dot_read_or_write_and_its_member_name_says_the_same(
    permission: Permission,
) -> None:
    entity, _, action = permission.value.partition(".")
    assert action in {"read", "write"}
    assert entity == permission.entity
    assert entity.replace("_", "").isalpha()
    assert entity.islower()
    assert permission.is_write is (action == "write")
    assert permission.name == permission.value.replace(".", "_").upper()


def test_legacy_keys_hold_exactly_the_30_permissions_of_spec_2025_05() -> None:
    assert len(LEGACY) == 30
    assert {p.value for p in LEGACY} == SPEC_2025_05
    assert not {p.value for p in LEGACY} & ADDED_LATER


@pytest.mark.parametrize("permission", list(Permission))
def test_a_permission_satisfies_itself(permission: Permission) -> None:
    assert satisfies(frozenset({permission}), permission)


@pytest.mark.parametrize("write", WRITES_WITH_A_READ, ids=str)
def test_write_includes_read(write: Permission) -> None:
    assert satisfies(frozenset({write}), Permission(f"{write.entity}.read"))


@pytest.mark.parametrize("write", WRITES_WITH_A_READ, ids=str)
def test_read_never_includes_write(write: Permission) -> None:
    read = Permission(f"{write.entity}.read")
    assert not satisfies(frozenset({read}), write)
    assert not satisfies(frozenset(Permission) - {write}, write)


def test_write_includes_the_read_of_its_own_entity_only() -> None:
    granted = frozenset({Permission.PRODUCT_WRITE})
    assert satisfies(granted, Permission.PRODUCT_READ)
    assert not satisfies(granted, Permission.PRICE_READ)
    assert not satisfies(granted, Permission.PRICE_WRITE)


def test_nothing_is_satisfied_by_no_permissions() -> None:
    assert not any(satisfies(frozenset(), p) for p in Permission)


def test_some_entities_exist_only_as_write_and_customer_auth_token_has_no_read() -> None:
    writes_only = {p.value for p in Permission if p.is_write and f"{p.entity}.read" not in set(Permission)}
    assert writes_only == WRITE_ONLY
    assert "customer_auth_token.read" not in set(Permission)
    assert parse_permissions(["customer_auth_token.read"]) == (frozenset(), ["customer_auth_token.read"])


def test_some_entities_exist_only_as_read_so_their_read_is_granted_only_by_itself() -> None:
    reads_only = {
        p.value for p in Permission if not p.is_write and f"{p.entity}.write" not in set(Permission)
    }
    assert reads_only == READ_ONLY
    assert not satisfies(frozenset(Permission) - {Permission.API_KEY_READ}, Permission.API_KEY_READ)


def test_parse_permissions_splits_known_from_unknown_names_keeping_the_unknown_in_order() -> None:
    known, unknown = parse_permissions(["product.write", "event.read", "customer.read", "simulation.read"])
    assert known == {Permission.PRODUCT_WRITE, Permission.CUSTOMER_READ}
    assert unknown == ["event.read", "simulation.read"]


def test_parse_permissions_folds_duplicates_of_a_known_name() -> None:
    assert parse_permissions(["price.read", "price.read"]) == (frozenset({Permission.PRICE_READ}), [])


def test_parse_permissions_of_nothing_is_nothing() -> None:
    assert parse_permissions([]) == (frozenset(), [])


def test_parse_permissions_knows_every_catalogue_name() -> None:
    assert parse_permissions(p.value for p in Permission) == (frozenset(Permission), [])


@pytest.mark.parametrize(
    "name",
    [
        pytest.param("event.read", id="events are notification.read"),
        pytest.param("simulation.write", id="simulations are notification_simulation"),
        pytest.param("discount_group.read", id="discount groups are discount"),
        pytest.param("customer_portal_session.read", id="write-only entity"),
        pytest.param("api_key.write", id="keys are managed by the owner only"),
        pytest.param("metrics.write", id="read-only entity metrics"),
        pytest.param("subscription_history.write", id="read-only entity subscription_history"),
        pytest.param("product.delete", id="unknown action"),
        pytest.param("product", id="entity without action"),
        pytest.param(".read", id="action without entity"),
        pytest.param("Product.read", id="capitalised"),
        pytest.param("PRODUCT_READ", id="the member name, not the value"),
        pytest.param("product.read ", id="trailing space"),
        pytest.param(" product.read", id="leading space"),
        pytest.param("product_read", id="underscore for dot"),
        pytest.param("products.read", id="plural"),
        pytest.param("*", id="wildcard"),
        pytest.param("", id="empty"),
    ],
)
def test_parse_permissions_reports_names_not_in_the_catalogue(name: str) -> None:
    assert parse_permissions(["product.read", name]) == (frozenset({Permission.PRODUCT_READ}), [name])


def test_the_wire_lists_permissions_alphabetically() -> None:
    granted = {Permission.TRANSACTION_READ, Permission.ADDRESS_READ, Permission.CUSTOMER_AUTH_TOKEN_WRITE}
    assert sorted_names(granted) == ["address.read", "customer_auth_token.write", "transaction.read"]
    assert sorted_names([]) == []
