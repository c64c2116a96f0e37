"""Rotating an API key's secret: started by the key itself, completed by the new secret's first use.

A key only ever sees and rotates itself; asking about another key is refused the same way whether
or not that key exists.
"""

from __future__ import annotations

from keyhouse.domain import rotations
from keyhouse.domain.errors import Forbidden, NotFound
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.ids import is_id
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.rotations import Rotation
from keyhouse.services import events
from keyhouse.services.deps import Deps
from keyhouse.services.keys import key_event
from keyhouse.store import Page, PageRequest, Transaction

ONLY_ITSELF = "An API key can only rotate, list and read its own rotations; authenticate with that key."


def _self_only(caller: ApiKey, key_id: str) -> None:
    if caller.id != key_id:
        raise Forbidden(ONLY_ITSELF)


async def _rotation_event(
    deps: Deps, tx: Transaction, type_: EventType, rotation: Rotation, key: ApiKey
) -> None:
    await events.record(
        tx,
        new_event(
            type_,
            rotations.rotation_json(rotation, key),  # the secret never goes into an event
            account_id=key.account_id,
            environment=key.environment,
            installation_id=key.installation_id,
            now=rotation.updated_at,
        ),
    )


async def rotate(
    deps: Deps,
    caller: ApiKey,
    key_id: str,
    *,
    grace_period_seconds: object,
    new_key_expires_at: object = None,
) -> tuple[Rotation, ApiKey, str]:
    """A new pending rotation and the new secret's plaintext (shown once). Cancels a pending one."""
    _self_only(caller, key_id)
    now = deps.clock()
    async with deps.store.transaction() as tx:
        await tx.lock_account(caller.account_id)  # concurrent rotations of one key take turns
        key = await tx.get_key(key_id)
        if key is None:
            raise NotFound(f"API key {key_id} not found.")
        rotation, plaintext, secret = rotations.start(
            key,
            grace_period_seconds=grace_period_seconds,
            new_key_expires_at=new_key_expires_at,
            now=now,
            pepper=deps.peppers.current,
        )
        for pending in await tx.pending_rotations(key.id):
            canceled = rotations.cancel(pending, now)
            # Its first use may be completing it right now (PostgreSQL: that writer holds the row):
            # a rotation that completed meanwhile stays completed and keeps its secret.
            if not await tx.update_rotation(canceled, only_if_pending=True):
                continue
            await tx.delete_rotation_secret(pending.id)  # never used, or it would not be pending
            await _rotation_event(deps, tx, EventType.API_KEY_ROTATION_UPDATED, canceled, key)
        await tx.add_rotation(rotation)
        await tx.add_secret(secret)
        await _rotation_event(deps, tx, EventType.API_KEY_ROTATION_CREATED, rotation, key)
    return rotation, key, plaintext


async def complete(deps: Deps, key_id: str, rotation_id: str) -> None:
    """The rotation's secret authenticated for the first time: start the old secrets' grace period.

    Concurrent first uses race to here; only the one that still finds it pending changes anything.
    """
    now = deps.clock()
    async with deps.store.transaction() as tx:
        rotation = await tx.get_rotation(rotation_id)
        key = await tx.get_key(key_id)
        if rotation is None or key is None or rotation.status is not rotations.RotationStatus.PENDING:
            return
        done, changed_key = rotations.complete(rotation, key, now)
        if not await tx.update_rotation(done, only_if_pending=True):
            return
        assert done.expires_at is not None
        for secret in await tx.secrets_of(key.id):
            if secret.rotation_id == rotation.id:
                continue
            if not secret.valid_at(now):  # dead since an earlier rotation: keep only the newest old one
                await tx.delete_secret(secret)
                continue
            retired = rotations.retire(secret, done.expires_at)
            if retired is not secret:
                await tx.retire_secret(retired)
        if changed_key is not key:
            await tx.update_key(changed_key)
            await key_event(deps, tx, EventType.API_KEY_UPDATED, changed_key)
        await _rotation_event(deps, tx, EventType.API_KEY_ROTATION_UPDATED, done, changed_key)


async def list_rotations(
    deps: Deps, caller: ApiKey, key_id: str, ids: frozenset[str] | None, page: PageRequest
) -> Page[Rotation]:
    _self_only(caller, key_id)
    async with deps.store.read() as tx:
        return await tx.list_rotations(key_id, ids, page)


async def get_rotation(deps: Deps, caller: ApiKey, key_id: str, rotation_id: str) -> Rotation:
    _self_only(caller, key_id)
    async with deps.store.read() as tx:
        rotation = await tx.get_rotation(rotation_id) if is_id("apkrot", rotation_id) else None
    if rotation is None or rotation.api_key_id != key_id:
        raise NotFound(f"API key rotation {rotation_id} not found.")
    return rotation
