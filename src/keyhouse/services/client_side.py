"""The client-side API's side of authentication: client tokens in, API keys from browsers out.

A client-side token is checked against the environment the caller intends (from the host, or from
the ``Keyhouse-Environment`` header the browser module sends) and against the page's ``Origin``.
An API key presented by a browser page is refused and recorded as a low-risk exposure: the key
reached a browser, where anyone could read it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from keyhouse.domain import credentials, keys
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientToken, TokenStatus, origin_allowed
from keyhouse.domain.errors import Forbidden, InvalidClientToken, NotFound
from keyhouse.domain.events import EventType, new_event
from keyhouse.domain.exposures import Exposure, ExposureSource, browser_exposure
from keyhouse.domain.keys import ApiKey
from keyhouse.domain.previews import parse_rate, rate_text
from keyhouse.services import events
from keyhouse.services.caches import ChangeCache

if TYPE_CHECKING:
    from keyhouse.services.deps import Deps

API_KEY_IN_BROWSER = (
    "API keys must never be used in a browser: anyone who opens the page can read them. "
    "Use a client-side token (test_… or live_…) for client-side operations, and keep API keys on "
    "your server. This use was recorded as an exposure of the key."
)


def wrong_environment(token_environment: Environment, intended: Environment) -> str:
    prefix = token_environment.client_token_prefix
    return (
        f"A {prefix}_ client-side token belongs to the {token_environment.wire} environment, but this "
        f"request is for {intended.wire}. Use a {intended.client_token_prefix}_ token, or initialize "
        f"with environment '{token_environment.wire}'."
    )


class ClientTokenAuthenticator:
    """Client tokens by value, cached per process until the store's change marker moves, so a
    revoke anywhere is refused on the next request."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._cache: ChangeCache[str, ClientToken | None] = ChangeCache(deps.store, 100_000)

    async def authenticate(self, value: str, intended: Environment, origin: str | None) -> ClientToken:
        parsed = credentials.parse_client_token(value)
        if parsed is None:
            raise InvalidClientToken()
        if parsed.environment is not intended:
            raise InvalidClientToken(wrong_environment(parsed.environment, intended))
        token = await self._load(value)
        if token is None or token.status is not TokenStatus.ACTIVE:
            raise InvalidClientToken()
        if not origin_allowed(token.allowed_origins, origin):
            where = f"from {origin}" if origin else "without an Origin (outside a web page)"
            raise Forbidden(
                f"This client-side token may not be used {where}. Its allowed_origins list the pages "
                "that may use it."
            )
        return token

    async def _load(self, value: str) -> ClientToken | None:
        cache = self._cache.current()
        if cache is not None and value in cache:
            return cache[value]
        async with self.deps.store.read() as tx:
            token = await tx.get_token_by_value(value)
        if cache is not None:
            cache[value] = token
        return token


async def record_browser_exposure(deps: Deps, key: ApiKey, origin: str) -> Exposure | None:
    """Once per key and origin: the exposure and its event. Never revokes (low risk, action none)."""
    async with deps.store.transaction() as tx:
        if await tx.find_exposure(key.id, ExposureSource.BROWSER, origin) is not None:
            return None
        now = deps.clock()
        exposure = browser_exposure(key, origin, now)
        await tx.add_exposure(exposure)
        current = await tx.get_key(key.id)
        if current is not None and current.exposed_at is None:
            await tx.update_key(keys.mark_exposed(current, now))
        await events.record(
            tx,
            new_event(
                EventType.API_KEY_EXPOSURE_CREATED,
                exposure.wire(),
                account_id=key.account_id,
                environment=key.environment,
                installation_id=key.installation_id,
                now=now,
            ),
        )
    return exposure


async def list_exposures(deps: Deps, account_id: str | None) -> list[Exposure]:
    async with deps.store.read() as tx:
        return await tx.list_exposures(account_id)


class PreflightPolicy:
    """Which origins get a CORS preflight answer.

    A preflight carries no credentials, so it cannot name a token: an origin is answered when some
    active token lists it, or when some active token serves every origin. The real request is then
    checked against its own token's list, which is the check that matters.
    """

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self._cache: ChangeCache[None, tuple[bool, frozenset[str]]] = ChangeCache(deps.store, 1)

    async def allows(self, origin: str) -> bool:
        cache = self._cache.current()
        state = None if cache is None else cache.get(None)
        if state is None:
            async with self.deps.store.read() as tx:
                state = await tx.origins_in_use()
            if cache is not None:
                cache[None] = state
        any_unrestricted, listed = state
        return any_unrestricted or origin_allowed(tuple(listed), origin)


async def set_tax_rate(deps: Deps, account_id: str, environment: Environment, rate: str) -> str:
    """The flat rate previews apply in one environment of an account, e.g. ``0.2`` for 20 %."""
    parsed = rate_text(parse_rate(rate))
    async with deps.store.transaction() as tx:
        if await tx.get_account(account_id) is None:
            raise NotFound(f"Account {account_id} not found.")
        await tx.set_tax_rate(account_id, environment, parsed)
    return parsed
