"""Benchmark: webhook delivery — notifications per second and commit-to-delivery latency.

Run by ``make bench`` (never by the tests). Standalone: stdlib + httpx + keyhouse; no wrk.

For each configuration — PostgreSQL with 1 and with 2 ``keyhouse worker`` processes (the baseline is
PostgreSQL with 1), and SQLite with 1 as a comparison row:

1. A fresh database (PostgreSQL: a schema ``kh_bench_<time>_<hex>``, dropped at the end; SQLite: a temp
   dir), migrated. In process: an account, a sandbox key, and one destination subscribed to
   ``client_token.created`` pointing at the receiver.
2. The receiver is this script again (``--receiver``), a separate process with a minimal asyncio
   HTTP server on 127.0.0.1 that answers 200 at once and records each delivery's ``data.id`` (the
   client token) and its arrival time (``time.time()``).
3. **Drain**: N client tokens are created in process while no worker runs (N notifications queued),
   then the workers start. Drain rate = N / (last arrival − first arrival): what the workers can do.
4. **Live**: with the workers idle, M more tokens are created one at a time, paced at R per second.
   The commit time of each is ``time.time()`` as its create returns (the transaction that writes the
   token, its event and its notification has committed). Latency = arrival − commit; delivered per
   second = M / (last arrival − first commit).

Workers run with the production defaults (batch 32, lease 60 s, poll 1 s, info logging to a file).
Ratios are against PostgreSQL with 1 worker, measured in the same run. The exit status reflects only
failures of the benchmark itself (a notification never delivered, a worker that died), never speed.

    .venv/bin/python bench/webhooks.py [--drain 2000] [--live 1000] [--rate 100] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from pydantic import SecretStr

import harness
from harness import BenchError
from keyhouse import bootstrap
from keyhouse.config import Settings
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind
from keyhouse.domain.permissions import Permission
from keyhouse.services import Deps, create_account, create_key, notifications
from keyhouse.services import client_tokens as tokens
from keyhouse.services.client_tokens import TokenScope

POSTGRES_URL = os.environ.get("KEYHOUSE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "kh_bench_"
#: (store, worker processes) in table order; the first is the baseline of the ratios.
CONFIGURATIONS = (("postgres", 1), ("postgres", 2), ("sqlite", 1))
DELIVERY_DEADLINE = 180.0  # seconds for a phase's deliveries before the bench gives up
TOKEN_CAP = 1_000_000


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- the receiver (a process of its own) -----------------------------------------------------------


async def _receive(port: int) -> None:
    """Answer every POST 200 at once and record (client token id, notification id, arrival)."""
    arrivals: list[tuple[str, str, float]] = []

    async def answer(writer: asyncio.StreamWriter, status: str, body: bytes, kind: str) -> None:
        head = f"HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {len(body)}\r\n"
        writer.write(head.encode() + b"Connection: close\r\n\r\n" + body)
        await writer.drain()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            request_line, *lines = head.decode("latin-1").split("\r\n")
            length = 0
            for line in lines:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            body = await reader.readexactly(length)
            arrived = time.time()
            if request_line.startswith("POST "):
                payload = json.loads(body)
                arrivals.append((payload["data"]["id"], payload["notification_id"], arrived))
                await answer(writer, "200 OK", b"ok", "text/plain")
            elif request_line.startswith("GET /count "):
                await answer(writer, "200 OK", str(len(arrivals)).encode(), "text/plain")
            elif request_line.startswith("GET /arrivals "):
                await answer(writer, "200 OK", json.dumps(arrivals).encode(), "application/json")
            elif request_line.startswith("DELETE /arrivals "):
                arrivals.clear()
                await answer(writer, "200 OK", b"cleared", "text/plain")
            else:
                await answer(writer, "404 Not Found", b"", "text/plain")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


@dataclass
class Receiver:
    url: str  # the destination
    control: httpx.Client

    def count(self) -> int:
        return int(self.control.get("/count").text)

    def arrivals(self) -> list[tuple[str, str, float]]:
        return [(t, n, float(a)) for t, n, a in self.control.get("/arrivals").json()]

    def clear(self) -> None:
        self.control.delete("/arrivals").raise_for_status()


@contextmanager
def receiving() -> Iterator[Receiver]:
    port = harness.free_port()
    process = subprocess.Popen([sys.executable, __file__, "--receiver", str(port)], stdout=subprocess.PIPE)
    try:
        assert process.stdout is not None
        if process.stdout.readline().strip() != b"ready":
            raise BenchError(f"the receiver did not start (exit {process.poll()})")
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as control:
            yield Receiver(f"{base}/webhooks", control)
    finally:
        harness.stop(process)
        if process.stdout is not None:
            process.stdout.close()


# --- databases, settings, workers ----------------------------------------------------------------------


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def database(store: str) -> Iterator[str]:
    if store == "sqlite":
        with harness.sqlite_database() as (_directory, url):
            yield url
        return
    schema = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_admin(f'CREATE SCHEMA "{schema}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BenchError(f"PostgreSQL at {POSTGRES_URL} is not usable: {exc}") from exc
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        asyncio.run(_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


def bench_env(database_url: str) -> dict[str, str]:
    """Ours minus any stray KEYHOUSE_*, plus the bench database and pepper; worker settings default."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(
        KEYHOUSE_DATABASE_URL=database_url,
        KEYHOUSE_PEPPER=harness.PEPPER,
        KEYHOUSE_CLIENT_TOKEN_LIMIT_PER_ENVIRONMENT=str(TOKEN_CAP),
    )
    return env


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(
        database_url=env["KEYHOUSE_DATABASE_URL"],
        pepper=SecretStr(env["KEYHOUSE_PEPPER"]),
        client_token_limit_per_environment=TOKEN_CAP,
    )


@dataclass
class Workers:
    processes: list[subprocess.Popen[bytes]]
    logs: list[Path]

    def cpu_seconds(self) -> float | None:
        """User + system CPU the worker processes have used so far (Linux /proc; None elsewhere)."""
        total = 0.0
        for process in self.processes:
            try:
                fields = Path(f"/proc/{process.pid}/stat").read_text().rpartition(")")[2].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def check(self) -> None:
        for process, path in zip(self.processes, self.logs, strict=True):
            if process.poll() is not None:
                tail = path.read_text(errors="replace")[-3000:]
                raise BenchError(f"keyhouse worker exited {process.returncode}:\n{tail}")


@contextmanager
def working(env: dict[str, str], count: int, log_dir: Path) -> Iterator[Workers]:
    workers = Workers([], [])
    with ExitStack() as stack:
        for index in range(count):
            path = log_dir / f"worker-{index}.log"
            handle = stack.enter_context(path.open("wb"))
            process = subprocess.Popen(
                [str(harness.BIN / "keyhouse"), "worker"],
                env=env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
            stack.callback(harness.stop, process)
            workers.processes.append(process)
            workers.logs.append(path)
        yield workers


def wait_for(receiver: Receiver, workers: Workers, expected: int, what: str) -> float | None:
    """Wait until ``expected`` deliveries arrived; the workers' CPU seconds at the first arrival."""
    deadline = time.monotonic() + DELIVERY_DEADLINE
    cpu_at_first: float | None = None
    while (got := receiver.count()) < expected:
        if got and cpu_at_first is None:
            cpu_at_first = workers.cpu_seconds()
        workers.check()
        if time.monotonic() > deadline:
            raise BenchError(
                f"{what}: {got} of {expected} notifications arrived in {DELIVERY_DEADLINE:.0f} s"
            )
        time.sleep(0.05)
    return cpu_at_first


# --- producing events ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Producer:
    scope: TokenScope
    creator: Creator


async def prepare(deps: Deps, destination: str) -> Producer:
    account = await create_account(deps, "Bench webhooks")
    key, _plaintext = await create_key(
        deps,
        account_id=account.id,
        environment=Environment.SANDBOX,
        name="bench",
        permissions=frozenset(Permission),
    )
    scope = TokenScope(account.id, Environment.SANDBOX)
    creator = Creator(CreatorKind.API_KEY, key.id)
    await notifications.create_setting(
        deps,
        scope,
        creator,
        {
            "type": "url",
            "description": "bench receiver",
            "destination": destination,
            "subscribed_events": ["client_token.created"],
        },
    )
    return Producer(scope, creator)


async def create_tokens(deps: Deps, producer: Producer, count: int, rate: float | None) -> dict[str, float]:
    """``count`` tokens, one at a time, paced at ``rate`` per second (None: as fast as possible);
    the commit time (``time.time()`` as each create returns) by token id."""
    commits: dict[str, float] = {}
    start = time.monotonic()
    for index in range(count):
        if rate is not None:
            await asyncio.sleep(max(0.0, start + index / rate - time.monotonic()))
        token = await tokens.create_token(
            deps, producer.scope, name=f"bench {index}", description=None, created_by=producer.creator
        )
        commits[token.id] = time.time()
    return commits


async def pending(deps: Deps) -> int:
    async with deps.store.read() as tx:
        return await tx.pending_count()


# --- one configuration ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Result:
    store: str
    workers: int
    drain_per_second: float
    live_per_second: float
    commits_per_second: float
    latencies_ms: list[float]
    duplicates: int
    #: Worker CPU (user + system, all processes) per notification while draining, from the first
    #: arrival to the last: what one delivery costs a worker. None where /proc is missing.
    cpu_ms: float | None

    @property
    def label(self) -> str:
        return f"{self.store} × {self.workers}"


def bench_configuration(store: str, worker_count: int, args: argparse.Namespace) -> Result:
    log(f"[{store}, {worker_count} worker{'s' if worker_count > 1 else ''}]")
    with (
        database(store) as url,
        receiving() as receiver,
        tempfile.TemporaryDirectory(prefix="keyhouse-bench-workers-") as tmp,
    ):
        env = bench_env(url)
        settings = settings_of(env)
        asyncio.run(bootstrap.upgrade_database(settings))

        async def setup_and_queue() -> tuple[Producer, dict[str, float]]:
            async with bootstrap.running(settings) as deps:
                producer = await prepare(deps, receiver.url)
                return producer, await create_tokens(deps, producer, args.drain, None)

        log(f"  queueing {args.drain} notifications with no worker running…")
        producer, _queued = asyncio.run(setup_and_queue())
        with working(env, worker_count, Path(tmp)) as workers:
            log("  draining…")
            cpu_start = wait_for(receiver, workers, args.drain, "drain")
            cpu_end = workers.cpu_seconds()
            drained = receiver.arrivals()
            times = sorted(arrived for _token, _ntf, arrived in drained)
            drain_rate = (len(times) - 1) / (times[-1] - times[0]) if times[-1] > times[0] else float("inf")
            time.sleep(0.5)  # let the workers go idle: the live phase measures waking up too
            receiver.clear()

            async def live() -> dict[str, float]:
                async with bootstrap.running(settings) as deps:
                    return await create_tokens(deps, producer, args.live, args.rate)

            log(f"  live: {args.live} tokens at {args.rate:g}/s…")
            commits = asyncio.run(live())
            wait_for(receiver, workers, args.live, "live")
            arrivals = receiver.arrivals()

            async def left() -> int:
                async with bootstrap.running(settings) as deps:
                    return await pending(deps)

            if (remaining := asyncio.run(left())) != 0:
                raise BenchError(f"{remaining} notifications still pending after every delivery arrived")
    first_arrival: dict[str, float] = {}
    for token_id, _ntf, arrived in arrivals:
        first_arrival.setdefault(token_id, arrived)
    missing = set(commits) - set(first_arrival)
    if missing:
        raise BenchError(f"{len(missing)} live notifications never arrived")
    latencies = [(first_arrival[t] - committed) * 1000 for t, committed in commits.items()]
    copies = Counter(n for _t, n, _a in [*drained, *arrivals])
    first_commit = min(commits.values())
    spread = max(first_arrival.values()) - first_commit
    commit_spread = max(commits.values()) - first_commit
    return Result(
        store=store,
        workers=worker_count,
        drain_per_second=drain_rate,
        live_per_second=len(commits) / spread,
        commits_per_second=(len(commits) - 1) / commit_spread if commit_spread else float("inf"),
        latencies_ms=latencies,
        duplicates=sum(c - 1 for c in copies.values()),
        cpu_ms=None
        if cpu_start is None or cpu_end is None
        else (cpu_end - cpu_start) * 1000 / (len(drained) - 1),
    )


# --- report ---------------------------------------------------------------------------------------------


def report(results: list[Result], args: argparse.Namespace, loads: tuple[float, float]) -> str:
    baseline = results[0]
    base_p50 = statistics.median(baseline.latencies_ms)
    rule = "-" * 104
    lines = [
        rule,
        f"keyhouse webhooks benchmark: receiver answers 200 at once; workers on defaults "
        f"(batch 32, lease 60 s, poll 1 s); baseline {baseline.label}",
        harness.machine_line(f"{platform.system()} {platform.release()}"),
        harness.load_line(loads),
        rule,
        f"{'store × workers':<17}{'drain /s':>10}{'ratio':>7}{'live /s':>9}{'commits /s':>11}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'p50 ratio':>11}{'dup':>5}{'CPU ms/ntf':>12}",
    ]
    for result in results:
        p50 = statistics.median(result.latencies_ms)
        lines.append(
            f"{result.label:<17}{result.drain_per_second:>10,.0f}"
            f"{result.drain_per_second / baseline.drain_per_second:>7.2f}"
            f"{result.live_per_second:>9,.1f}{result.commits_per_second:>11,.1f}{p50:>9.1f}"
            f"{percentile(result.latencies_ms, 0.99):>9.1f}{max(result.latencies_ms):>9.1f}"
            f"{p50 / base_p50:>11.2f}{result.duplicates:>5}"
            f"{'n/a' if result.cpu_ms is None else f'{result.cpu_ms:.2f}':>12}"
        )
    lines += [
        rule,
        f"drain = {args.drain:,} notifications queued before the workers start, first to last arrival;",
        f"live = {args.live:,} client tokens created one at a time at {args.rate:g}/s while the workers",
        "idle; latency = receiver arrival − commit (the create's return); live /s = live tokens / (last",
        "arrival − first commit); commits /s = the producer's achieved rate (live /s cannot exceed it);",
        "ratios against the first row, same run; dup = deliveries beyond one per notification;",
        "CPU ms/ntf = worker CPU (user + system, every worker) per drained notification.",
        rule,
    ]
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--drain", type=int, default=2_000, help="notifications queued (default 2000)")
    parser.add_argument("--live", type=int, default=1_000, help="live tokens (default 1000)")
    parser.add_argument("--rate", type=float, default=100.0, help="live tokens per second (default 100)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 300 drained, 100 live at 50/s")
    parser.add_argument("--receiver", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.drain, args.live, args.rate = 300, 100, 50.0
    if args.drain < 2 or args.live < 2 or args.rate <= 0:
        parser.error("--drain and --live must be at least 2, --rate positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.receiver is not None:
        asyncio.run(_receive(args.receiver))
        return 0
    load_start = harness.load_average()
    results = [bench_configuration(store, count, args) for store, count in CONFIGURATIONS]
    print(report(results, args, (load_start, harness.load_average())))
    return 0


if __name__ == "__main__":
    harness.run(main)
