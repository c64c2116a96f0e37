"""Webhooks end to end: real ``keyhouse worker`` processes deliver to a real receiver in this process.

The destination and the client tokens whose events it receives are made through the served API with
a merchant's sandbox key (sandbox may deliver to ``http://127.0.0.1``). The receiver is a threaded
``http.server`` on 127.0.0.1 that records every request's raw headers and body bytes and can be told
to answer 500, to hang past the 5 s delivery timeout, to answer slowly, or to hold requests until told.
Every delivery is checked by the official SDKs as a receiver would: ``paddle-python-sdk``'s ``Verifier``
and ``@paddle/paddle-node-sdk``'s ``webhooks.unmarshal`` (``tests/node/verify_webhooks.mjs``, kept
running, because the Node SDK refuses a signature older than 5 s and cannot be told otherwise).

Workers run with ``KEYHOUSE_WEBHOOK_TIME_SCALE`` = 0.005, so the sandbox retry schedule of 60 s, 180 s
and 540 s becomes 0.3 s, 0.9 s and 2.7 s. Waits poll with deadlines; nothing asserts on speed.

The SSRF guard is tested on ``Sender`` itself, in process, with an injected resolver.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import pytest
from paddle_billing.Entities.Events import EventTypeName
from paddle_billing.Entities.Notifications import NotificationEvent
from paddle_billing.Notifications import Secret, Verifier
from paddle_billing.Notifications.Entities.ClientToken import ClientToken
from paddle_billing.Notifications.Entities.ClientTokens import ClientTokenStatus

from keyhouse import services
from keyhouse.domain.accounts import Environment
from keyhouse.domain.integrations import Availability, Feature
from keyhouse.domain.notifications import DELIVERY_TIMEOUT_SECONDS
from keyhouse.services import integrations
from keyhouse.webhooks.sender import Sender
from tests.conftest import need

if TYPE_CHECKING:  # names starting with Test must not be imported where pytest collects
    from tests.servers import Keyhouse, Member, Server

pytest_plugins = ["tests.servers"]
pytestmark = pytest.mark.slow

NODE_DIR = Path(__file__).resolve().parent / "node"
NODE_VERIFIER = NODE_DIR / "verify_webhooks.mjs"
TIME_SCALE = 0.005
#: The sandbox schedule (seconds after the 1st, 2nd and 3rd failure) before TIME_SCALE; ±10 % jitter.
SANDBOX_DELAYS = (60.0, 180.0, 540.0)
JITTER = 0.1
#: How late a retry may come on top of its delay (idle poll, process scheduling): a loose upper bound
#: that still tells a scaled schedule from an unscaled one.
RETRY_SLACK = 3.0
WORKER_ENV = {
    "KEYHOUSE_WEBHOOK_TIME_SCALE": str(TIME_SCALE),
    "KEYHOUSE_WORKER_POLL_SECONDS": "0.05",
    "KEYHOUSE_LOG_LEVEL": "info",
    "PYTHONUNBUFFERED": "1",
}
TOKEN_EVENTS = ["client_token.created", "client_token.revoked", "client_token.updated"]
SIGNATURE = re.compile(r"ts=(\d+);h1=([0-9a-f]{64})")
NTF_ID = re.compile(r"ntf_[a-z0-9]{26}")
BODY_KEYS = ["event_id", "event_type", "occurred_at", "notification_id", "data"]


def wait_until(
    check: Callable[[], bool], *, timeout: float, what: str, logs: Callable[[], str] = str
) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout} s: {what}\n{logs()}")
        time.sleep(0.02)


# --- the receiver ----------------------------------------------------------------------------------

Answer = int | Literal["hang"]
HANG: Answer = "hang"
#: A hanging answer outlasts the sender's 5 s timeout by this much (or until the receiver closes).
HANG_SECONDS = DELIVERY_TIMEOUT_SECONDS + 2


@dataclass(frozen=True)
class Delivery:
    """One request exactly as it arrived: raw header lines in order, raw body bytes, wall-clock arrival."""

    path: str
    headers: list[tuple[str, str]]
    body: bytes
    arrived: float
    answer: Answer

    def header(self, name: str) -> str | None:
        value: str | None = httpx.Headers(self.headers).get(name)
        return value

    @property
    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def notification_id(self) -> str:
        value: str = self.json["notification_id"]
        return value


@dataclass
class SdkRequest:
    """What paddle-python-sdk's ``Verifier`` reads from a framework request: ``headers`` and ``body``."""

    body: bytes
    headers: httpx.Headers


class Listening(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a worker's concurrent batch, and the
    # kernel retries them a second (or three) later: a receiver artefact, not keyhouse's.
    request_queue_size = 256


class Receiver:
    """A webhook receiver on 127.0.0.1 that answers as scripted and records everything."""

    def __init__(self) -> None:
        self.deliveries: list[Delivery] = []
        self.script: list[Answer] = []  # answers for the next requests, in order; then ``default``
        self.default: Answer = 200
        self.delay = 0.0  # seconds before every answer
        self.hold_after: int | None = None  # requests beyond this many wait until ``unhold`` is set
        self.held: list[Delivery] = []
        self.unhold = threading.Event()
        self.closing = threading.Event()
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                receiver._answer(self, self.path, list(self.headers.items()), body, time.time())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = Listening(("127.0.0.1", 0), Handler)
        self.port: int = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/paddle/webhooks?via=keyhouse"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _answer(
        self,
        handler: BaseHTTPRequestHandler,
        path: str,
        headers: list[tuple[str, str]],
        body: bytes,
        arrived: float,
    ) -> None:
        with self._changed:
            answer = self.script.pop(0) if self.script else self.default
            delivery = Delivery(path, headers, body, arrived, answer)
            self.deliveries.append(delivery)
            hold = self.hold_after is not None and len(self.deliveries) > self.hold_after
            if hold:
                self.held.append(delivery)
            self._changed.notify_all()
        if hold:
            self.unhold.wait(30)
        if answer == HANG:
            self.closing.wait(HANG_SECONDS)
        elif self.delay:
            time.sleep(self.delay)
        code = answer if isinstance(answer, int) else 200
        text = f"receiver says {code}".encode()
        with contextlib.suppress(OSError):  # the sender may have given up (timeout) or died (SIGKILL)
            handler.send_response(code)
            handler.send_header("Content-Type", "text/plain; charset=utf-8")
            handler.send_header("Content-Length", str(len(text)))
            handler.end_headers()
            handler.wfile.write(text)

    def wait_for(self, count: int, timeout: float, logs: Callable[[], str] = str) -> list[Delivery]:
        """The first ``count`` deliveries, once that many have arrived."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.deliveries) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    got = [d.json.get("event_type") for d in self.deliveries]
                    pytest.fail(f"{count} deliveries expected within {timeout} s, got {got}\n{logs()}")
                self._changed.wait(min(left, 0.1))
            return list(self.deliveries[:count])

    def stop_holding(self) -> list[Delivery]:
        """Answer the held requests (to whoever still listens) and hold no more; those that were held."""
        with self._changed:
            held = list(self.held)
            self.hold_after = None
        self.unhold.set()
        return held

    def snapshot(self) -> list[Delivery]:
        with self._changed:
            return list(self.deliveries)

    def close(self) -> None:
        self.unhold.set()
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


# --- the SDK verifiers -----------------------------------------------------------------------------


def python_sdk_event(delivery: Delivery, secret: str) -> NotificationEvent:
    """paddle-python-sdk verifies the signature (5 s window on) and parses the typed notification."""
    request = SdkRequest(delivery.body, httpx.Headers(delivery.headers))
    assert Verifier().verify(request, Secret(secret)) is True, delivery.header("Paddle-Signature")
    assert Verifier().verify(request, Secret(secret + "x")) is False  # it does check the key
    event: NotificationEvent = NotificationEvent.from_request(request)
    return event


class NodeVerifier:
    """``tests/node/verify_webhooks.mjs`` kept running: one JSON line in, one JSON line out."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process

    def unmarshal(self, delivery: Delivery, secret: str) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        signature = delivery.header("Paddle-Signature")
        line = {"body": delivery.body.decode(), "secret": secret, "signature": signature}
        self.process.stdin.write(json.dumps(line) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        assert answer, f"the Node verifier exited with {self.process.poll()}"
        parsed: dict[str, Any] = json.loads(answer)
        return parsed


@pytest.fixture
def node_verifier() -> Iterator[NodeVerifier]:
    node = shutil.which("node")
    if node is None:
        need("Node.js", "node is not on PATH")
    if not (NODE_DIR / "node_modules" / "@paddle" / "paddle-node-sdk").is_dir():
        need("the Node SDK", "run `npm ci --prefix tests/node` (make test does)")
    assert node is not None
    process = subprocess.Popen(
        [node, str(NODE_VERIFIER)],
        cwd=NODE_DIR,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        yield NodeVerifier(process)
    finally:
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.close()  # end of input: the script exits
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stdout.close()


# --- worker processes ------------------------------------------------------------------------------


@dataclass
class Workers:
    """``keyhouse worker`` processes, each in its own process group, always stopped at the end."""

    database_url: str
    log_dir: Path
    stack: contextlib.ExitStack
    started: list[tuple[subprocess.Popen[bytes], Path]] = field(default_factory=list)
    killed: set[int] = field(default_factory=set)

    def start(self, **env: str) -> subprocess.Popen[bytes]:
        from tests.servers import KEYHOUSE, _stop, keyhouse_env

        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"worker-{len(self.started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [KEYHOUSE, "worker"],
                env=keyhouse_env(self.database_url, **{**WORKER_ENV, **env}),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        self.stack.callback(_stop, process)
        self.started.append((process, log))
        return process

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL: no chance to finish the batch in flight or to release its leases."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)
        self.killed.add(process.pid)

    def log_of(self, process: subprocess.Popen[bytes]) -> str:
        return next(log for p, log in self.started if p is process).read_text(errors="replace")

    def logs(self) -> str:
        """Every worker's output, and a note on any that died on its own (for failure messages)."""
        parts = []
        for process, log in self.started:
            state = process.poll()
            died = state is not None and process.pid not in self.killed
            header = f"--- worker {process.pid}" + (f" EXITED {state}" if died else "")
            parts.append(f"{header}\n{log.read_text(errors='replace')[-3000:]}")
        return "\n".join(parts)


@pytest.fixture
def workers(keyhouse: Keyhouse, tmp_path: Path) -> Iterator[Workers]:
    with contextlib.ExitStack() as stack:
        yield Workers(keyhouse.database.url, tmp_path / "workers", stack)


# --- the API, as a merchant ------------------------------------------------------------------------


async def _general_availability(deps: services.Deps) -> None:
    await integrations.set_feature(
        deps, Feature.CLIENT_TOKENS_API, Availability.GENERAL_AVAILABILITY, actor="test"
    )


@dataclass
class Hooked:
    """A merchant's sandbox key on a served keyhouse, and its destination pointing at the receiver."""

    api: httpx.Client
    setting: dict[str, Any]
    receiver: Receiver

    @property
    def secret(self) -> str:
        value: str = self.setting["endpoint_secret_key"]
        return value

    def create_token(self, name: str = "Checkout") -> dict[str, Any]:
        response = self.api.post("/client-tokens", json={"name": name})
        assert response.status_code == 201, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def create_tokens(self, count: int) -> list[str]:
        with ThreadPoolExecutor(4) as pool:
            return [t["id"] for t in pool.map(self.create_token, (f"Bulk {i}" for i in range(count)))]

    def notification(self, notification_id: str) -> dict[str, Any]:
        response = self.api.get(f"/notifications/{notification_id}")
        assert response.status_code == 200, response.text
        data: dict[str, Any] = response.json()["data"]
        return data

    def settled(self, notification_id: str, logs: Callable[[], str] = str) -> dict[str, Any]:
        """The notification once the worker has recorded its last attempt (delivered or failed)."""
        wait_until(
            lambda: self.notification(notification_id)["status"] in ("delivered", "failed"),
            timeout=10,
            what=f"{notification_id} delivered or failed",
            logs=logs,
        )
        return self.notification(notification_id)

    def logs_of(self, notification_id: str) -> list[dict[str, Any]]:
        """Its delivery logs, oldest first (the API lists newest first)."""
        response = self.api.get(f"/notifications/{notification_id}/logs")
        assert response.status_code == 200, response.text
        return sorted(response.json()["data"], key=lambda entry: str(entry["attempted_at"]))

    def all_notifications(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        params = {"per_page": "200", "order_by": "id[ASC]"}
        while True:
            response = self.api.get("/notifications", params=params)
            assert response.status_code == 200, response.text
            body = response.json()
            found += body["data"]
            if not body["meta"]["pagination"]["has_more"]:
                return found
            params["after"] = found[-1]["id"]

    def pending(self) -> list[dict[str, Any]]:
        response = self.api.get("/notifications", params={"status": "not_attempted,needs_retry"})
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data


@contextlib.contextmanager
def hook_up(keyhouse: Keyhouse, server: Server, receiver: Receiver) -> Iterator[Hooked]:
    """A merchant (client tokens at general availability) whose sandbox destination is the receiver."""
    keyhouse.call(_general_availability)
    member: Member = keyhouse.member()
    with httpx.Client(base_url=server.url, headers=member.auth, timeout=30) as api:
        # The server reads the feature switch at most once a second.
        wait_until(
            lambda: api.get("/client-tokens").status_code == 200,
            timeout=5,
            what="the client-tokens API open to the merchant",
        )
        response = api.post(
            "/notification-settings",
            json={
                "description": "Receiver in the test process",
                "type": "url",
                "destination": receiver.url,
                "subscribed_events": TOKEN_EVENTS,
            },
        )
        assert response.status_code == 201, response.text
        setting: dict[str, Any] = response.json()["data"]
        assert setting["destination"] == receiver.url
        assert setting["endpoint_secret_key"].startswith("pdl_ntfset_")
        yield Hooked(api, setting, receiver)


@pytest.fixture
def hooked(keyhouse: Keyhouse, receiver: Receiver) -> Iterator[Hooked]:
    with hook_up(keyhouse, keyhouse.server, receiver) as found:
        yield found


def assert_signed_webhook(delivery: Delivery, receiver: Receiver) -> None:
    """What every delivery carries, whatever the SDKs make of it."""
    assert delivery.path == "/paddle/webhooks?via=keyhouse"
    assert delivery.header("Content-Type") == "application/json"
    assert delivery.header("Host") == f"127.0.0.1:{receiver.port}"
    signature = delivery.header("Paddle-Signature")
    assert signature is not None
    assert SIGNATURE.fullmatch(signature), signature
    assert list(delivery.json) == BODY_KEYS  # Paddle's key order
    assert NTF_ID.fullmatch(delivery.notification_id)


# --- (a) signed deliveries, checked by both official SDKs ------------------------------------------


def test_creating_and_revoking_a_client_token_delivers_webhooks_both_official_sdks_verify_and_parse(
    hooked: Hooked, workers: Workers, node_verifier: NodeVerifier
) -> None:
    workers.start()
    token = hooked.create_token("Storefront")
    [created] = hooked.receiver.wait_for(1, timeout=15, logs=workers.logs)
    # Straight to both verifiers: the Node SDK refuses a signature more than 5 s old.
    node_created = node_verifier.unmarshal(created, hooked.secret)
    python_created = python_sdk_event(created, hooked.secret)

    revoked_token = hooked.api.patch(f"/client-tokens/{token['id']}", json={"status": "revoked"})
    assert revoked_token.status_code == 200, revoked_token.text
    revoked = hooked.receiver.wait_for(2, timeout=15, logs=workers.logs)[1]
    node_revoked = node_verifier.unmarshal(revoked, hooked.secret)
    python_revoked = python_sdk_event(revoked, hooked.secret)

    for delivery in (created, revoked):
        assert_signed_webhook(delivery, hooked.receiver)
        assert delivery.json["data"]["id"] == token["id"]

    assert node_created == {
        "ok": True,
        "eventType": "client_token.created",
        "eventId": created.json["event_id"],
        "notificationId": created.notification_id,
        "eventClass": "ClientTokenCreatedEvent",
        "dataClass": "ClientTokenNotification",
        "dataId": token["id"],
        "dataStatus": "active",
    }
    assert node_revoked == {
        "ok": True,
        "eventType": "client_token.revoked",
        "eventId": revoked.json["event_id"],
        "notificationId": revoked.notification_id,
        "eventClass": "ClientTokenRevokedEvent",
        "dataClass": "ClientTokenNotification",
        "dataId": token["id"],
        "dataStatus": "revoked",
    }

    assert python_created.notification_id == created.notification_id
    assert python_created.event_id == created.json["event_id"]
    assert python_created.event_type == EventTypeName.ClientTokenCreated
    assert isinstance(python_created.data, ClientToken)
    assert (python_created.data.id, python_created.data.token) == (token["id"], token["token"])
    assert python_created.data.status == ClientTokenStatus.Active
    assert python_created.data.revoked_at is None
    assert python_revoked.event_type == EventTypeName.ClientTokenRevoked
    assert isinstance(python_revoked.data, ClientToken)
    assert python_revoked.data.status == ClientTokenStatus.Revoked
    assert python_revoked.data.revoked_at is not None
    assert python_created.event_id != python_revoked.event_id

    # The API tells the same story: one attempt each, answered 200.
    for delivery in (created, revoked):
        notification = hooked.settled(delivery.notification_id, workers.logs)
        assert notification["status"] == "delivered"
        assert notification["times_attempted"] == 1
        assert notification["origin"] == "event"
        assert notification["payload"] == delivery.json
        assert notification["notification_setting_id"] == hooked.setting["id"]
        [log] = hooked.logs_of(delivery.notification_id)
        assert (log["response_code"], log["response_body"]) == (200, "receiver says 200")
        assert log["response_content_type"] == "text/plain; charset=utf-8"


# --- (b) retries with backoff ----------------------------------------------------------------------


def test_a_receiver_answering_500_twice_gets_retries_on_the_scaled_backoff_and_the_third_attempt_delivers(
    hooked: Hooked, workers: Workers
) -> None:
    hooked.receiver.script = [500, 500]
    workers.start()
    hooked.create_token()
    attempts = hooked.receiver.wait_for(3, timeout=20, logs=workers.logs)
    for attempt in attempts:  # each attempt is signed anew, so each passes the 5 s window
        assert_signed_webhook(attempt, hooked.receiver)
        python_sdk_event(attempt, hooked.secret)
    assert len({a.notification_id for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1  # the same bytes every time

    notification = hooked.settled(attempts[0].notification_id, workers.logs)
    assert notification["status"] == "delivered"
    assert notification["times_attempted"] == 3
    assert notification["delivered_at"] is not None
    assert notification["retry_at"] is None
    logs = hooked.logs_of(attempts[0].notification_id)
    assert [log["response_code"] for log in logs] == [500, 500, 200]
    assert [log["response_body"] for log in logs] == [f"receiver says {c}" for c in (500, 500, 200)]

    gaps = [later.arrived - earlier.arrived for earlier, later in itertools.pairwise(attempts)]
    for gap, delay in zip(gaps, SANDBOX_DELAYS, strict=False):
        scaled = delay * TIME_SCALE
        assert scaled * (1 - JITTER) <= gap <= scaled * (1 + JITTER) + RETRY_SLACK, (gaps, scaled)
    time.sleep(0.2)  # a delivered notification is not attempted again
    assert len(hooked.receiver.snapshot()) == 3


# --- (c) a receiver that does not answer in time ---------------------------------------------------


def test_a_receiver_that_hangs_past_5_seconds_is_a_failed_attempt_with_response_code_0(
    hooked: Hooked, workers: Workers
) -> None:
    hooked.receiver.script = [HANG]  # once; the retry is answered at once
    workers.start()
    hooked.create_token()
    hung, retried = hooked.receiver.wait_for(2, timeout=DELIVERY_TIMEOUT_SECONDS + 15, logs=workers.logs)
    assert hung.notification_id == retried.notification_id
    assert retried.arrived - hung.arrived >= DELIVERY_TIMEOUT_SECONDS  # it waited for the full timeout
    python_sdk_event(retried, hooked.secret)

    notification = hooked.settled(hung.notification_id, workers.logs)
    assert (notification["status"], notification["times_attempted"]) == ("delivered", 2)
    timed_out, delivered = hooked.logs_of(hung.notification_id)
    assert timed_out["response_code"] == 0
    assert timed_out["response_content_type"] is None
    assert timed_out["response_body"]  # says why there was no answer
    assert delivered["response_code"] == 200


# --- (d) replay --------------------------------------------------------------------------------------


def test_replaying_a_delivered_notification_delivers_the_same_event_again_under_a_new_notification_id(
    hooked: Hooked, workers: Workers
) -> None:
    workers.start()
    hooked.create_token()
    [original] = hooked.receiver.wait_for(1, timeout=15, logs=workers.logs)
    hooked.settled(original.notification_id, workers.logs)

    response = hooked.api.post(f"/notifications/{original.notification_id}/replay")
    assert response.status_code == 202, response.text
    replay_id = response.json()["data"]["notification_id"]
    assert NTF_ID.fullmatch(replay_id)
    assert replay_id != original.notification_id

    replayed = hooked.receiver.wait_for(2, timeout=15, logs=workers.logs)[1]
    event = python_sdk_event(replayed, hooked.secret)
    assert event.notification_id == replay_id
    assert_signed_webhook(replayed, hooked.receiver)
    assert {**replayed.json, "notification_id": original.notification_id} == original.json

    fresh = hooked.settled(replay_id, workers.logs)
    assert (fresh["origin"], fresh["status"], fresh["times_attempted"]) == ("replay", "delivered", 1)
    assert fresh["payload"] == replayed.json
    assert hooked.notification(original.notification_id)["replayed_at"] is not None
    again = hooked.api.post(f"/notifications/{replay_id}/replay")
    assert again.json()["error"]["code"] == "notification_replay_invalid_origin_type", again.text


# --- (e) a worker killed mid-batch ---------------------------------------------------------------------

FAULT_EVENTS = 200
FAULT_BATCH = 20


def test_a_worker_killed_mid_batch_loses_nothing_and_redelivers_at_most_the_batch_in_flight(
    hooked: Hooked, workers: Workers
) -> None:
    hooked.create_tokens(FAULT_EVENTS)
    expected = {n["id"] for n in hooked.all_notifications()}
    assert len(expected) == FAULT_EVENTS

    receiver = hooked.receiver
    receiver.delay = 0.05
    receiver.hold_after = 3 * FAULT_BATCH  # the fourth batch reaches the receiver and gets no answer
    lease = {"KEYHOUSE_WORKER_LEASE_SECONDS": "1", "KEYHOUSE_WORKER_BATCH_SIZE": str(FAULT_BATCH)}
    first = workers.start(**lease)
    wait_until(lambda: bool(receiver.held), timeout=20, what="a batch in flight", logs=workers.logs)
    settle = time.monotonic() + 1  # let the rest of that batch arrive (it may be cut short: no matter)
    while len(receiver.held) < FAULT_BATCH and time.monotonic() < settle:
        time.sleep(0.02)
    workers.kill(first)
    in_flight = {d.notification_id for d in receiver.stop_holding()}

    workers.start(**lease)
    wait_until(
        lambda: {d.notification_id for d in receiver.snapshot()} >= expected,
        timeout=40,
        what=f"all {FAULT_EVENTS} notifications delivered after the kill",
        logs=workers.logs,
    )
    wait_until(lambda: not hooked.pending(), timeout=10, what="nothing left pending", logs=workers.logs)

    copies = Counter(d.notification_id for d in receiver.snapshot())
    assert set(copies) == expected  # none lost, nothing unknown
    duplicated = {n for n, c in copies.items() if c > 1}
    assert max(copies.values()) <= 2
    assert len(duplicated) <= FAULT_BATCH
    assert in_flight <= duplicated  # the unanswered ones came again once their lease ran out
    assert {n["status"] for n in hooked.all_notifications()} == {"delivered"}


def test_sigterm_lets_a_worker_finish_the_delivery_in_flight_and_record_it_before_it_exits(
    hooked: Hooked, workers: Workers
) -> None:
    receiver = hooked.receiver
    receiver.hold_after = 0  # the first request waits for the test
    worker = workers.start()
    hooked.create_token()
    wait_until(lambda: bool(receiver.held), timeout=15, what="a delivery in flight", logs=workers.logs)
    os.killpg(worker.pid, signal.SIGTERM)
    time.sleep(0.2)  # the signal lands while the request is still unanswered
    assert worker.poll() is None, workers.logs()
    [in_flight] = receiver.stop_holding()

    assert worker.wait(10) == 0, workers.logs()
    notification = hooked.notification(in_flight.notification_id)
    assert (notification["status"], notification["times_attempted"]) == ("delivered", 1)
    assert len(receiver.snapshot()) == 1


# --- (f) two workers on PostgreSQL ---------------------------------------------------------------------

CONCURRENT_EVENTS = 300


@pytest.mark.parametrize("shared_server", ["postgres"], indirect=True)
def test_two_workers_on_postgres_deliver_every_notification_exactly_once(
    hooked: Hooked, workers: Workers
) -> None:
    hooked.receiver.delay = 0.02
    pair = [workers.start(KEYHOUSE_WORKER_BATCH_SIZE="10") for _ in range(2)]
    wait_until(
        lambda: all("worker started" in workers.log_of(w) for w in pair),
        timeout=20,
        what="both workers started",
        logs=workers.logs,
    )
    hooked.create_tokens(CONCURRENT_EVENTS)
    expected = {n["id"] for n in hooked.all_notifications()}
    assert len(expected) == CONCURRENT_EVENTS
    wait_until(
        lambda: {d.notification_id for d in hooked.receiver.snapshot()} >= expected,
        timeout=40,
        what=f"all {CONCURRENT_EVENTS} notifications delivered",
        logs=workers.logs,
    )
    wait_until(lambda: not hooked.pending(), timeout=10, what="nothing left pending", logs=workers.logs)

    copies = Counter(d.notification_id for d in hooked.receiver.snapshot())
    assert set(copies) == expected
    assert [n for n, c in copies.items() if c != 1] == []
    shares = [workers.log_of(w).count("notification attempted") for w in pair]
    assert sum(shares) == CONCURRENT_EVENTS
    assert all(shares), f"one worker did all the work: {shares}"


# --- (h) serve --with-worker ---------------------------------------------------------------------------


def test_serve_with_worker_runs_a_worker_that_delivers_tokens_made_through_that_server(
    keyhouse: Keyhouse, receiver: Receiver, tmp_path: Path
) -> None:
    from tests.servers import KEYHOUSE, Server, _stop, _wait_until_healthy, free_port, keyhouse_env

    port = free_port()
    out, err = tmp_path / "serve.out", tmp_path / "serve.err"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(
            [KEYHOUSE, "serve", "--with-worker", "--port", str(port)],
            env=keyhouse_env(keyhouse.database.url, **WORKER_ENV),
            stdout=stdout,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        server = Server(process, f"http://127.0.0.1:{port}", out, err)
        _wait_until_healthy(server)
        with hook_up(keyhouse, server, receiver) as hooked:
            token = hooked.create_token()
            [delivery] = receiver.wait_for(1, timeout=20, logs=server.output)
            event = python_sdk_event(delivery, hooked.secret)
            assert isinstance(event.data, ClientToken)
            assert event.data.id == token["id"]
            assert hooked.settled(delivery.notification_id, server.output)["status"] == "delivered"
    finally:
        _stop(process)


# --- (g) the SSRF guard, on the Sender itself ----------------------------------------------------------

SECRET = "pdl_ntfset_01hv8wptq8987qeep44cyrewp9_0123456789abcdefghijklmnopqrstuv"
BODY = b'{"event_id":"evt_01hv8wptq8987qeep44cyrewp9","event_type":"client_token.created"}'


@dataclass
class FakeDns:
    """An injected resolver: names answer with the addresses the test says."""

    answers: dict[str, list[str]]
    asked: list[tuple[str, int]] = field(default_factory=list)

    async def __call__(self, host: str, port: int) -> list[str]:
        self.asked.append((host, port))
        return self.answers[host]


class Streamed(httpx.AsyncByteStream):
    """A body that arrives as a stream, like a real network answer (the Sender reads it streamed)."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self.data


@contextlib.asynccontextmanager
async def recording_sender(
    dns: FakeDns, *, allow_private: bool
) -> AsyncIterator[tuple[Sender, list[httpx.Request]]]:
    """A Sender whose HTTP client is a MockTransport: what it would send is recorded, never sent."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, headers={"Content-Type": "text/plain"}, stream=Streamed(b"ok"))

    sender = Sender(allow_private=allow_private, resolver=dns)
    await sender.client.aclose()
    sender.client = httpx.AsyncClient(transport=httpx.MockTransport(answer), follow_redirects=False)
    try:
        yield sender, sent
    finally:
        await sender.close()


BLOCKED = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "::1", "::ffff:10.0.0.1", "fd00::1"]


@pytest.mark.parametrize("address", BLOCKED)
async def test_a_live_destination_whose_name_resolves_to_an_internal_address_is_refused_permanently_unsent(
    address: str,
) -> None:
    dns = FakeDns({"hooks.example.com": [address]})
    async with recording_sender(dns, allow_private=False) as (sender, sent):
        outcome = await sender.deliver("https://hooks.example.com/paddle", Environment.LIVE, SECRET, BODY)
    assert (outcome.response_code, outcome.permanent, outcome.delivered) == (0, True, False)
    assert "blocked" in outcome.response_body
    assert address in outcome.response_body
    assert dns.asked == [("hooks.example.com", 443)]
    assert sent == []


async def test_one_internal_address_among_public_ones_is_enough_to_refuse() -> None:
    dns = FakeDns({"hooks.example.com": ["93.184.216.34", "169.254.169.254"]})
    async with recording_sender(dns, allow_private=False) as (sender, sent):
        outcome = await sender.deliver("https://hooks.example.com/paddle", Environment.LIVE, SECRET, BODY)
    assert (outcome.response_code, outcome.permanent) == (0, True)
    assert "169.254.169.254" in outcome.response_body
    assert sent == []


async def test_a_refused_loopback_address_is_never_connected_to() -> None:
    """No TCP connection at all, with the real HTTP client: a listener on that port sees nothing."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.setblocking(False)
        port = listener.getsockname()[1]
        dns = FakeDns({"hooks.example.com": ["127.0.0.1"]})
        sender = Sender(allow_private=False, resolver=dns)
        try:
            for environment, url in (
                (Environment.LIVE, f"https://hooks.example.com:{port}/paddle"),
                (Environment.LIVE, f"http://hooks.example.com:{port}/paddle"),
            ):
                outcome = await sender.deliver(url, environment, SECRET, BODY)
                assert (outcome.response_code, outcome.permanent) == (0, True), outcome
        finally:
            await sender.close()
        with pytest.raises(BlockingIOError):
            listener.accept()


async def test_sandbox_may_reach_loopback_but_not_a_private_network() -> None:
    dns = FakeDns({"hooks.example.com": ["10.0.0.1"]})
    async with recording_sender(dns, allow_private=False) as (sender, sent):
        outcome = await sender.deliver("https://hooks.example.com/paddle", Environment.SANDBOX, SECRET, BODY)
    assert (outcome.response_code, outcome.permanent) == (0, True)
    assert sent == []


@pytest.mark.parametrize("address", ["10.0.0.1", "169.254.169.254", "127.0.0.1"])
async def test_allow_private_lifts_the_guard(address: str) -> None:
    dns = FakeDns({"hooks.example.com": [address]})
    async with recording_sender(dns, allow_private=True) as (sender, sent):
        outcome = await sender.deliver("https://hooks.example.com/paddle", Environment.LIVE, SECRET, BODY)
    assert (outcome.response_code, outcome.permanent, outcome.delivered) == (200, False, True)
    [request] = sent
    assert request.url.host == address


async def test_an_https_destination_is_requested_at_the_checked_address_with_the_name_as_sni_and_host() -> (
    None
):
    dns = FakeDns({"hooks.example.com": ["93.184.216.34", "93.184.216.35"]})
    async with recording_sender(dns, allow_private=False) as (sender, sent):
        outcome = await sender.deliver(
            "https://hooks.example.com/paddle/in?source=keyhouse", Environment.LIVE, SECRET, BODY
        )
    assert outcome.delivered
    [request] = sent
    assert (request.url.scheme, request.url.host, request.url.port) == ("https", "93.184.216.34", None)
    assert (request.url.path, request.url.query) == ("/paddle/in", b"source=keyhouse")
    assert request.headers["Host"] == "hooks.example.com"
    assert request.extensions["sni_hostname"] == "hooks.example.com"
    assert request.content == BODY
    assert SIGNATURE.fullmatch(request.headers["Paddle-Signature"])
    assert dns.asked == [("hooks.example.com", 443)]


async def test_a_sandbox_http_destination_reaches_the_resolved_loopback_address_with_the_name_as_host(
    receiver: Receiver,
) -> None:
    """The real client over a real socket: the name is never resolved by anyone but the guard."""
    dns = FakeDns({"receiver.example.com": ["127.0.0.1"]})
    sender = Sender(allow_private=False, resolver=dns)
    try:
        outcome = await sender.deliver(
            f"http://receiver.example.com:{receiver.port}/paddle/webhooks?via=keyhouse",
            Environment.SANDBOX,
            SECRET,
            BODY,
        )
    finally:
        await sender.close()
    assert (outcome.response_code, outcome.response_body) == (200, "receiver says 200")
    assert outcome.response_content_type == "text/plain; charset=utf-8"
    [delivery] = receiver.snapshot()
    assert [v for k, v in delivery.headers if k.lower() == "host"] == [
        f"receiver.example.com:{receiver.port}"
    ]
    assert delivery.body == BODY
    request = SdkRequest(delivery.body, httpx.Headers(delivery.headers))
    assert Verifier().verify(request, Secret(SECRET)) is True
