"""The shared SQLAlchemy Core implementation of the store; dialect specifics live beside it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime
from importlib.resources import files
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from keyhouse.domain.accounts import Account, Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind, TokenStatus
from keyhouse.domain.errors import ServiceUnavailable
from keyhouse.domain.events import Event, EventType
from keyhouse.domain.exposures import ActionTaken, Exposure, ExposureSource, RiskLevel
from keyhouse.domain.integrations import AuditEntry, Installation, Integration
from keyhouse.domain.keys import ApiKey, KeyStatus, SecretHash
from keyhouse.domain.permissions import Permission, sorted_names
from keyhouse.domain.rotations import Rotation, RotationStatus
from keyhouse.domain.usage import UsageRow
from keyhouse.store import Page, PageRequest
from keyhouse.store.catalogue import CatalogueQueries
from keyhouse.store.notifications import NotificationQueries
from keyhouse.store.tables import (
    accounts,
    api_key_exposures,
    api_key_rotations,
    api_key_secrets,
    api_key_usage,
    api_keys,
    audit_log,
    client_tokens,
    events,
    features,
    installations,
    integrations,
)


def _key_row(key: ApiKey) -> dict[str, Any]:
    return {
        "id": key.id,
        "account_id": key.account_id,
        "environment": key.environment.value,
        "name": key.name,
        "description": key.description,
        "status": key.status.value,
        "permissions": None if key.permissions is None else sorted_names(key.permissions),
        "expires_at": key.expires_at,
        "last_used_at": key.last_used_at,
        "exposed_at": key.exposed_at,
        "rotatable": key.rotatable,
        "created_at": key.created_at,
        "updated_at": key.updated_at,
        "revoked_at": key.revoked_at,
        "installation_id": key.installation_id,
        "expiring_noticed_at": key.expiring_noticed_at,
    }


def _rotation_row(rotation: Rotation) -> dict[str, Any]:
    return {
        "id": rotation.id,
        "api_key_id": rotation.api_key_id,
        "grace_period_seconds": rotation.grace_period_seconds,
        "status": rotation.status.value,
        "new_key_expires_at": rotation.new_key_expires_at,
        "expires_at": rotation.expires_at,
        "created_at": rotation.created_at,
        "updated_at": rotation.updated_at,
    }


def _rotation(row: sa.Row[Any]) -> Rotation:
    return Rotation(
        id=row.id,
        api_key_id=row.api_key_id,
        grace_period_seconds=row.grace_period_seconds,
        status=RotationStatus(row.status),
        new_key_expires_at=row.new_key_expires_at,
        expires_at=row.expires_at,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _key(row: sa.Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        name=row.name,
        description=row.description,
        status=KeyStatus(row.status),
        permissions=None if row.permissions is None else frozenset(Permission(p) for p in row.permissions),
        expires_at=row.expires_at,
        last_used_at=row.last_used_at,
        exposed_at=row.exposed_at,
        rotatable=row.rotatable,
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
        installation_id=row.installation_id,
        expiring_noticed_at=row.expiring_noticed_at,
    )


def _token_row(token: ClientToken) -> dict[str, Any]:
    return {
        "id": token.id,
        "account_id": token.account_id,
        "environment": token.environment.value,
        "token": token.token,
        "name": token.name,
        "description": token.description,
        "status": token.status.value,
        "creator_kind": token.created_by.kind.value,
        "creator_id": token.created_by.id,
        "installation_id": token.installation_id,
        "created_at": token.created_at,
        "updated_at": token.updated_at,
        "revoked_at": token.revoked_at,
        "allowed_origins": None if token.allowed_origins is None else list(token.allowed_origins),
    }


def _token(row: sa.Row[Any]) -> ClientToken:
    return ClientToken(
        id=row.id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        token=row.token,
        name=row.name,
        description=row.description,
        status=TokenStatus(row.status),
        created_by=Creator(CreatorKind(row.creator_kind), row.creator_id),
        created_at=row.created_at,
        updated_at=row.updated_at,
        revoked_at=row.revoked_at,
        allowed_origins=None if row.allowed_origins is None else tuple(row.allowed_origins),
    )


def _event(row: sa.Row[Any]) -> Event:
    return Event(
        id=row.id,
        type=EventType(row.type),
        occurred_at=row.occurred_at,
        account_id=row.account_id,
        environment=Environment(row.environment),
        installation_id=row.installation_id,
        data=row.data,
    )


def _exposure(row: sa.Row[Any]) -> Exposure:
    return Exposure(
        id=row.id,
        api_key_id=row.api_key_id,
        account_id=row.account_id,
        risk_level=RiskLevel(row.risk_level),
        action_taken=ActionTaken(row.action_taken),
        source=ExposureSource(row.source),
        reference=row.reference,
        description=row.description,
        created_at=row.created_at,
    )


def _integration(row: sa.Row[Any]) -> Integration:
    return Integration(
        id=row.id,
        name=row.name,
        early_access=row.early_access,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _installation(row: sa.Row[Any]) -> Installation:
    return Installation(
        id=row.id,
        integration_id=row.integration_id,
        account_id=row.account_id,
        environment=Environment(row.environment),
        created_at=row.created_at,
        uninstalled_at=row.uninstalled_at,
    )


#: ``estimated_total`` is exact up to this many rows and stops counting there (Paddle calls it an
#: estimate), so a list call costs the same on a page of a huge table as on a small one.
ESTIMATE_CAP = 10_000


class SqlTransaction(CatalogueQueries, NotificationQueries):
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def _page(
        self, table: sa.Table, where: sa.ColumnElement[bool], page: PageRequest
    ) -> tuple[list[sa.Row[Any]], bool, int]:
        """Rows of one cursor page (fetching one extra row tells whether more exist) and the total."""
        query = sa.select(table).where(where)
        if page.after is not None:
            query = query.where(table.c.id < page.after if page.descending else table.c.id > page.after)
        order = table.c.id.desc() if page.descending else table.c.id.asc()
        rows = list((await self.conn.execute(query.order_by(order).limit(page.limit + 1))).all())
        return rows[: page.limit], len(rows) > page.limit, await self._count(table, where, ESTIMATE_CAP)

    async def _count(self, table: sa.Table, where: sa.ColumnElement[bool], up_to: int) -> int:
        """Matching rows, counted up to ``up_to``: exact below it, so its cost is bounded by it."""
        capped = sa.select(sa.literal(1)).select_from(table).where(where).limit(up_to).subquery()
        return int((await self.conn.execute(sa.select(sa.func.count()).select_from(capped))).scalar_one())

    async def add_account(self, account: Account) -> None:
        await self.conn.execute(
            accounts.insert().values(id=account.id, name=account.name, created_at=account.created_at)
        )

    async def get_account(self, account_id: str) -> Account | None:
        row = (await self.conn.execute(accounts.select().where(accounts.c.id == account_id))).first()
        return None if row is None else Account(id=row.id, name=row.name, created_at=row.created_at)

    async def list_accounts(self) -> list[Account]:
        rows = await self.conn.execute(accounts.select().order_by(accounts.c.id))
        return [Account(id=r.id, name=r.name, created_at=r.created_at) for r in rows]

    async def add_key(self, key: ApiKey, secret: SecretHash) -> None:
        await self.conn.execute(api_keys.insert().values(**_key_row(key)))
        await self.add_secret(secret)

    async def add_secret(self, secret: SecretHash) -> None:
        await self.conn.execute(
            api_key_secrets.insert().values(
                key_id=secret.key_id,
                pepper_id=secret.pepper_id,
                digest=secret.digest,
                valid_until=secret.valid_until,
                created_at=secret.created_at,
                rotation_id=secret.rotation_id,
            )
        )

    async def add_usage(self, counts: Mapping[tuple[str, date, str], int]) -> None:
        """Add request counts per (key id, day, permission), creating rows as needed."""
        if not counts:
            return
        insert = postgresql.insert if self.conn.dialect.name == "postgresql" else sqlite.insert
        rows = [
            {"key_id": k, "day": d, "permission": p, "requests": n} for (k, d, p), n in sorted(counts.items())
        ]
        statement = insert(api_key_usage).values(rows)
        await self.conn.execute(
            statement.on_conflict_do_update(
                index_elements=["key_id", "day", "permission"],
                set_={"requests": api_key_usage.c.requests + statement.excluded.requests},
            )
        )

    async def usage_of(self, key_id: str, since: date) -> list[UsageRow]:
        query = (
            api_key_usage.select()
            .where(api_key_usage.c.key_id == key_id, api_key_usage.c.day >= since)
            .order_by(api_key_usage.c.day, api_key_usage.c.permission)
        )
        return [UsageRow(r.day, r.permission, r.requests) for r in await self.conn.execute(query)]

    async def retire_secret(self, secret: SecretHash) -> None:
        await self.conn.execute(
            api_key_secrets.update()
            .where(api_key_secrets.c.key_id == secret.key_id, api_key_secrets.c.digest == secret.digest)
            .values(valid_until=secret.valid_until)
        )

    async def delete_secret(self, secret: SecretHash) -> None:
        await self.conn.execute(
            api_key_secrets.delete().where(
                api_key_secrets.c.key_id == secret.key_id, api_key_secrets.c.digest == secret.digest
            )
        )

    async def delete_rotation_secret(self, rotation_id: str) -> None:
        await self.conn.execute(api_key_secrets.delete().where(api_key_secrets.c.rotation_id == rotation_id))

    async def add_rotation(self, rotation: Rotation) -> None:
        await self.conn.execute(api_key_rotations.insert().values(**_rotation_row(rotation)))

    async def update_rotation(self, rotation: Rotation, *, only_if_pending: bool = False) -> bool:
        query = api_key_rotations.update().where(api_key_rotations.c.id == rotation.id)
        if only_if_pending:
            query = query.where(api_key_rotations.c.status == RotationStatus.PENDING.value)
        result = await self.conn.execute(query.values(**_rotation_row(rotation)))
        return result.rowcount == 1

    async def get_rotation(self, rotation_id: str) -> Rotation | None:
        query = api_key_rotations.select().where(api_key_rotations.c.id == rotation_id)
        row = (await self.conn.execute(query)).first()
        return None if row is None else _rotation(row)

    async def pending_rotations(self, key_id: str) -> list[Rotation]:
        query = api_key_rotations.select().where(
            api_key_rotations.c.api_key_id == key_id,
            api_key_rotations.c.status == RotationStatus.PENDING.value,
        )
        return [_rotation(r) for r in await self.conn.execute(query.order_by(api_key_rotations.c.id))]

    async def list_rotations(
        self, key_id: str, ids: frozenset[str] | None, page: PageRequest
    ) -> Page[Rotation]:
        where = api_key_rotations.c.api_key_id == key_id
        if ids is not None:
            where = sa.and_(where, api_key_rotations.c.id.in_(sorted(ids)))
        rows, has_more, total = await self._page(api_key_rotations, where, page)
        return Page([_rotation(r) for r in rows], has_more, total)

    async def update_key(self, key: ApiKey) -> None:
        row = _key_row(key)
        del row["id"], row["account_id"], row["environment"], row["created_at"]
        await self.conn.execute(api_keys.update().where(api_keys.c.id == key.id).values(**row))

    async def get_key(self, key_id: str) -> ApiKey | None:
        row = (await self.conn.execute(api_keys.select().where(api_keys.c.id == key_id))).first()
        return None if row is None else _key(row)

    async def list_keys(self, account_id: str, environment: Environment, page: PageRequest) -> Page[ApiKey]:
        where = sa.and_(api_keys.c.account_id == account_id, api_keys.c.environment == environment.value)
        rows, has_more, total = await self._page(api_keys, where, page)
        return Page([_key(r) for r in rows], has_more, total)

    async def secrets_of(self, key_id: str) -> list[SecretHash]:
        rows = await self.conn.execute(
            api_key_secrets.select().where(api_key_secrets.c.key_id == key_id).order_by(api_key_secrets.c.id)
        )
        return [
            SecretHash(
                key_id=r.key_id,
                pepper_id=r.pepper_id,
                digest=bytes(r.digest),
                valid_until=r.valid_until,
                created_at=r.created_at,
                rotation_id=r.rotation_id,
            )
            for r in rows
        ]

    async def find_key_by_digest(self, digests: Sequence[bytes]) -> str | None:
        query = (
            sa.select(api_key_secrets.c.key_id).where(api_key_secrets.c.digest.in_(list(digests))).limit(1)
        )
        return (await self.conn.execute(query)).scalar_one_or_none()

    async def touch_key(self, key_id: str, last_used_at: datetime) -> None:
        await self.conn.execute(
            api_keys.update()
            .where(api_keys.c.id == key_id)
            .where(sa.or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < last_used_at))
            .values(last_used_at=last_used_at)
        )

    async def keys_near_expiry(self, now: datetime, notice_until: datetime, limit: int) -> list[ApiKey]:
        c = api_keys.c
        query = (
            api_keys.select()
            .where(
                c.status == KeyStatus.ACTIVE.value,
                c.expires_at.is_not(None),
                sa.or_(
                    c.expires_at <= now,
                    sa.and_(c.expiring_noticed_at.is_(None), c.expires_at <= notice_until),
                ),
            )
            .order_by(api_keys.c.expires_at)
            .limit(limit)
            .with_for_update(skip_locked=True)  # PostgreSQL: concurrent workers take different keys
        )
        return [_key(r) for r in await self.conn.execute(query)]

    async def keys_of_installation(self, installation_id: str) -> list[ApiKey]:
        rows = await self.conn.execute(api_keys.select().where(api_keys.c.installation_id == installation_id))
        return [_key(r) for r in rows]

    async def lock_account(self, account_id: str) -> None:
        # FOR UPDATE on PostgreSQL; SQLite ignores it, its BEGIN IMMEDIATE already serialises writers.
        await self.conn.execute(sa.select(accounts.c.id).where(accounts.c.id == account_id).with_for_update())

    # --- integrations and installations

    async def add_integration(self, integration: Integration) -> None:
        await self.conn.execute(
            integrations.insert().values(
                id=integration.id,
                name=integration.name,
                early_access=integration.early_access,
                created_at=integration.created_at,
                updated_at=integration.updated_at,
            )
        )

    async def update_integration(self, integration: Integration) -> None:
        await self.conn.execute(
            integrations.update()
            .where(integrations.c.id == integration.id)
            .values(
                name=integration.name,
                early_access=integration.early_access,
                updated_at=integration.updated_at,
            )
        )

    async def get_integration(self, integration_id: str) -> Integration | None:
        row = (
            await self.conn.execute(integrations.select().where(integrations.c.id == integration_id))
        ).first()
        return None if row is None else _integration(row)

    async def list_integrations(self) -> list[Integration]:
        return [
            _integration(r)
            for r in await self.conn.execute(integrations.select().order_by(integrations.c.id))
        ]

    async def add_installation(self, installation: Installation) -> None:
        await self.conn.execute(
            installations.insert().values(
                id=installation.id,
                integration_id=installation.integration_id,
                account_id=installation.account_id,
                environment=installation.environment.value,
                created_at=installation.created_at,
                uninstalled_at=installation.uninstalled_at,
            )
        )

    async def update_installation(self, installation: Installation) -> None:
        await self.conn.execute(
            installations.update()
            .where(installations.c.id == installation.id)
            .values(uninstalled_at=installation.uninstalled_at)
        )

    async def get_installation(self, installation_id: str) -> Installation | None:
        query = installations.select().where(installations.c.id == installation_id)
        row = (await self.conn.execute(query)).first()
        return None if row is None else _installation(row)

    async def list_installations(self, account_id: str) -> list[Installation]:
        query = (
            installations.select()
            .where(installations.c.account_id == account_id)
            .order_by(installations.c.id)
        )
        return [_installation(r) for r in await self.conn.execute(query)]

    async def allow_listed_installations(self) -> frozenset[str]:
        query = (
            sa.select(installations.c.id)
            .join(integrations, integrations.c.id == installations.c.integration_id)
            .where(integrations.c.early_access.is_(True), installations.c.uninstalled_at.is_(None))
        )
        return frozenset((await self.conn.execute(query)).scalars())

    # --- client tokens

    async def add_token(self, token: ClientToken) -> None:
        await self.conn.execute(client_tokens.insert().values(**_token_row(token)))

    async def update_token(self, token: ClientToken) -> None:
        await self.conn.execute(
            client_tokens.update()
            .where(client_tokens.c.id == token.id)
            .values(
                status=token.status.value,
                updated_at=token.updated_at,
                revoked_at=token.revoked_at,
                allowed_origins=None if token.allowed_origins is None else list(token.allowed_origins),
            )
        )

    async def get_token(self, token_id: str) -> ClientToken | None:
        row = (await self.conn.execute(client_tokens.select().where(client_tokens.c.id == token_id))).first()
        return None if row is None else _token(row)

    def _token_scope(
        self, account_id: str, environment: Environment, installation_id: str | None
    ) -> sa.ColumnElement[bool]:
        where = sa.and_(
            client_tokens.c.account_id == account_id, client_tokens.c.environment == environment.value
        )
        if installation_id is not None:
            where = sa.and_(where, client_tokens.c.installation_id == installation_id)
        return where

    async def list_tokens(
        self,
        account_id: str,
        environment: Environment,
        installation_id: str | None,
        statuses: frozenset[TokenStatus],
        page: PageRequest,
    ) -> Page[ClientToken]:
        where = sa.and_(
            self._token_scope(account_id, environment, installation_id),
            client_tokens.c.status.in_(sorted(s.value for s in statuses)),
        )
        rows, has_more, total = await self._page(client_tokens, where, page)
        return Page([_token(r) for r in rows], has_more, total)

    async def count_active_tokens(
        self, account_id: str, environment: Environment, installation_id: str | None, up_to: int
    ) -> int:
        where = sa.and_(
            self._token_scope(account_id, environment, installation_id),
            client_tokens.c.status == TokenStatus.ACTIVE.value,
        )
        return await self._count(client_tokens, where, up_to)

    async def get_token_by_value(self, value: str) -> ClientToken | None:
        row = (await self.conn.execute(client_tokens.select().where(client_tokens.c.token == value))).first()
        return None if row is None else _token(row)

    async def origins_in_use(self) -> tuple[bool, frozenset[str]]:
        active = client_tokens.c.status == TokenStatus.ACTIVE.value
        unrestricted = sa.select(client_tokens.c.id).where(active, client_tokens.c.allowed_origins.is_(None))
        any_unrestricted = (await self.conn.execute(unrestricted.limit(1))).first() is not None
        rows = await self.conn.execute(
            sa.select(client_tokens.c.allowed_origins).where(
                active, client_tokens.c.allowed_origins.is_not(None)
            )
        )
        return any_unrestricted, frozenset(origin for (origins,) in rows if origins for origin in origins)

    async def add_exposure(self, exposure: Exposure) -> None:
        await self.conn.execute(
            api_key_exposures.insert().values(
                id=exposure.id,
                api_key_id=exposure.api_key_id,
                account_id=exposure.account_id,
                risk_level=exposure.risk_level.value,
                action_taken=exposure.action_taken.value,
                source=exposure.source.value,
                reference=exposure.reference,
                description=exposure.description,
                created_at=exposure.created_at,
            )
        )

    async def find_exposure(self, api_key_id: str, source: ExposureSource, reference: str) -> Exposure | None:
        query = api_key_exposures.select().where(
            api_key_exposures.c.api_key_id == api_key_id,
            api_key_exposures.c.source == source.value,
            api_key_exposures.c.reference == reference[:250],
        )
        row = (await self.conn.execute(query)).first()
        return None if row is None else _exposure(row)

    async def list_exposures(self, account_id: str | None) -> list[Exposure]:
        query = api_key_exposures.select().order_by(api_key_exposures.c.id)
        if account_id is not None:
            query = query.where(api_key_exposures.c.account_id == account_id)
        return [_exposure(r) for r in await self.conn.execute(query)]

    async def get_tax_rate(self, account_id: str, environment: Environment) -> str:
        column = (
            accounts.c.sandbox_tax_rate if environment is Environment.SANDBOX else accounts.c.live_tax_rate
        )
        value = (
            await self.conn.execute(sa.select(column).where(accounts.c.id == account_id))
        ).scalar_one_or_none()
        return "0" if value is None else str(value)

    async def set_tax_rate(self, account_id: str, environment: Environment, rate: str) -> None:
        column = "sandbox_tax_rate" if environment is Environment.SANDBOX else "live_tax_rate"
        await self.conn.execute(accounts.update().where(accounts.c.id == account_id).values({column: rate}))

    async def tokens_of_installation(self, installation_id: str) -> list[ClientToken]:
        query = client_tokens.select().where(client_tokens.c.installation_id == installation_id)
        return [_token(r) for r in await self.conn.execute(query)]

    # --- events, features, audit

    async def add_event(self, event: Event) -> None:
        await self.conn.execute(
            events.insert().values(
                id=event.id,
                type=event.type.value,
                occurred_at=event.occurred_at,
                account_id=event.account_id,
                environment=event.environment.value,
                installation_id=event.installation_id,
                data=event.data,
            )
        )

    async def list_events(self, account_id: str, environment: Environment) -> list[Event]:
        query = (
            events.select()
            .where(events.c.account_id == account_id, events.c.environment == environment.value)
            .order_by(events.c.id)
        )
        return [_event(r) for r in await self.conn.execute(query)]

    async def list_events_page(
        self,
        account_id: str,
        environment: Environment,
        installation_id: str | None,
        types: frozenset[EventType] | None,
        page: PageRequest,
    ) -> Page[Event]:
        where = sa.and_(events.c.account_id == account_id, events.c.environment == environment.value)
        if installation_id is not None:
            where = sa.and_(where, events.c.installation_id == installation_id)
        if types is not None:
            where = sa.and_(where, events.c.type.in_(sorted(t.value for t in types)))
        rows, has_more, total = await self._page(events, where, page)
        return Page([_event(r) for r in rows], has_more, total)

    async def get_feature(self, name: str) -> str | None:
        query = sa.select(features.c.value).where(features.c.name == name)
        value: str | None = (await self.conn.execute(query)).scalar_one_or_none()
        return value

    async def set_feature(self, name: str, value: str, at: datetime) -> None:
        updated = await self.conn.execute(
            features.update().where(features.c.name == name).values(value=value, updated_at=at)
        )
        if updated.rowcount == 0:
            await self.conn.execute(features.insert().values(name=name, value=value, updated_at=at))

    async def add_audit(self, entry: AuditEntry) -> None:
        await self.conn.execute(
            audit_log.insert().values(
                at=entry.at,
                actor=entry.actor,
                subject=entry.subject,
                field=entry.field,
                old=entry.old,
                new=entry.new,
            )
        )

    async def list_audit(self, subject_prefix: str) -> list[AuditEntry]:
        query = (
            audit_log.select().where(audit_log.c.subject.startswith(subject_prefix)).order_by(audit_log.c.id)
        )
        return [
            AuditEntry(at=r.at, actor=r.actor, subject=r.subject, field=r.field, old=r.old, new=r.new)
            for r in await self.conn.execute(query)
        ]


def _busy(exc: sa.exc.OperationalError) -> bool:
    """Lock contention that outlasted the busy timeout: a retryable condition, not a bug."""
    text = str(exc.orig).lower()
    return "database is locked" in text or "lock timeout" in text or "deadlock detected" in text


class SqlStore:
    """What both dialects share; subclasses open the engine and say how changes are noticed."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine

    @asynccontextmanager
    async def _connection(self, *, write: bool) -> AsyncIterator[SqlTransaction]:
        try:
            async with self.engine.connect() as conn:
                conn = await conn.execution_options(keyhouse_write=write)
                async with conn.begin():
                    yield SqlTransaction(conn)
        except sa.exc.OperationalError as exc:
            if _busy(exc):
                raise ServiceUnavailable("The database is busy. Retry the request shortly.") from None
            raise

    def transaction(self) -> Any:
        return self._connection(write=True)

    def read(self) -> Any:
        return self._connection(write=False)

    def change_marker(self) -> int | None:
        return None

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(sa.text("SELECT 1"))
        except Exception:  # any failure means "not healthy"; healthz reports it, never raises
            return False
        return True

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        await self.engine.dispose()


def _run_alembic(conn: Any) -> None:
    config = Config()
    config.set_main_option("script_location", str(files("keyhouse.store") / "migrations"))
    config.attributes["connection"] = conn
    command.upgrade(config, "head")


async def migrate(store: SqlStore) -> None:
    """Bring the schema to the newest migration (idempotent)."""
    async with store.engine.connect() as conn:
        await conn.run_sync(_run_alembic)
        await conn.commit()
