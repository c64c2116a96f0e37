"""Partner integrations: register, allow-list, install into an account, uninstall; feature switches."""

from __future__ import annotations

import time
from dataclasses import replace

from keyhouse.domain import client_tokens, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.errors import Conflict, InvalidField, NotFound
from keyhouse.domain.events import EventType
from keyhouse.domain.ids import new_id
from keyhouse.domain.integrations import (
    DEFAULT_AVAILABILITY,
    AuditEntry,
    Availability,
    Feature,
    Installation,
    Integration,
)
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.permissions import Permission
from keyhouse.services.client_tokens import token_event
from keyhouse.services.deps import Deps
from keyhouse.services.keys import create_key, key_event
from keyhouse.services.notifications import deactivate_installation_settings


async def register_integration(deps: Deps, name: str, *, early_access: bool, actor: str) -> Integration:
    name = name.strip()
    if not 1 <= len(name) <= 150:
        raise InvalidField.on("name", "length must be between 1 and 150")
    now = deps.clock()
    integration = Integration(
        id=new_id("itg"), name=name, early_access=early_access, created_at=now, updated_at=now
    )
    async with deps.store.transaction() as tx:
        await tx.add_integration(integration)
        await tx.add_audit(
            AuditEntry(
                at=now,
                actor=actor,
                subject=f"integration:{integration.id}",
                field="early_access",
                old=None,
                new=str(early_access).lower(),
            )
        )
    return integration


async def list_integrations(deps: Deps) -> list[tuple[Integration, list[AuditEntry]]]:
    """Every integration with its history of allow-list changes."""
    async with deps.store.read() as tx:
        found = await tx.list_integrations()
        return [(i, await tx.list_audit(f"integration:{i.id}")) for i in found]


async def set_early_access(deps: Deps, integration_id: str, early_access: bool, *, actor: str) -> Integration:
    async with deps.store.transaction() as tx:
        integration = await tx.get_integration(integration_id)
        if integration is None:
            raise NotFound(f"Integration {integration_id} not found.")
        if integration.early_access == early_access:
            return integration
        now = deps.clock()
        updated = replace(integration, early_access=early_access, updated_at=now)
        await tx.update_integration(updated)
        await tx.add_audit(
            AuditEntry(
                at=now,
                actor=actor,
                subject=f"integration:{integration_id}",
                field="early_access",
                old=str(integration.early_access).lower(),
                new=str(early_access).lower(),
            )
        )
    deps.gate.forget()
    return updated


async def install(
    deps: Deps,
    *,
    account_id: str,
    environment: Environment,
    integration_id: str,
    permissions: frozenset[Permission],
) -> tuple[Installation, ApiKey, str]:
    """Install an integration into one environment of an account: an installation and its own key."""
    async with deps.store.transaction() as tx:
        integration = await tx.get_integration(integration_id)
        if integration is None:
            raise NotFound(f"Integration {integration_id} not found.")
        if await tx.get_account(account_id) is None:
            raise NotFound(f"Account {account_id} not found.")
        installation = Installation(
            id=new_id("inst"),
            integration_id=integration_id,
            account_id=account_id,
            environment=environment,
            created_at=deps.clock(),
        )
        await tx.add_installation(installation)
        key, plaintext = await create_key(
            deps,
            account_id=account_id,
            environment=environment,
            name=f"{integration.name} integration",
            description=f"Installed integration {integration.id} ({installation.id}).",
            permissions=permissions,
            installation_id=installation.id,
            tx=tx,
        )
    deps.gate.forget()
    return installation, key, plaintext


async def uninstall(deps: Deps, installation_id: str) -> Installation:
    """Revoke the installation's keys and every client-side token it created and deactivate its
    notification settings, in one transaction."""
    async with deps.store.transaction() as tx:
        installation = await tx.get_installation(installation_id)
        if installation is None:
            raise NotFound(f"Installation {installation_id} not found.")
        if not installation.active:
            raise Conflict(f"Installation {installation_id} is already uninstalled.")
        now = deps.clock()
        # first, so the revocations below are not queued for the partner's own destinations
        await deactivate_installation_settings(deps, tx, installation_id)
        for key in await tx.keys_of_installation(installation_id):
            revoked = keys.revoke(key, now)
            if revoked is not key:
                await tx.update_key(revoked)
                await key_event(deps, tx, EventType.API_KEY_REVOKED, revoked)
        for token in await tx.tokens_of_installation(installation_id):
            revoked_token = client_tokens.revoke(token, now)
            if revoked_token is not token:
                await tx.update_token(revoked_token)
                await token_event(deps, tx, EventType.CLIENT_TOKEN_REVOKED, revoked_token)
        installation = replace(installation, uninstalled_at=now)
        await tx.update_installation(installation)
    deps.gate.forget()
    return installation


async def list_installations(deps: Deps, account_id: str) -> list[Installation]:
    async with deps.store.read() as tx:
        if await tx.get_account(account_id) is None:
            raise NotFound(f"Account {account_id} not found.")
        return await tx.list_installations(account_id)


# --- feature switches -----------------------------------------------------------------------------


async def feature_state(deps: Deps, feature: Feature) -> Availability:
    async with deps.store.read() as tx:
        value = await tx.get_feature(feature.value)
    return DEFAULT_AVAILABILITY[feature] if value is None else Availability(value)


async def set_feature(
    deps: Deps, feature: Feature, availability: Availability, *, actor: str
) -> Availability:
    async with deps.store.transaction() as tx:
        stored = await tx.get_feature(feature.value)
        current = DEFAULT_AVAILABILITY[feature] if stored is None else Availability(stored)
        if current is not availability:
            now = deps.clock()
            await tx.set_feature(feature.value, availability.value, now)
            await tx.add_audit(
                AuditEntry(
                    at=now,
                    actor=actor,
                    subject=f"feature:{feature.value}",
                    field="availability",
                    old=current.value,
                    new=availability.value,
                )
            )
    deps.gate.forget()
    return availability


async def feature_history(deps: Deps) -> list[AuditEntry]:
    async with deps.store.read() as tx:
        return await tx.list_audit("feature:")


class Gate:
    """The early-access state, read from the store at most once a second per process, and at once
    after any credential change (an installation creates a key, which moves the change marker).

    The operator's switches live in the store, so ``features set`` and ``integrations update`` reach
    every worker of every server within a second, with no restart; a new installation's key works
    on its first request.
    """

    TTL_SECONDS = 1.0

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._loaded_at = float("-inf")
        self._marker: int | None = None
        self._state: tuple[Availability, frozenset[str]] = (Availability.EARLY_ACCESS, frozenset())

    def forget(self) -> None:
        self._loaded_at = float("-inf")

    async def state(self) -> tuple[Availability, frozenset[str]]:
        """The client-tokens API availability and the allow-listed installation ids."""
        now = time.monotonic()
        marker = self.deps.store.change_marker()
        if now - self._loaded_at >= self.TTL_SECONDS or marker is None or marker != self._marker:
            async with self.deps.store.read() as tx:
                stored = await tx.get_feature(Feature.CLIENT_TOKENS_API.value)
                allow_listed = await tx.allow_listed_installations()
            availability = (
                DEFAULT_AVAILABILITY[Feature.CLIENT_TOKENS_API] if stored is None else Availability(stored)
            )
            self._state = (availability, allow_listed)
            self._loaded_at = now
            self._marker = marker
        return self._state
