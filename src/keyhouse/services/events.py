"""The events outbox: recording an event with its notifications, and reading events through the API
(an integration sees only its installation's events)."""

from __future__ import annotations

from datetime import timedelta

from keyhouse.domain import notifications
from keyhouse.domain.events import Event, EventType
from keyhouse.domain.keys import ApiKey
from keyhouse.services.deps import Deps
from keyhouse.store import Page, PageRequest, Transaction

#: Paddle keeps events and notifications for 90 days; so does keyhouse.
RETENTION = timedelta(days=90)


async def purge(deps: Deps, batch: int = 1000) -> int:
    """The retention job (run by ``keyhouse worker``): events older than 90 days go, with their
    notifications and logs, a batch per transaction so writers are never held up for long."""
    purged = 0
    while True:
        async with deps.store.transaction() as tx:
            removed = await tx.purge_before(deps.clock() - RETENTION, batch)
        purged += removed
        if removed < batch:
            return purged


async def record(tx: Transaction, event: Event) -> None:
    """Write the event and one notification per destination that receives it, in the caller's
    transaction: the change, its event and its deliveries commit together or not at all."""
    await tx.add_event(event)
    for setting in await tx.active_settings(event.account_id, event.environment):
        if notifications.receives(setting, event):
            await tx.add_notification(notifications.new_notification(setting, event, event.occurred_at))


async def list_events(
    deps: Deps, key: ApiKey, types: frozenset[EventType] | None, page: PageRequest
) -> Page[Event]:
    """Merchant keys see every event of their environment; a partner's key only those about entities
    its own installation owns (its keys and tokens)."""
    async with deps.store.read() as tx:
        return await tx.list_events_page(key.account_id, key.environment, key.installation_id, types, page)
