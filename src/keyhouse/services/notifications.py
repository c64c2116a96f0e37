"""Webhooks as use cases: destinations (notification settings), notifications and their logs,
replays, and the delivery worker's two steps — claim due notifications, then record each attempt.

Scope works as for client-side tokens: a partner's key sees and changes only the destinations its
installation created and their notifications; another's are "not found".
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from datetime import timedelta

from keyhouse.domain import notifications
from keyhouse.domain.client_tokens import Creator
from keyhouse.domain.errors import (
    NotFound,
    NotificationCannotReplay,
    NotificationMaximumActiveSettingsReached,
    NotificationReplayInvalidOriginType,
)
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.ids import is_id
from keyhouse.domain.notifications import (
    MAX_ACTIVE_SETTINGS,
    Notification,
    NotificationLog,
    NotificationSetting,
    NotificationStatus,
    Outcome,
    TrafficSource,
)
from keyhouse.services import events
from keyhouse.services.client_tokens import TokenScope as Scope
from keyhouse.services.deps import Deps
from keyhouse.store import NotificationFilter, Page, PageRequest, Transaction

# --- destinations ----------------------------------------------------------------------------------


async def _check_cap(tx: Transaction, scope: Scope) -> None:
    await tx.lock_account(scope.account_id)  # concurrent creators of one account count in turn
    active = await tx.active_settings(scope.account_id, scope.environment)
    if len(active) >= MAX_ACTIVE_SETTINGS:
        raise NotificationMaximumActiveSettingsReached(
            f"This environment already has {len(active)} active notification settings, the limit "
            f"({MAX_ACTIVE_SETTINGS}). Deactivate or delete one first."
        )


async def create_setting(
    deps: Deps, scope: Scope, created_by: Creator, fields: Mapping[str, object]
) -> NotificationSetting:
    setting = notifications.new_setting(
        fields,
        account_id=scope.account_id,
        environment=scope.environment,
        created_by=created_by,
        now=deps.clock(),
        allow_private=deps.webhooks_allow_private,
    )
    async with deps.store.transaction() as tx:
        if await tx.get_account(scope.account_id) is None:
            raise NotFound(f"Account {scope.account_id} not found.")
        await _check_cap(tx, scope)
        await tx.add_setting(setting)
    return setting


async def list_settings(
    deps: Deps, scope: Scope, active: bool | None, traffic_source: TrafficSource | None, page: PageRequest
) -> Page[NotificationSetting]:
    async with deps.store.read() as tx:
        return await tx.list_settings(
            scope.account_id, scope.environment, scope.installation_id, active, traffic_source, page
        )


async def _setting_in_scope(tx: Transaction, scope: Scope, setting_id: str) -> NotificationSetting:
    setting = await tx.get_setting(setting_id) if is_id("ntfset", setting_id) else None
    if setting is None or not scope.holds(setting):
        raise NotFound(f"Notification setting {setting_id} not found.")
    return setting


async def get_setting(deps: Deps, scope: Scope, setting_id: str) -> NotificationSetting:
    async with deps.store.read() as tx:
        return await _setting_in_scope(tx, scope, setting_id)


async def update_setting(
    deps: Deps, scope: Scope, setting_id: str, changes: Mapping[str, object]
) -> NotificationSetting:
    async with deps.store.transaction() as tx:
        setting = await _setting_in_scope(tx, scope, setting_id)
        changed = notifications.change_setting(
            setting, changes, now=deps.clock(), allow_private=deps.webhooks_allow_private
        )
        if changed is not setting:
            if changed.active and not setting.active:
                await _check_cap(tx, scope)
            await tx.update_setting(changed)
    return changed


async def delete_setting(deps: Deps, scope: Scope, setting_id: str) -> None:
    async with deps.store.transaction() as tx:
        setting = await _setting_in_scope(tx, scope, setting_id)
        await tx.delete_setting(setting.id)


async def deactivate_installation_settings(deps: Deps, tx: Transaction, installation_id: str) -> None:
    """Uninstalling stops a partner's deliveries: its destinations go inactive (they are kept, so
    the merchant can see what the partner had configured)."""
    now = deps.clock()
    for setting in await tx.settings_of_installation(installation_id):
        inactive = notifications.deactivate(setting, now)
        if inactive is not setting:
            await tx.update_setting(inactive)


# --- notifications ---------------------------------------------------------------------------------


async def list_notifications(
    deps: Deps, scope: Scope, filters: NotificationFilter, page: PageRequest
) -> Page[Notification]:
    async with deps.store.read() as tx:
        return await tx.list_notifications(
            scope.account_id, scope.environment, scope.installation_id, filters, page
        )


async def _notification_in_scope(tx: Transaction, scope: Scope, notification_id: str) -> Notification:
    found = await tx.get_notification(notification_id) if is_id("ntf", notification_id) else None
    if found is None or not scope.holds(found):
        raise NotFound(f"Notification {notification_id} not found.")
    return found


async def get_notification(deps: Deps, scope: Scope, notification_id: str) -> Notification:
    async with deps.store.read() as tx:
        return await _notification_in_scope(tx, scope, notification_id)


async def list_logs(
    deps: Deps, scope: Scope, notification_id: str, page: PageRequest
) -> Page[NotificationLog]:
    async with deps.store.read() as tx:
        await _notification_in_scope(tx, scope, notification_id)
        return await tx.list_logs(notification_id, page)


async def replay(deps: Deps, scope: Scope, notification_id: str) -> Notification:
    """A new notification (``origin: replay``) for the same event and destination."""
    async with deps.store.transaction() as tx:
        original = await _notification_in_scope(tx, scope, notification_id)
        try:
            fresh, replayed = notifications.replay(original, deps.clock())
        except ValueError as refusal:
            if str(refusal) == NotificationReplayInvalidOriginType.code:
                raise NotificationReplayInvalidOriginType(
                    f"Notification {notification_id} is itself a replay; replay the original instead."
                ) from None
            raise NotificationCannotReplay(
                f"Notification {notification_id} is {original.status.value}; only delivered or failed "
                "notifications can be replayed."
            ) from None
        await tx.add_notification(fresh)
        await tx.update_notification(replayed)
    return fresh


# --- the delivery worker ---------------------------------------------------------------------------


async def claim(
    deps: Deps, owner: str, limit: int, lease: timedelta
) -> list[tuple[Notification, NotificationSetting]]:
    now = deps.clock()
    async with deps.store.transaction() as tx:
        return await tx.claim_notifications(owner, now, now + lease, limit)


async def record_attempt(
    deps: Deps,
    notification: Notification,
    setting: NotificationSetting,
    owner: str,
    outcome: Outcome,
    *,
    time_scale: float = 1.0,
    jitter: float | None = None,
) -> Notification | None:
    """Store one attempt's result; None if the lease was lost meanwhile (another worker owns it)."""
    [after] = await record_attempts(
        deps, owner, [(notification, setting, outcome)], time_scale=time_scale, jitter=jitter
    )
    return after


async def record_attempts(
    deps: Deps,
    owner: str,
    attempts: Sequence[tuple[Notification, NotificationSetting, Outcome]],
    *,
    time_scale: float = 1.0,
    jitter: float | None = None,
) -> list[Notification | None]:
    """Store several attempts' results in one transaction (a worker coalesces those that finish
    together, so a busy SQLite file sees one writer per burst, not one per delivery). Each result is
    None where the lease was lost meanwhile (another worker owns that notification now).

    When a notification exhausts its retries and its destination has delivered nothing since that
    notification's first attempt, the destination failed for the whole window: it is deactivated
    and ``notification_setting.disabled`` is emitted.
    """
    now = deps.clock()
    results: list[Notification | None] = []
    async with deps.store.transaction() as tx:
        for notification, setting, outcome in attempts:
            after, log = notifications.after_attempt(
                notification,
                outcome,
                now=now,
                jitter=random.random() if jitter is None else jitter,  # noqa: S311 - spreading retries, not a secret
                time_scale=time_scale,
            )
            if not await tx.finish_attempt(after, owner):
                # Another worker took it over (or its destination was deleted): the attempt happened.
                if await tx.get_notification(notification.id) is not None:
                    await tx.add_log(log)
                results.append(None)
                continue
            await tx.add_log(log)
            if after.status is NotificationStatus.FAILED and not outcome.permanent:
                await _disable_if_dead(deps, tx, setting.id, after)
            results.append(after)
    return results


async def _disable_if_dead(deps: Deps, tx: Transaction, setting_id: str, failed: Notification) -> None:
    setting = await tx.get_setting(setting_id)
    first = await tx.first_attempt_at(failed.id)
    if setting is None or not setting.active or first is None:
        return
    if await tx.delivered_since(setting.id, first):
        return
    now = deps.clock()
    disabled = notifications.deactivate(setting, now)
    await tx.update_setting(disabled)
    await events.record(
        tx,
        new_event(
            EventType.NOTIFICATION_SETTING_DISABLED,
            notifications.setting_json(disabled, with_secret=False),
            account_id=disabled.account_id,
            environment=disabled.environment,
            installation_id=disabled.installation_id,
            now=now,
        ),
    )
