"""``keyhouse worker``: delivers notifications, at least once, from as many processes as you like.

Each round claims a batch of due notifications as a lease, delivers them concurrently outside any
transaction, and records each attempt only while still holding its lease. A worker killed mid-batch
leaves leases that expire; another worker (or the same one, restarted) then delivers those again —
so a receiver may see a notification twice, never zero times. Receivers deduplicate by
``notification_id`` (Paddle gives the same advice).

Every ``jobs_seconds`` it also runs the scheduled jobs (key expiry). Idle workers watch the store's change marker (PostgreSQL NOTIFY, SQLite ``data_version``), so a new
event is picked up within milliseconds, and look for due retries every ``poll`` seconds.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import timedelta

import structlog

from keyhouse.domain.errors import KeyhouseError
from keyhouse.domain.notifications import Notification, NotificationSetting, Outcome
from keyhouse.services import events, keys, notifications
from keyhouse.services.deps import Deps
from keyhouse.webhooks.sender import Sender

log = structlog.get_logger("keyhouse.worker")
Attempt = tuple[Notification, NotificationSetting, Outcome]


@dataclass(frozen=True, slots=True)
class WorkerOptions:
    batch_size: int = 32
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 1.0
    time_scale: float = 1.0
    #: How often the scheduled jobs run (key expiry: ``api_key.expiring`` / ``api_key.expired``).
    jobs_seconds: float = 10.0
    #: Connections one worker opens to one destination at a time: a batch of 32 events for a small
    #: receiver must not look like a flood (its listen backlog may be 5).
    per_destination: int = 4
    #: Attempts that finish within this many seconds of the first are recorded in one transaction.
    record_window: float = 0.02


def body_of(notification: Notification) -> bytes:
    """The exact bytes that are signed and sent."""
    return json.dumps(notification.payload, separators=(",", ":"), ensure_ascii=False).encode()


class Worker:
    def __init__(self, deps: Deps, sender: Sender, options: WorkerOptions) -> None:
        self.deps = deps
        self.sender = sender
        self.options = options
        self.name = f"{socket.gethostname()}:{os.getpid()}"

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set; the batch in flight is finished first."""
        log.info("worker started", worker=self.name, batch_size=self.options.batch_size)
        next_jobs = 0.0
        while not stop.is_set():
            try:
                if time.monotonic() >= next_jobs:
                    next_jobs = time.monotonic() + self.options.jobs_seconds
                    await self.run_jobs()
                handled = await self.run_once()
            except KeyhouseError as exc:  # e.g. the database is busy or briefly unreachable
                log.warning("worker round failed", worker=self.name, error=exc.detail)
                handled = 0
            except Exception as exc:  # a worker must outlive any one bad round; leases bring work back
                log.error("worker round failed", worker=self.name, error=type(exc).__name__)
                handled = 0
            if handled == 0:
                await self._idle(stop)
        log.info("worker stopped", worker=self.name)

    async def run_jobs(self) -> None:
        expired = await keys.run_expiry(self.deps)
        if expired:
            log.info("expiry job", keys_changed=expired)
        purged = await events.purge(self.deps)
        if purged:
            log.info("retention job", events_purged=purged)

    async def run_once(self) -> int:
        """Claim one batch and deliver it; the number of notifications attempted."""
        owner = f"{self.name}:{secrets.token_hex(4)}"  # per batch: a late finish never matches a new claim
        claimed = await notifications.claim(self.deps, owner, self.options.batch_size, self.options.lease)
        gates: dict[str, asyncio.Semaphore] = {}
        for _, setting in claimed:
            gates.setdefault(setting.destination, asyncio.Semaphore(self.options.per_destination))

        finished: asyncio.Queue[Attempt | None] = asyncio.Queue()

        async def deliver(notification: Notification, setting: NotificationSetting) -> None:
            try:
                async with gates[setting.destination]:
                    outcome = await self.sender.deliver(
                        setting.destination,
                        setting.environment,
                        setting.endpoint_secret_key,
                        body_of(notification),
                    )
            except Exception as exc:  # unrecorded: its lease expires and it is attempted again
                log.error("delivery failed", notification_id=notification.id, error=type(exc).__name__)
                finished.put_nowait(None)
            else:
                finished.put_nowait((notification, setting, outcome))

        deliveries = [asyncio.create_task(deliver(n, s)) for n, s in claimed]
        left = len(claimed)
        while left:
            done = [await finished.get()]
            if finished.qsize() + 1 < left:
                await asyncio.sleep(self.options.record_window)  # let the attempts finishing now join
            while not finished.empty():
                done.append(finished.get_nowait())
            left -= len(done)
            await self._record(owner, [a for a in done if a is not None])
        await asyncio.gather(*deliveries)
        return len(claimed)

    async def _record(self, owner: str, attempts: list[Attempt]) -> None:
        if not attempts:
            return
        try:
            results = await notifications.record_attempts(
                self.deps, owner, attempts, time_scale=self.options.time_scale
            )
        except KeyhouseError as exc:  # e.g. the database is busy: the leases bring these back
            log.warning(
                "recording attempts failed", worker=self.name, error=exc.detail, attempts=len(attempts)
            )
            return
        except Exception as exc:  # the same: never leave the batch's other deliveries unread
            log.error("recording attempts failed", worker=self.name, error=type(exc).__name__)
            return
        for (notification, setting, outcome), after in zip(attempts, results, strict=True):
            log.info(
                "notification attempted",
                notification_id=notification.id,
                notification_setting_id=setting.id,
                response_code=outcome.response_code,
                status=None if after is None else after.status.value,
                lease_lost=after is None,
            )

    async def _idle(self, stop: asyncio.Event) -> None:
        """Sleep until the store changes, a poll interval passes, or ``stop`` is set."""
        store = self.deps.store
        marker = store.change_marker()
        deadline = time.monotonic() + self.options.poll_seconds
        while not stop.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
            current = store.change_marker()
            if None not in (marker, current) and current != marker:
                return
