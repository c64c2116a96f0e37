"""The permission catalogue of Paddle Billing API v1, as data.

Grammar: ``<entity>.read`` or ``<entity>.write``, the entity in snake_case. Rules:

* **Write includes read** (Paddle: "Write automatically includes read."), so a key granted
  ``product.write`` passes a route that needs ``product.read``.
* Some entities exist only as one half: ``customer_auth_token.write``,
  ``customer_portal_session.write`` (no ``.read``); ``api_key.read``, ``metrics.read``,
  ``subscription_history.read`` (no ``.write``: API keys are managed by the account owner only).
* Names that do not exist and are refused as unknown: ``event.*`` (events are ``notification.read``),
  ``simulation.*`` (it is ``notification_simulation.*``), ``discount_group.*`` (``discount.*``).

``LEGACY`` freezes the catalogue as it stood when Paddle retired legacy keys (SPEC-2025-05): a legacy
key holds exactly those and never silently gains a permission added later.

NOTE: the string values are wire format; never rename one. Keep the list alphabetical.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from functools import lru_cache


class Permission(StrEnum):
    ADDRESS_READ = "address.read"
    ADDRESS_WRITE = "address.write"
    ADJUSTMENT_READ = "adjustment.read"
    ADJUSTMENT_WRITE = "adjustment.write"
    API_KEY_READ = "api_key.read"
    BUSINESS_READ = "business.read"
    BUSINESS_WRITE = "business.write"
    CHECKOUT_DOMAIN_READ = "checkout_domain.read"
    CHECKOUT_DOMAIN_WRITE = "checkout_domain.write"
    CLIENT_TOKEN_READ = "client_token.read"
    CLIENT_TOKEN_WRITE = "client_token.write"
    CUSTOMER_READ = "customer.read"
    CUSTOMER_WRITE = "customer.write"
    CUSTOMER_AUTH_TOKEN_WRITE = "customer_auth_token.write"
    CUSTOMER_PORTAL_SESSION_WRITE = "customer_portal_session.write"
    DISCOUNT_READ = "discount.read"
    DISCOUNT_WRITE = "discount.write"
    METRICS_READ = "metrics.read"
    NOTIFICATION_READ = "notification.read"
    NOTIFICATION_WRITE = "notification.write"
    NOTIFICATION_SETTING_READ = "notification_setting.read"
    NOTIFICATION_SETTING_WRITE = "notification_setting.write"
    NOTIFICATION_SIMULATION_READ = "notification_simulation.read"
    NOTIFICATION_SIMULATION_WRITE = "notification_simulation.write"
    PAYMENT_METHOD_READ = "payment_method.read"
    PAYMENT_METHOD_WRITE = "payment_method.write"
    PRICE_READ = "price.read"
    PRICE_WRITE = "price.write"
    PRODUCT_READ = "product.read"
    PRODUCT_WRITE = "product.write"
    REPORT_READ = "report.read"
    REPORT_WRITE = "report.write"
    SUBSCRIPTION_READ = "subscription.read"
    SUBSCRIPTION_WRITE = "subscription.write"
    SUBSCRIPTION_HISTORY_READ = "subscription_history.read"
    TRANSACTION_READ = "transaction.read"
    TRANSACTION_WRITE = "transaction.write"

    @property
    def entity(self) -> str:
        return self.value.rpartition(".")[0]

    @property
    def is_write(self) -> bool:
        return self.value.endswith(".write")


#: The catalogue when legacy keys were retired (Paddle's spec of 2025-05): 30 permissions.
LEGACY: frozenset[Permission] = frozenset(Permission) - {
    Permission.API_KEY_READ,
    Permission.CHECKOUT_DOMAIN_READ,
    Permission.CHECKOUT_DOMAIN_WRITE,
    Permission.CLIENT_TOKEN_READ,
    Permission.CLIENT_TOKEN_WRITE,
    Permission.METRICS_READ,
    Permission.SUBSCRIPTION_HISTORY_READ,
}


def satisfies(granted: frozenset[Permission], needed: Permission) -> bool:
    """True when ``granted`` holds ``needed`` itself or, for a read, the entity's write."""
    if needed in granted:
        return True
    if needed.is_write:
        return False
    write = f"{needed.entity}.write"
    return write in Permission._value2member_map_ and Permission(write) in granted


def parse_permissions(names: Iterable[str]) -> tuple[frozenset[Permission], list[str]]:
    """Split names into known permissions and the unknown names, in the order given."""
    known: set[Permission] = set()
    unknown: list[str] = []
    for name in names:
        if name in Permission._value2member_map_:
            known.add(Permission(name))
        else:
            unknown.append(name)
    return frozenset(known), unknown


def sorted_names(permissions: Iterable[Permission]) -> list[str]:
    """The wire order: alphabetical, as Paddle lists them."""
    if isinstance(permissions, frozenset):
        return list(_sorted_names(permissions))
    return sorted(p.value for p in permissions)


@lru_cache(maxsize=1024)
def _sorted_names(permissions: frozenset[Permission]) -> tuple[str, ...]:
    # Keys hold a handful of distinct permission sets; GET / lists them on every call.
    return tuple(sorted(p.value for p in permissions))
