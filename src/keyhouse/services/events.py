"""Reading the events outbox through the API: an integration sees only its installation's events."""

from __future__ import annotations

from keyhouse.domain.events import Event, EventType
from keyhouse.domain.keys import ApiKey
from keyhouse.services.deps import Deps
from keyhouse.store import Page, PageRequest


async def list_events(
    deps: Deps, key: ApiKey, types: frozenset[EventType] | None, page: PageRequest
) -> Page[Event]:
    """Merchant keys see every event of their environment; a partner's key only those about entities
    its own installation owns (its keys and tokens)."""
    async with deps.store.read() as tx:
        return await tx.list_events_page(key.account_id, key.environment, key.installation_id, types, page)
