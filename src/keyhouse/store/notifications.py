"""Webhook queries (settings, notifications, logs, leases), mixed into
:class:`keyhouse.store.sql.SqlTransaction`.

The notifications table is the delivery queue. A worker *claims* due rows by writing a lease
(owner and expiry) in one short transaction, delivers outside any transaction, then records the
attempt only if it still holds the lease. PostgreSQL claims with ``FOR UPDATE SKIP LOCKED`` so
workers never wait on each other; SQLite has one writer at a time (``BEGIN IMMEDIATE``), so the
same conditional update is enough there.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.events import EventType
from keyhouse.domain.notifications import (
    PENDING,
    Notification,
    NotificationLog,
    NotificationSetting,
    NotificationStatus,
    Origin,
    TrafficSource,
)
from keyhouse.store import NotificationFilter, Page, PageRequest
from keyhouse.store.tables import events, notification_logs, notification_settings, notifications


class _Sql(Protocol):
    conn: AsyncConnection

    async def _page(
        self, table: sa.Table, where: sa.ColumnElement[bool], page: PageRequest
    ) -> tuple[list[sa.Row[Any]], bool, int]: ...


def _setting_row(s: NotificationSetting) -> dict[str, Any]:
    return {
        "id": s.id,
        "account_id": s.account_id,
        "environment": s.environment.value,
        "description": s.description,
        "destination": s.destination,
        "active": s.active,
        "api_version": s.api_version,
        "include_sensitive_fields": s.include_sensitive_fields,
        "subscribed_events": [t.value for t in s.subscribed_events],
        "endpoint_secret_key": s.endpoint_secret_key,
        "traffic_source": s.traffic_source.value,
        "creator_kind": s.created_by.kind.value,
        "creator_id": s.created_by.id,
        "installation_id": s.installation_id,
        "created_at": s.created_at,
        "updated_at": s.updated_at,
    }


def _setting(row: sa.Row[Any]) -> NotificationSetting:
    return NotificationSetting(
        id=row.id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        description=row.description,
        destination=row.destination,
        active=row.active,
        api_version=row.api_version,
        include_sensitive_fields=row.include_sensitive_fields,
        # a type a newer keyhouse wrote and this one does not know is skipped, not fatal
        subscribed_events=tuple(
            EventType(t) for t in row.subscribed_events if t in EventType._value2member_map_
        ),
        endpoint_secret_key=row.endpoint_secret_key,
        traffic_source=TrafficSource(row.traffic_source),
        created_by=Creator(CreatorKind(row.creator_kind), row.creator_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _notification_row(n: Notification) -> dict[str, Any]:
    return {
        "id": n.id,
        "setting_id": n.setting_id,
        "event_id": n.event_id,
        "account_id": n.account_id,
        "environment": n.environment.value,
        "installation_id": n.installation_id,
        "type": n.type,
        "status": n.status.value,
        "origin": n.origin.value,
        "payload": n.payload,
        "occurred_at": n.occurred_at,
        "created_at": n.created_at,
        "due_at": n.due_at,
        "delivered_at": n.delivered_at,
        "replayed_at": n.replayed_at,
        "last_attempt_at": n.last_attempt_at,
        "retry_at": n.retry_at,
        "times_attempted": n.times_attempted,
    }


def _notification(row: sa.Row[Any]) -> Notification:
    return Notification(
        id=row.id,
        setting_id=row.setting_id,
        event_id=row.event_id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        installation_id=row.installation_id,
        type=row.type,
        status=NotificationStatus(row.status),
        origin=Origin(row.origin),
        payload=row.payload,
        occurred_at=row.occurred_at,
        created_at=row.created_at,
        due_at=row.due_at,
        delivered_at=row.delivered_at,
        replayed_at=row.replayed_at,
        last_attempt_at=row.last_attempt_at,
        retry_at=row.retry_at,
        times_attempted=row.times_attempted,
    )


def _log(row: sa.Row[Any]) -> NotificationLog:
    return NotificationLog(
        id=row.id,
        notification_id=row.notification_id,
        response_code=row.response_code,
        response_content_type=row.response_content_type,
        response_body=row.response_body,
        attempted_at=row.attempted_at,
    )


def _scope(
    table: sa.Table, account_id: str, environment: Environment, installation_id: str | None
) -> sa.ColumnElement[bool]:
    where = sa.and_(table.c.account_id == account_id, table.c.environment == environment.value)
    if installation_id is not None:
        where = sa.and_(where, table.c.installation_id == installation_id)
    return where


class NotificationQueries:
    # --- settings -------------------------------------------------------------------------------
    async def add_setting(self: _Sql, setting: NotificationSetting) -> None:
        await self.conn.execute(notification_settings.insert().values(**_setting_row(setting)))

    async def update_setting(self: _Sql, setting: NotificationSetting) -> None:
        row = _setting_row(setting)
        await self.conn.execute(
            notification_settings.update().where(notification_settings.c.id == setting.id).values(**row)
        )

    async def get_setting(self: _Sql, setting_id: str) -> NotificationSetting | None:
        query = notification_settings.select().where(notification_settings.c.id == setting_id)
        row = (await self.conn.execute(query)).first()
        return None if row is None else _setting(row)

    async def delete_setting(self: _Sql, setting_id: str) -> None:
        """The destination with its notifications and their logs (Paddle: "logs are lost")."""
        doomed = sa.select(notifications.c.id).where(notifications.c.setting_id == setting_id)
        await self.conn.execute(
            notification_logs.delete().where(notification_logs.c.notification_id.in_(doomed))
        )
        await self.conn.execute(notifications.delete().where(notifications.c.setting_id == setting_id))
        await self.conn.execute(
            notification_settings.delete().where(notification_settings.c.id == setting_id)
        )

    async def list_settings(
        self: _Sql,
        account_id: str,
        environment: Environment,
        installation_id: str | None,
        active: bool | None,
        traffic_source: TrafficSource | None,
        page: PageRequest,
    ) -> Page[NotificationSetting]:
        where = _scope(notification_settings, account_id, environment, installation_id)
        if active is not None:
            where = sa.and_(where, notification_settings.c.active.is_(active))
        if traffic_source is not None:
            where = sa.and_(where, notification_settings.c.traffic_source == traffic_source.value)
        rows, has_more, total = await self._page(notification_settings, where, page)
        return Page([_setting(r) for r in rows], has_more, total)

    async def active_settings(
        self: _Sql, account_id: str, environment: Environment
    ) -> list[NotificationSetting]:
        """Every active destination of an environment: who may receive its next event."""
        query = notification_settings.select().where(
            _scope(notification_settings, account_id, environment, None),
            notification_settings.c.active.is_(True),
        )
        return [_setting(r) for r in await self.conn.execute(query.order_by(notification_settings.c.id))]

    async def settings_of_installation(self: _Sql, installation_id: str) -> list[NotificationSetting]:
        query = notification_settings.select().where(
            notification_settings.c.installation_id == installation_id
        )
        return [_setting(r) for r in await self.conn.execute(query.order_by(notification_settings.c.id))]

    # --- notifications and logs -----------------------------------------------------------------
    async def add_notification(self: _Sql, notification: Notification) -> None:
        await self.conn.execute(notifications.insert().values(**_notification_row(notification)))

    async def update_notification(self: _Sql, notification: Notification) -> None:
        await self.conn.execute(
            notifications.update()
            .where(notifications.c.id == notification.id)
            .values(**_notification_row(notification))
        )

    async def get_notification(self: _Sql, notification_id: str) -> Notification | None:
        row = (
            await self.conn.execute(notifications.select().where(notifications.c.id == notification_id))
        ).first()
        return None if row is None else _notification(row)

    async def list_notifications(
        self: _Sql,
        account_id: str,
        environment: Environment,
        installation_id: str | None,
        filters: NotificationFilter,
        page: PageRequest,
    ) -> Page[Notification]:
        c = notifications.c
        where = _scope(notifications, account_id, environment, installation_id)
        if filters.setting_ids is not None:
            where = sa.and_(where, c.setting_id.in_(sorted(filters.setting_ids)))
        if filters.statuses is not None:
            where = sa.and_(where, c.status.in_(sorted(s.value for s in filters.statuses)))
        if filters.search is not None:
            pattern = "%" + filters.search.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            where = sa.and_(where, sa.or_(c.id.like(pattern, escape="\\"), c.type.like(pattern, escape="\\")))
        if filters.occurred_from is not None:
            where = sa.and_(where, c.occurred_at >= filters.occurred_from)
        if filters.occurred_to is not None:
            where = sa.and_(where, c.occurred_at < filters.occurred_to)
        rows, has_more, total = await self._page(notifications, where, page)
        return Page([_notification(r) for r in rows], has_more, total)

    async def add_log(self: _Sql, log: NotificationLog) -> None:
        await self.conn.execute(
            notification_logs.insert().values(
                id=log.id,
                notification_id=log.notification_id,
                response_code=log.response_code,
                response_content_type=log.response_content_type,
                response_body=log.response_body,
                attempted_at=log.attempted_at,
            )
        )

    async def list_logs(self: _Sql, notification_id: str, page: PageRequest) -> Page[NotificationLog]:
        where = notification_logs.c.notification_id == notification_id
        rows, has_more, total = await self._page(notification_logs, where, page)
        return Page([_log(r) for r in rows], has_more, total)

    async def delivered_since(self: _Sql, setting_id: str, since: datetime) -> bool:
        """Whether any notification reached this destination at or after ``since``."""
        c = notifications.c
        query = sa.select(c.id).where(
            c.setting_id == setting_id,
            c.status == NotificationStatus.DELIVERED.value,
            c.delivered_at >= since,
        )
        return (await self.conn.execute(query.limit(1))).first() is not None

    async def first_attempt_at(self: _Sql, notification_id: str) -> datetime | None:
        query = sa.select(sa.func.min(notification_logs.c.attempted_at)).where(
            notification_logs.c.notification_id == notification_id
        )
        value: datetime | None = (
            await self.conn.execute(query)
        ).scalar_one_or_none()  # min() keeps UtcDateTime
        return value

    # --- the worker's queue ---------------------------------------------------------------------
    async def claim_notifications(
        self: _Sql, owner: str, now: datetime, lease_until: datetime, limit: int
    ) -> list[tuple[Notification, NotificationSetting]]:
        """Lease up to ``limit`` due notifications of active destinations to ``owner``.

        Due: pending, ``due_at`` reached, and no unexpired lease (a killed worker's claims come back
        once their lease runs out).
        """
        c = notifications.c
        due = (
            sa.select(c.id)
            .join(notification_settings, notification_settings.c.id == c.setting_id)
            .where(
                c.status.in_(sorted(s.value for s in PENDING)),
                c.due_at <= now,
                sa.or_(c.lease_until.is_(None), c.lease_until < now),
                notification_settings.c.active.is_(True),
            )
            .order_by(c.due_at)
            .limit(limit)
            .with_for_update(of=notifications, skip_locked=True)  # PostgreSQL; SQLite ignores it
        )
        ids = list((await self.conn.execute(due)).scalars())
        if not ids:
            return []
        await self.conn.execute(
            notifications.update().where(c.id.in_(ids)).values(lease_owner=owner, lease_until=lease_until)
        )
        claimed = [
            _notification(r)
            for r in await self.conn.execute(notifications.select().where(c.id.in_(ids)).order_by(c.due_at))
        ]
        setting_ids = sorted({n.setting_id for n in claimed})
        settings = {
            r.id: _setting(r)
            for r in await self.conn.execute(
                notification_settings.select().where(notification_settings.c.id.in_(setting_ids))
            )
        }
        return [(n, settings[n.setting_id]) for n in claimed]

    async def finish_attempt(self: _Sql, notification: Notification, owner: str) -> bool:
        """Record an attempt's result and release the lease — only if ``owner`` still holds it."""
        result = await self.conn.execute(
            notifications.update()
            .where(notifications.c.id == notification.id, notifications.c.lease_owner == owner)
            .values(**_notification_row(notification), lease_owner=None, lease_until=None)
        )
        return result.rowcount == 1

    async def purge_before(self: _Sql, cutoff: datetime, limit: int) -> int:
        """Delete up to ``limit`` events older than ``cutoff`` with their notifications and logs
        (pending notifications of a purged event go too: no retry window is that long)."""
        query = sa.select(events.c.id).where(events.c.occurred_at < cutoff)  # ix_events_occurred
        old = list((await self.conn.execute(query.order_by(events.c.occurred_at).limit(limit))).scalars())
        if not old:
            return 0
        doomed = sa.select(notifications.c.id).where(notifications.c.event_id.in_(old))
        await self.conn.execute(
            notification_logs.delete().where(notification_logs.c.notification_id.in_(doomed))
        )
        await self.conn.execute(notifications.delete().where(notifications.c.event_id.in_(old)))
        await self.conn.execute(events.delete().where(events.c.id.in_(old)))
        return len(old)

    async def pending_count(self: _Sql) -> int:
        """Notifications not yet delivered or failed, in every account (the worker's backlog)."""
        query = (
            sa.select(sa.func.count())
            .select_from(notifications)
            .where(notifications.c.status.in_(sorted(s.value for s in PENDING)))
        )
        return int((await self.conn.execute(query)).scalar_one())
