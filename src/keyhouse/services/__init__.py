"""Use cases: short async functions, each over one transaction of the store.

Services never know which database is behind ``Deps.store`` and never read configuration: what they
need (clock, peppers, caps) arrives in :class:`Deps`, built by ``bootstrap``.
"""

from keyhouse.services.auth import Authenticator
from keyhouse.services.deps import Deps, Peppers
from keyhouse.services.keys import (
    create_account,
    create_key,
    get_account,
    get_key,
    import_legacy_key,
    list_accounts,
    list_keys,
    resolve_permissions,
    revoke_key,
)
from keyhouse.services.seed import DEFAULT_DEMO_ORIGINS, DemoPage, Seeded, demo_page, seed

__all__ = [
    "DEFAULT_DEMO_ORIGINS",
    "Authenticator",
    "DemoPage",
    "Deps",
    "Peppers",
    "Seeded",
    "create_account",
    "create_key",
    "demo_page",
    "get_account",
    "get_key",
    "import_legacy_key",
    "list_accounts",
    "list_keys",
    "resolve_permissions",
    "revoke_key",
    "seed",
]
