"""Client-side tokens through the server API and the CLI: create, list, read, revoke.

A token's scope is one account and environment and, for a partner, its own installation: another
installation's token is "not found", exactly like a token that does not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from keyhouse.domain import client_tokens
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind, TokenStatus
from keyhouse.domain.errors import Conflict, Forbidden, NotFound
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.integrations import client_tokens_gate
from keyhouse.domain.keys import ApiKey, Denied
from keyhouse.services import events
from keyhouse.services.deps import Deps
from keyhouse.store import Page, PageRequest, Transaction


class Owned(Protocol):
    @property
    def account_id(self) -> str: ...
    @property
    def environment(self) -> Environment: ...
    @property
    def installation_id(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class TokenScope:
    """What a caller may see: an environment of an account, narrowed to one installation for partners."""

    account_id: str
    environment: Environment
    installation_id: str | None = None

    @classmethod
    def of_key(cls, key: ApiKey) -> TokenScope:
        return cls(key.account_id, key.environment, key.installation_id)

    def creator(self, key: ApiKey) -> Creator:
        if key.installation_id is not None:
            return Creator(CreatorKind.INSTALLATION, key.installation_id)
        return Creator(CreatorKind.API_KEY, key.id)

    def holds(self, entity: Owned) -> bool:
        """Whether the entity (a token, a notification setting, a notification) is in this scope."""
        return (
            entity.account_id == self.account_id
            and entity.environment is self.environment
            and (self.installation_id is None or entity.installation_id == self.installation_id)
        )


async def check_gate(deps: Deps, key: ApiKey) -> None:
    """The early-access gate of the server API's ``/client-tokens`` (after the permission check)."""
    availability, allow_listed = await deps.gate.state()
    decision = client_tokens_gate(availability, key, allow_listed)
    if isinstance(decision, Denied):
        raise Forbidden(decision.reason)


async def token_event(deps: Deps, tx: Transaction, type_: EventType, token: ClientToken) -> None:
    await events.record(
        tx,
        new_event(
            type_,
            client_tokens.to_wire(token),
            account_id=token.account_id,
            environment=token.environment,
            installation_id=token.installation_id,
            now=deps.clock(),
        ),
    )


async def create_token(
    deps: Deps,
    scope: TokenScope,
    *,
    name: object,
    description: object,
    created_by: Creator,
    allowed_origins: object = None,
) -> ClientToken:
    token = client_tokens.issue_token(
        account_id=scope.account_id,
        environment=scope.environment,
        name=name,
        description=description,
        created_by=created_by,
        now=deps.clock(),
        allowed_origins=allowed_origins,
    )
    async with deps.store.transaction() as tx:
        if await tx.get_account(scope.account_id) is None:
            raise NotFound(f"Account {scope.account_id} not found.")
        await tx.lock_account(scope.account_id)  # caps count rows: creators of one account queue here
        if scope.installation_id is not None:
            count = await tx.count_active_tokens(
                scope.account_id,
                scope.environment,
                scope.installation_id,
                up_to=deps.token_cap_per_installation,
            )
            if count >= deps.token_cap_per_installation:
                raise Conflict(
                    f"This installation already has {count} active client-side tokens, the limit "
                    f"({deps.token_cap_per_installation}). Revoke unused tokens first."
                )
        count = await tx.count_active_tokens(
            scope.account_id, scope.environment, None, up_to=deps.token_cap_per_environment
        )
        if count >= deps.token_cap_per_environment:
            raise Conflict(
                f"This environment already has {count} active client-side tokens, the limit "
                f"({deps.token_cap_per_environment}). Revoke unused tokens first."
            )
        await tx.add_token(token)
        await token_event(deps, tx, EventType.CLIENT_TOKEN_CREATED, token)
    return token


async def list_tokens(
    deps: Deps, scope: TokenScope, statuses: frozenset[TokenStatus], page: PageRequest
) -> Page[ClientToken]:
    async with deps.store.read() as tx:
        return await tx.list_tokens(
            scope.account_id, scope.environment, scope.installation_id, statuses, page
        )


async def get_token(deps: Deps, scope: TokenScope, token_id: str) -> ClientToken:
    async with deps.store.read() as tx:
        token = await tx.get_token(token_id)
    if token is None or not scope.holds(token):
        raise NotFound(f"Client-side token {token_id} not found.")
    return token


async def update_token(
    deps: Deps, scope: TokenScope, token_id: str, changes: dict[str, object]
) -> ClientToken:
    """PATCH: ``status`` active → revoked emits ``client_token.revoked`` (the same status is a no-op,
    back is refused); ``allowed_origins`` (extension) emits ``client_token.updated``."""
    now = deps.clock()
    async with deps.store.transaction() as tx:
        token = await tx.get_token(token_id)
        if token is None or not scope.holds(token):
            raise NotFound(f"Client-side token {token_id} not found.")
        changed = token
        if "allowed_origins" in changes:
            changed = client_tokens.change_origins(changed, changes["allowed_origins"], now)
            if changed is not token:
                await token_event(deps, tx, EventType.CLIENT_TOKEN_UPDATED, changed)
        if "status" in changes:
            revoked = client_tokens.change_status(changed, changes["status"], now)
            if revoked is not changed:
                await token_event(deps, tx, EventType.CLIENT_TOKEN_REVOKED, revoked)
            changed = revoked
        if changed is not token:
            await tx.update_token(changed)
    return changed


async def update_status(deps: Deps, scope: TokenScope, token_id: str, status: object) -> ClientToken:
    return await update_token(deps, scope, token_id, {"status": status})


async def revoke_token(deps: Deps, scope: TokenScope, token_id: str) -> ClientToken:
    return await update_status(deps, scope, token_id, TokenStatus.REVOKED.value)
