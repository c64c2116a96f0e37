"""``POST /secret-scanning/reports``: GitHub's secret-scanning partner program, on every store.

GitHub posts a JSON list of ``{token, type, url, source}``, signed with ECDSA P-256 over SHA-256 of
the raw body (``Github-Public-Key-Signature``, by the key named in ``Github-Public-Key-Identifier``).
keyhouse answers a bare JSON list of ``{token_raw, token_type, label}``. A leaked key that still works
is revoked in the request that reports it (high risk: ``api_key_exposure.created`` then
``api_key.revoked``, paddle-api.md §2.4); one already revoked or expired is low risk and nothing is
done. Client-side tokens are public by design: recorded, never revoked. Look-alikes whose checksum
fails cost no database look-up.

The scanner here is a P-256 key pair made for the test run, published in GitHub's JSON format.
"""

from __future__ import annotations

import base64
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from keyhouse import services
from keyhouse.bootstrap import load_scanner_keys
from keyhouse.config import ConfigError, Settings
from keyhouse.domain import credentials
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import ClientToken, Creator, CreatorKind, TokenStatus
from keyhouse.domain.errors import Conflict
from keyhouse.domain.events import EventType
from keyhouse.domain.exposures import ActionTaken, Exposure, ExposureSource, RiskLevel
from keyhouse.domain.ids import new_id
from keyhouse.domain.integrations import AuditEntry
from keyhouse.domain.keys import ApiKey, KeyStatus
from keyhouse.domain.times import rfc3339
from keyhouse.services import client_tokens
from keyhouse.services.client_tokens import TokenScope
from keyhouse.services.keys import reactivate_key
from keyhouse.services.secret_scanning import BAD_SIGNATURE, UNSIGNED, ScannerKeys
from tests.conftest import FakeClock, Member
from tests.test_api import add_key, bearer, error, ok
from tests.test_cli import clear_keyhouse_env
from tests.test_key_refusals import wrong_secret

SANDBOX, LIVE = Environment.SANDBOX, Environment.LIVE
PATH = "/secret-scanning/reports"
URL = "https://github.com/acme/shop/blob/3f1c2d9/config.js"
#: GitHub's identifiers are hex SHA-256 digests of the key.
CURRENT_ID = "bcb53661c06b4728e59d897fb6165d5c9cda0fd9cdf9d09ead458168deb7518c"
OLDER_ID = "90a421169f0a406205f1563a953312f0be898d3c7b6c06b681aa86a874555f4a"
SCANNER = ec.generate_private_key(ec.SECP256R1())
OLDER_SCANNER = ec.generate_private_key(ec.SECP256R1())
IMPOSTOR = ec.generate_private_key(ec.SECP256R1())


def public_pem(private: ec.EllipticCurvePrivateKey) -> str:
    return private.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()


def github_public_keys() -> str:
    """What GitHub publishes at api.github.com/meta/public_keys/secret_scanning."""
    return json.dumps(
        {
            "public_keys": [
                {"key_identifier": OLDER_ID, "key": public_pem(OLDER_SCANNER), "is_current": False},
                {"key_identifier": CURRENT_ID, "key": public_pem(SCANNER), "is_current": True},
            ]
        }
    )


@pytest.fixture(autouse=True)
def scanner_keys(request: pytest.FixtureRequest) -> None:
    """The scanner's published keys on the app's deps (tests without a store need none)."""
    if "deps" in request.fixturenames:
        deps: services.Deps = request.getfixturevalue("deps")
        deps.scanner_keys = ScannerKeys.from_github_json(github_public_keys())


def sign(body: bytes, private: ec.EllipticCurvePrivateKey = SCANNER) -> str:
    return base64.b64encode(private.sign(body, ec.ECDSA(hashes.SHA256()))).decode()


def signed(
    body: bytes, key_id: str = CURRENT_ID, private: ec.EllipticCurvePrivateKey = SCANNER
) -> dict[str, str]:
    return {
        "Github-Public-Key-Identifier": key_id,
        "Github-Public-Key-Signature": sign(body, private),
        "Content-Type": "application/json",
    }


def match(
    token: str, *, type_: str = "paddle_api_key", url: str = URL, source: str = "content"
) -> dict[str, str]:
    return {"token": token, "type": type_, "url": url, "source": source}


def encode(matches: list[dict[str, str]]) -> bytes:
    return json.dumps(matches).encode()


async def post(
    client: httpx.AsyncClient, body: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    """POST ``body`` as GitHub would: signed by the current key unless ``headers`` says otherwise."""
    return await client.post(PATH, content=body, headers=signed(body) if headers is None else headers)


async def report(client: httpx.AsyncClient, *matches: dict[str, str]) -> list[dict[str, str]]:
    """Report ``matches``, signed; GitHub's answer (a bare list, not Paddle's envelope)."""
    response = await post(client, encode(list(matches)))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer: list[dict[str, str]] = response.json()
    assert isinstance(answer, list)
    return answer


def labels(answer: list[dict[str, str]]) -> list[str]:
    return [a["label"] for a in answer]


async def stored(deps: services.Deps, key_id: str) -> ApiKey:
    async with deps.store.read() as tx:
        key = await tx.get_key(key_id)
    assert key is not None
    return key


async def exposures_of(deps: services.Deps, account_id: str | None = None) -> list[Exposure]:
    async with deps.store.read() as tx:
        return await tx.list_exposures(account_id)


async def api_events(
    client: httpx.AsyncClient, member: Member, environment: Environment = SANDBOX
) -> list[dict[str, Any]]:
    """GET /events with the merchant's own key, oldest first."""
    url = "/events?order_by=id[ASC]&per_page=200"
    body = ok(await client.get(url, headers=member.auth(environment)), "/events")
    data: list[dict[str, Any]] = body["data"]
    return data


def about(events: list[dict[str, Any]], key_id: str) -> list[dict[str, Any]]:
    """The events about one key: the key itself, or an exposure of it."""
    return [e for e in events if key_id in (e["data"].get("id"), e["data"].get("api_key_id"))]


@dataclass
class State:
    """Everything a report may change, to show that a refused one changed nothing."""

    keys: list[ApiKey]
    exposures: list[Exposure]
    events: list[Any]
    audit: list[AuditEntry]


async def state(deps: services.Deps, member: Member, *key_ids: str) -> State:
    async with deps.store.read() as tx:
        found = [await tx.get_key(k) for k in (*member.key_ids.values(), *key_ids)]
        return State(
            keys=[k for k in found if k is not None],
            exposures=await tx.list_exposures(None),
            events=[
                *await tx.list_events(member.account_id, SANDBOX),
                *await tx.list_events(member.account_id, LIVE),
            ],
            audit=await tx.list_audit(""),
        )


async def a_token(deps: services.Deps, member: Member) -> ClientToken:
    return await client_tokens.create_token(
        deps,
        TokenScope(member.account_id, SANDBOX),
        name="Checkout page",
        description=None,
        created_by=Creator(CreatorKind.CLI, "alice"),
    )


def bad_checksum(plaintext: str) -> str:
    last = plaintext[-1]
    changed = plaintext[:-1] + ("A" if last != "A" else "B")
    assert credentials.parse_api_key(changed) is None
    return changed


# --- a store that reports every look-up --------------------------------------------------------------


@dataclass
class StoreSpy:
    """What a request asked of the store: transactions opened, and each Transaction method called."""

    opened: list[str] = field(default_factory=list)
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)

    def called(self, name: str) -> list[tuple[Any, ...]]:
        return [args for method, args in self.calls if method == name]


class _RecordingTransaction:
    def __init__(self, tx: Any, spy: StoreSpy) -> None:
        self._tx, self._spy = tx, spy

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._tx, name)
        if not callable(attribute):
            return attribute

        def record(*args: Any, **kwargs: Any) -> Any:
            self._spy.calls.append((name, args))
            return attribute(*args, **kwargs)

        return record


def spy_on(deps: services.Deps, monkeypatch: pytest.MonkeyPatch) -> StoreSpy:
    """From now on, record what the store is asked (a hand-written wrapper, not a mock)."""
    spy = StoreSpy()
    store = deps.store

    def wrap(name: str) -> Callable[[], contextlib.AbstractAsyncContextManager[Any]]:
        original = getattr(store, name)

        @contextlib.asynccontextmanager
        async def opened() -> AsyncIterator[Any]:
            spy.opened.append(name)
            async with original() as tx:
                yield _RecordingTransaction(tx, spy)

        return opened

    for name in ("transaction", "read"):
        monkeypatch.setattr(store, name, wrap(name))
    return spy


# --- a leaked key that works ---------------------------------------------------------------------


async def test_a_leaked_key_that_works_is_revoked_and_answered_true_positive(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice, expires_at=clock() + timedelta(days=30))
    clock.advance(minutes=5)
    answer = await report(client, match(plaintext))
    assert answer == [{"token_raw": plaintext, "token_type": "paddle_api_key", "label": "true_positive"}]

    after = await stored(deps, key.id)
    assert after.status is KeyStatus.REVOKED
    assert after.exposed_at == after.revoked_at == after.updated_at == clock()
    [exposure] = await exposures_of(deps)
    assert exposure == Exposure(
        id=exposure.id,
        api_key_id=key.id,
        account_id=alice.account_id,
        risk_level=RiskLevel.HIGH,
        action_taken=ActionTaken.REVOKED,
        source=ExposureSource.GITHUB,
        reference=URL,
        description="Found by secret scanning in content.",
        created_at=clock(),
    )
    body = ok(await client.get(f"/api-keys/{key.id}", headers=alice.auth()), "/api-keys/{api_key_id}")
    assert (body["data"]["status"], body["data"]["exposed_at"]) == ("revoked", rfc3339(clock()))


async def test_a_key_revoked_for_exposure_is_refused_saying_so_and_can_never_be_reactivated(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    await report(client, match(plaintext))
    revoked_at = clock()
    clock.advance(minutes=1)  # well inside the 60-minute reactivation window
    err = error(await client.get("/api-keys", headers=bearer(plaintext)), 403, "invalid_token", "/api-keys")
    assert err["detail"] == (
        f"This API key was revoked at {rfc3339(revoked_at)} because it was found exposed; create a new key."
    )
    with pytest.raises(Conflict, match="revoked because it was exposed"):
        await reactivate_key(deps, key.id)
    assert (await stored(deps, key.id)).status is KeyStatus.REVOKED


async def test_the_exposure_event_comes_before_the_revocation_event(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    await report(client, match(plaintext))
    [exposure] = await exposures_of(deps)
    seen = about(await api_events(client, alice), key.id)
    assert [e["event_type"] for e in seen] == [
        "api_key.created",
        "api_key_exposure.created",
        "api_key.revoked",
    ]
    assert seen[1]["data"] == {
        "id": exposure.id,
        "api_key_id": key.id,
        "risk_level": "high",
        "action_taken": "revoked",
        "source": "github",
        "reference": URL,
        "description": "Found by secret scanning in content.",
        "created_at": rfc3339(clock()),
    }
    assert seen[2]["data"]["id"] == key.id
    assert (seen[2]["data"]["status"], seen[2]["data"]["exposed_at"]) == ("revoked", rfc3339(clock()))
    assert seen[1]["occurred_at"] == seen[2]["occurred_at"] == rfc3339(clock())
    # The outbox holds them in the same order.
    async with deps.store.read() as tx:
        types = [e.type for e in await tx.list_events(alice.account_id, SANDBOX)]
    assert types[-2:] == [EventType.API_KEY_EXPOSURE_CREATED, EventType.API_KEY_REVOKED]


async def test_the_same_report_again_records_no_second_exposure_and_no_event(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    assert labels(await report(client, match(plaintext))) == ["true_positive"]
    before = await state(deps, alice, key.id)
    clock.advance(minutes=10)  # scanners retry
    assert labels(await report(client, match(plaintext))) == ["true_positive"]
    assert await state(deps, alice, key.id) == before
    assert len(before.exposures) == 1


async def test_the_same_key_found_at_another_url_is_a_low_risk_exposure_that_revokes_nothing_again(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    await report(client, match(plaintext))
    first = await stored(deps, key.id)
    clock.advance(minutes=10)
    elsewhere = "https://github.com/acme/fork/blob/9e8d7c6/config.js"
    assert labels(await report(client, match(plaintext, url=elsewhere))) == ["true_positive"]
    exposures = await exposures_of(deps, alice.account_id)
    assert [(e.reference, e.risk_level, e.action_taken) for e in exposures] == [
        (URL, RiskLevel.HIGH, ActionTaken.REVOKED),
        (elsewhere, RiskLevel.LOW, ActionTaken.NONE),
    ]
    assert await stored(deps, key.id) == first  # first exposure time and revocation kept
    seen = [e["event_type"] for e in about(await api_events(client, alice), key.id)]
    assert seen == [
        "api_key.created",
        "api_key_exposure.created",
        "api_key.revoked",
        "api_key_exposure.created",
    ]


async def test_keys_of_two_accounts_in_one_report_are_each_revoked_in_their_own_account(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, charlie: Member
) -> None:
    answer = await report(client, match(alice.keys[SANDBOX]), match(charlie.keys[LIVE], source="commit"))
    assert labels(answer) == ["true_positive", "true_positive"]
    assert (await stored(deps, alice.key_ids[SANDBOX])).status is KeyStatus.REVOKED
    assert (await stored(deps, charlie.key_ids[LIVE])).status is KeyStatus.REVOKED
    assert (await stored(deps, charlie.key_ids[SANDBOX])).status is KeyStatus.ACTIVE
    assert [e.api_key_id for e in await exposures_of(deps, alice.account_id)] == [alice.key_ids[SANDBOX]]
    assert [e.api_key_id for e in await exposures_of(deps, charlie.account_id)] == [charlie.key_ids[LIVE]]
    async with deps.store.read() as tx:
        live = [e.type for e in await tx.list_events(charlie.account_id, LIVE)]
        sandbox = [e.type for e in await tx.list_events(charlie.account_id, SANDBOX)]
    assert live[-2:] == [EventType.API_KEY_EXPOSURE_CREATED, EventType.API_KEY_REVOKED]
    assert EventType.API_KEY_EXPOSURE_CREATED not in sandbox


# --- a leaked key that no longer works --------------------------------------------------------------


async def test_a_revoked_key_reported_is_a_low_risk_exposure_and_is_not_revoked_again(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    revoked = await services.revoke_key(deps, key.id)
    clock.advance(minutes=5)
    assert labels(await report(client, match(plaintext))) == ["true_positive"]
    [exposure] = await exposures_of(deps)
    assert (exposure.risk_level, exposure.action_taken) == (RiskLevel.LOW, ActionTaken.NONE)
    after = await stored(deps, key.id)
    assert (after.status, after.revoked_at, after.exposed_at) == (
        KeyStatus.REVOKED,
        revoked.revoked_at,
        clock(),
    )
    seen = [e["event_type"] for e in about(await api_events(client, alice), key.id)]
    assert seen.count("api_key.revoked") == 1
    assert seen[-1] == "api_key_exposure.created"


async def test_an_expired_key_reported_is_a_low_risk_exposure_and_stays_expired(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    expires = clock() + timedelta(days=1)
    key, plaintext = await add_key(deps, alice, expires_at=expires)
    clock.now = expires + timedelta(hours=1)  # the expiry job has not run
    assert labels(await report(client, match(plaintext))) == ["true_positive"]
    [exposure] = await exposures_of(deps)
    assert (exposure.risk_level, exposure.action_taken) == (RiskLevel.LOW, ActionTaken.NONE)
    after = await stored(deps, key.id)
    assert (after.status_at(clock()), after.revoked_at, after.exposed_at) == (
        KeyStatus.EXPIRED,
        None,
        clock(),
    )
    seen = [e["event_type"] for e in about(await api_events(client, alice), key.id)]
    assert "api_key.revoked" not in seen
    assert seen[-1] == "api_key_exposure.created"
    err = error(await client.get("/api-keys", headers=bearer(plaintext)), 403, "invalid_token", "/api-keys")
    assert err["detail"] == f"This API key expired at {rfc3339(expires)}."


# --- not a real key -----------------------------------------------------------------------------


async def test_a_wrong_secret_with_a_valid_id_and_checksum_is_false_positive_and_changes_nothing(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    key, plaintext = await add_key(deps, alice)
    guess = wrong_secret(plaintext)
    assert credentials.parse_api_key(guess) is not None
    before = await state(deps, alice, key.id)
    answer = await report(client, match(guess))
    assert answer == [{"token_raw": guess, "token_type": "paddle_api_key", "label": "false_positive"}]
    assert await state(deps, alice, key.id) == before
    ok(await client.get(f"/api-keys/{key.id}", headers=bearer(plaintext)), "/api-keys/{api_key_id}")


LOOK_ALIKES: list[Any] = [
    pytest.param(lambda real: bad_checksum(real), id="bad-checksum"),
    pytest.param(lambda real: real[:-4], id="truncated"),
    pytest.param(lambda real: real.replace("pdl_sdbx_", "pdl_test_"), id="unknown-environment-marker"),
    pytest.param(lambda real: "Ab3" * 16 + "Z9", id="legacy-key-shape"),
    pytest.param(lambda real: "test_" + "A" * 27, id="client-token-shape-in-capitals"),
    pytest.param(lambda real: "not a credential at all", id="prose"),
]


@pytest.mark.parametrize("look_alike", LOOK_ALIKES)
async def test_a_look_alike_is_false_positive_without_any_database_lookup(
    client: httpx.AsyncClient,
    deps: services.Deps,
    alice: Member,
    monkeypatch: pytest.MonkeyPatch,
    look_alike: Callable[[str], str],
) -> None:
    token = look_alike(alice.keys[SANDBOX])
    before = await state(deps, alice)
    spy = spy_on(deps, monkeypatch)
    answer = await report(client, match(token))
    assert answer == [{"token_raw": token, "token_type": "paddle_api_key", "label": "false_positive"}]
    assert spy.calls == []  # no get_key, no secrets_of, no get_token_by_value
    monkeypatch.undo()
    assert await state(deps, alice) == before


async def test_a_report_of_only_look_alikes_costs_no_database_query(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood of random strings must not reach the database at all: not even a transaction, which
    on SQLite takes the write lock (``BEGIN IMMEDIATE``) every request shares."""
    tokens = [bad_checksum(alice.keys[SANDBOX]), "Ab3" * 16 + "Z9", "garbage"]
    spy = spy_on(deps, monkeypatch)
    answer = await report(client, *(match(t) for t in tokens))
    assert labels(answer) == ["false_positive"] * 3
    assert spy.opened == []


async def test_a_mixed_report_is_answered_in_order_and_only_well_formed_credentials_are_looked_up(
    client: httpx.AsyncClient,
    deps: services.Deps,
    alice: Member,
    charlie: Member,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key, plaintext = await add_key(deps, alice)
    token = await a_token(deps, alice)
    unknown_id = new_id("apikey")
    unknown_key = credentials.format_api_key(SANDBOX, unknown_id, "A" * 22)
    unknown_token = "test_" + "0" * 27
    # Charlie's live key id under the sandbox marker, with a checksum that fits: the wrong environment.
    relabelled = credentials.format_api_key(SANDBOX, charlie.key_ids[LIVE], charlie.keys[LIVE].split("_")[4])
    matches = [
        match(plaintext),
        match(bad_checksum(alice.keys[SANDBOX])),
        match(wrong_secret(alice.keys[SANDBOX])),
        match(unknown_key),
        match(token.token, type_="paddle_client_token"),
        match(unknown_token, type_="paddle_client_token"),
        match(relabelled),
        match("nothing", type_="other"),
    ]
    spy = spy_on(deps, monkeypatch)
    answer = await report(client, *matches)
    monkeypatch.undo()
    assert [(a["token_raw"], a["token_type"]) for a in answer] == [(m["token"], m["type"]) for m in matches]
    assert labels(answer) == [
        "true_positive",
        "false_positive",
        "false_positive",
        "false_positive",
        "true_positive",
        "false_positive",
        "false_positive",
        "false_positive",
    ]
    looked_up = [args[0] for args in spy.called("get_key")]
    assert looked_up == [key.id, alice.key_ids[SANDBOX], unknown_id, charlie.key_ids[LIVE]]
    assert [args[0] for args in spy.called("get_token_by_value")] == [token.token, unknown_token]
    assert (await stored(deps, charlie.key_ids[LIVE])).status is KeyStatus.ACTIVE
    assert [e.api_key_id for e in await exposures_of(deps)] == [key.id]


async def test_the_largest_report_of_look_alikes_is_answered_match_by_match(
    client: httpx.AsyncClient, alice: Member
) -> None:
    tokens = [f"pdl_sdbx_apikey_{n:026d}_{'x' * 22}_AAA" for n in range(1000)]
    answer = await report(client, *(match(t) for t in tokens))
    assert [a["token_raw"] for a in answer] == tokens
    assert set(labels(answer)) == {"false_positive"}


# --- client-side tokens ----------------------------------------------------------------------------


async def test_a_reported_client_side_token_is_recorded_in_the_audit_log_and_never_revoked(
    client: httpx.AsyncClient, deps: services.Deps, clock: FakeClock, alice: Member
) -> None:
    token = await a_token(deps, alice)
    clock.advance(minutes=5)
    answer = await report(client, match(token.token, type_="paddle_client_token", source="commit"))
    assert answer == [
        {"token_raw": token.token, "token_type": "paddle_client_token", "label": "true_positive"}
    ]
    async with deps.store.read() as tx:
        audit = await tx.list_audit(token.id)
        after = await tx.get_token(token.id)
        events = await tx.list_events(alice.account_id, SANDBOX)
    assert audit == [
        AuditEntry(
            at=clock(),
            actor="secret-scanning:commit",
            subject=token.id,
            field="exposed_at",
            old=None,
            new=URL,
        )
    ]
    assert after == token
    assert after.status is TokenStatus.ACTIVE
    assert [e.type for e in events if e.data.get("id") == token.id] == [EventType.CLIENT_TOKEN_CREATED]
    assert await exposures_of(deps) == []


async def test_an_unknown_client_side_token_is_false_positive_and_not_recorded(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    await a_token(deps, alice)
    before = await state(deps, alice)
    answer = await report(client, match("live_" + "a" * 27, type_="paddle_client_token"))
    assert labels(answer) == ["false_positive"]
    assert await state(deps, alice) == before


# --- who may report --------------------------------------------------------------------------------


Forge = Callable[[bytes], tuple[bytes, dict[str, str]]]


def _without(*names: str) -> Forge:
    return lambda b: (b, {k: v for k, v in signed(b).items() if k not in names})


def _signature(value: str) -> Forge:
    return lambda b: (b, {**signed(b), "Github-Public-Key-Signature": value})


#: Each way a report can fail to be GitHub's: from the real body ``b``, the body sent and its headers.
NOT_GITHUBS: list[Any] = [
    pytest.param(
        _without("Github-Public-Key-Identifier", "Github-Public-Key-Signature"), UNSIGNED, id="unsigned"
    ),
    pytest.param(_without("Github-Public-Key-Identifier"), UNSIGNED, id="no-key-identifier"),
    pytest.param(_without("Github-Public-Key-Signature"), UNSIGNED, id="no-signature"),
    pytest.param(_signature(""), UNSIGNED, id="empty-signature"),
    pytest.param(lambda b: (b, signed(b, key_id="0" * 64)), BAD_SIGNATURE, id="unknown-key-identifier"),
    pytest.param(lambda b: (b, signed(b, private=IMPOSTOR)), BAD_SIGNATURE, id="signed-by-another-key"),
    pytest.param(
        lambda b: (b, signed(b, key_id=CURRENT_ID, private=OLDER_SCANNER)),
        BAD_SIGNATURE,
        id="older-key-named-as-current",
    ),
    pytest.param(
        lambda b: (b.replace(b"acme/shop", b"acme/shoq"), signed(b)),
        BAD_SIGNATURE,
        id="body-changed-after-signing",
    ),
    pytest.param(lambda b: (b + b" ", signed(b)), BAD_SIGNATURE, id="body-extended-after-signing"),
    pytest.param(_signature("not base64!"), BAD_SIGNATURE, id="signature-not-base64"),
    pytest.param(_signature(base64.b64encode(b"\x01" * 70).decode()), BAD_SIGNATURE, id="signature-not-der"),
]


@pytest.mark.parametrize(("forge", "detail"), NOT_GITHUBS)
async def test_a_report_not_signed_by_a_published_scanner_key_is_forbidden_and_changes_nothing(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, forge: Forge, detail: str
) -> None:
    body, headers = forge(encode([match(alice.keys[SANDBOX])]))
    before = await state(deps, alice)
    err = error(await post(client, body, headers), 403, "forbidden", PATH, "POST")
    assert err["detail"] == detail
    assert await state(deps, alice) == before


async def test_a_report_signed_by_an_older_published_key_is_accepted(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    body = encode([match(alice.keys[SANDBOX])])
    response = await post(client, body, signed(body, key_id=OLDER_ID, private=OLDER_SCANNER))
    assert response.status_code == 200, response.text
    assert labels(response.json()) == ["true_positive"]


async def test_without_configured_scanner_keys_every_report_is_forbidden(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    deps.scanner_keys = None
    before = await state(deps, alice)
    err = error(await post(client, encode([match(alice.keys[SANDBOX])])), 403, "forbidden", PATH, "POST")
    assert "KEYHOUSE_SECRET_SCANNING_KEYS_FILE" in err["detail"]
    assert await state(deps, alice) == before


async def test_an_unsigned_malformed_report_is_forbidden_before_it_is_read(client: httpx.AsyncClient) -> None:
    response = await client.post(PATH, content=b"{not json", headers={"Content-Type": "application/json"})
    assert error(response, 403, "forbidden", PATH, "POST")["detail"] == UNSIGNED


MALFORMED: list[Any] = [
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"\xff\xfe\x00", id="not-utf8"),
    pytest.param(b"", id="empty-body"),
    pytest.param(b'{"token": "x", "type": "t", "url": "u", "source": "s"}', id="an-object"),
    pytest.param(b"[]", id="an-empty-list"),
    pytest.param(b'["pdl_sdbx_apikey_x"]', id="a-list-of-strings"),
    pytest.param(b'[{"token": "x", "type": "t", "url": "u"}]', id="a-match-without-source"),
    pytest.param(b'[{"token": 42, "type": "t", "url": "u", "source": "s"}]', id="a-token-that-is-a-number"),
    pytest.param(encode([match("x")] * 1001), id="more-than-1000-matches"),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, id="nested-too-deep"),
]


@pytest.mark.parametrize("body", MALFORMED)
async def test_a_signed_but_malformed_report_is_a_bad_request_and_changes_nothing(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member, body: bytes
) -> None:
    before = await state(deps, alice)
    err = error(await post(client, body), 400, "bad_request", PATH, "POST")
    assert err["detail"].startswith("Invalid report")
    assert await state(deps, alice) == before


# --- configuration: the keys file of a served process ---------------------------------------------


def test_a_served_process_loads_the_scanner_keys_from_the_file_the_environment_names(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "secret_scanning.json"
    path.write_text(github_public_keys())
    clear_keyhouse_env(monkeypatch)
    monkeypatch.setenv("KEYHOUSE_SECRET_SCANNING_KEYS_FILE", str(path))
    loaded = load_scanner_keys(Settings())
    assert loaded is not None
    assert set(loaded.keys) == {CURRENT_ID, OLDER_ID}
    body = encode([match("x")])
    loaded.verify(CURRENT_ID, sign(body), body)  # does not raise
    loaded.verify(OLDER_ID, sign(body, OLDER_SCANNER), body)


def test_without_a_keys_file_a_served_process_has_no_scanner_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_keyhouse_env(monkeypatch)
    assert load_scanner_keys(Settings()) is None


def _p384_keys() -> str:
    other = ec.generate_private_key(ec.SECP384R1())
    return json.dumps(
        {"public_keys": [{"key_identifier": "p384", "key": public_pem(other), "is_current": True}]}
    )


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(None, id="missing-file"),
        pytest.param("not json", id="not-json"),
        pytest.param('{"public_keys": [{"key_identifier": "k1"}]}', id="entry-without-key"),
        pytest.param('{"public_keys": [{"key_identifier": "k1", "key": "not a PEM"}]}', id="not-a-pem"),
        pytest.param(_p384_keys(), id="not-p256"),
    ],
)
def test_an_unusable_keys_file_stops_startup_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, content: str | None
) -> None:
    clear_keyhouse_env(monkeypatch)
    path = tmp_path / "secret_scanning.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match="KEYHOUSE_SECRET_SCANNING_KEYS_FILE"):
        load_scanner_keys(Settings(secret_scanning_keys_file=path))


# --- notifications --------------------------------------------------------------------------------


async def test_a_setting_subscribed_to_both_events_is_notified_of_the_exposure_then_the_revocation(
    client: httpx.AsyncClient, deps: services.Deps, alice: Member
) -> None:
    response = await client.post(
        "/notification-settings",
        headers=alice.auth(),
        json={
            "type": "url",
            "description": "security alerts",
            "destination": "http://127.0.0.1:9/x",
            "subscribed_events": ["api_key.revoked", "api_key_exposure.created"],
        },
    )
    assert response.status_code in (200, 201), response.text
    setting_id = response.json()["data"]["id"]
    key, plaintext = await add_key(deps, alice)
    await report(client, match(plaintext))
    url = "/notifications?order_by=id[ASC]&per_page=200"
    found = ok(await client.get(url, headers=alice.auth()), "/notifications")["data"]
    assert [n["type"] for n in found] == ["api_key_exposure.created", "api_key.revoked"]
    assert {n["notification_setting_id"] for n in found} == {setting_id}
    assert found[0]["payload"]["data"]["api_key_id"] == key.id
    assert found[1]["payload"]["data"]["id"] == key.id
    assert found[0]["occurred_at"] == found[1]["occurred_at"]
