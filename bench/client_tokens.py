"""Benchmark: client-side token list latency deep into 100k tokens, and create throughput.

Run by ``make bench`` (never by the tests). Standalone: stdlib + httpx + keyhouse.

For each store (SQLite in a temp dir; PostgreSQL in a fresh schema ``kh_bench_<time>``, dropped at the
end):

1. Migrate; an account with an allow-listed partner integration installed with ``client_token.read``
   and ``client_token.write``; N client tokens for that installation bulk-loaded straight into the
   table (``issue_token`` values, SQLAlchemy Core batch inserts, then ANALYZE / VACUUM ANALYZE).
   A second account with the same integration installed and no tokens is the baseline for creates.
2. ONE ``keyhouse serve`` process, caps raised above N + creates. ``GET /client-tokens?per_page=200``
   at page 1 and at page P (500 with N = 100,000: ``after`` = the id of the 99,800th token, newest
   first, taken from the database), in alternating samples. The figure of merit is the ratio
   p50(page P) / p50(page 1), measured in the same run (target <= 1.5).
3. The two SQL statements behind one list call (the page and the ``estimated_total`` count), timed
   in-process on their own, with the plan each gets: what a list costs and where it goes.
4. ``POST /client-tokens`` with 1 and 16 requests in flight, on the loaded installation and on the
   empty baseline, in alternating rounds: creates per second and the ratio loaded / empty.

Everything ends in plain-text tables (one per store, then a combined one, pasted into the issue's
closing note). Targets are printed with PASS/ABOVE; the exit status reflects only failures of the
benchmark itself (e.g. a non-2xx answer), never a missed target.

    .venv/bin/python bench/client_tokens.py [--tokens 100000] [--samples 200] [--creates 1000]
        [--stores sqlite,postgres] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import sqlalchemy as sa
from pydantic import SecretStr

import harness
from harness import BenchError
from keyhouse import bootstrap
from keyhouse.config import Settings
from keyhouse.domain.accounts import Environment
from keyhouse.domain.client_tokens import Creator, CreatorKind, TokenStatus, issue_token
from keyhouse.domain.permissions import Permission
from keyhouse.domain.times import utc_now
from keyhouse.services import create_account
from keyhouse.services.integrations import install, register_integration
from keyhouse.store.sql import SqlStore, _token_row
from keyhouse.store.tables import client_tokens

POSTGRES_URL = os.environ.get("KEYHOUSE_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
SCHEMA_PREFIX = "kh_bench_"
PER_PAGE = 200
TARGET_PAGE = 500
RATIO_TARGET = 1.5
LOAD_BATCH = 5_000
LIST_WARMUP = 20
SQL_SAMPLES = 50
CREATE_ROUNDS = 2
CONCURRENCIES = (1, 16)
PERMISSIONS = frozenset({Permission.CLIENT_TOKEN_READ, Permission.CLIENT_TOKEN_WRITE})


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


# --- databases ------------------------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[str]:
    with harness.sqlite_database() as (_directory, url):
        yield url


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@contextmanager
def postgres_database() -> Iterator[str]:
    schema = f"{SCHEMA_PREFIX}{int(time.time())}_{secrets.token_hex(3)}"
    try:
        asyncio.run(_admin(f'CREATE SCHEMA "{schema}"'))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        raise BenchError(f"PostgreSQL at {POSTGRES_URL} is not usable: {exc}") from exc
    try:
        yield f"{POSTGRES_URL}?schema={schema}"
    finally:
        asyncio.run(_admin(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))


DATABASES: dict[str, Callable[[], Any]] = {"sqlite": sqlite_database, "postgres": postgres_database}


def bench_env(database_url: str, cap: int) -> dict[str, str]:
    """Ours minus any stray KEYHOUSE_*, plus the bench database, pepper and raised caps."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(
        KEYHOUSE_DATABASE_URL=database_url,
        KEYHOUSE_PEPPER=harness.PEPPER,
        KEYHOUSE_LOG_LEVEL="warning",
        KEYHOUSE_CLIENT_TOKEN_LIMIT_PER_INSTALLATION=str(cap),
        KEYHOUSE_CLIENT_TOKEN_LIMIT_PER_ENVIRONMENT=str(cap),
    )
    return env


def settings_of(env: dict[str, str]) -> Settings:
    return Settings(
        database_url=env["KEYHOUSE_DATABASE_URL"],
        pepper=SecretStr(env["KEYHOUSE_PEPPER"]),
        client_token_limit_per_installation=int(env["KEYHOUSE_CLIENT_TOKEN_LIMIT_PER_INSTALLATION"]),
        client_token_limit_per_environment=int(env["KEYHOUSE_CLIENT_TOKEN_LIMIT_PER_ENVIRONMENT"]),
    )


# --- setup: accounts, installations, bulk load ----------------------------------------------------


@dataclass(frozen=True, slots=True)
class Partner:
    account_id: str
    installation_id: str
    key: str


@dataclass(frozen=True, slots=True)
class Setup:
    loaded: Partner
    empty: Partner
    page: int  # the deep page measured (500 with 100k tokens)
    cursor: str  # ``after`` for that page
    first_id: str  # the first id that page must answer
    load_seconds: float
    tokens_per_second: float


async def new_partner(deps: Any, name: str) -> Partner:
    account = await create_account(deps, name)
    integration = await register_integration(deps, f"{name} partner", early_access=True, actor="bench")
    installation, _key, plaintext = await install(
        deps,
        account_id=account.id,
        environment=Environment.SANDBOX,
        integration_id=integration.id,
        permissions=PERMISSIONS,
    )
    return Partner(account.id, installation.id, plaintext)


def scope_of(partner: Partner) -> sa.ColumnElement[bool]:
    """What ``list_tokens`` filters on for a partner key and the default ``status=active``."""
    return sa.and_(
        client_tokens.c.account_id == partner.account_id,
        client_tokens.c.environment == Environment.SANDBOX.value,
        client_tokens.c.installation_id == partner.installation_id,
        client_tokens.c.status.in_([TokenStatus.ACTIVE.value]),
    )


async def bulk_load(store: SqlStore, partner: Partner, count: int) -> float:
    creator = Creator(CreatorKind.INSTALLATION, partner.installation_id)
    started = time.perf_counter()
    done = 0
    while done < count:
        size = min(LOAD_BATCH, count - done)
        now = utc_now()
        rows = [
            _token_row(
                issue_token(
                    account_id=partner.account_id,
                    environment=Environment.SANDBOX,
                    name=f"bench token {done + i}",
                    description=None,
                    created_by=creator,
                    now=now,
                )
            )
            for i in range(size)
        ]
        async with store.engine.begin() as conn:
            await conn.execute(client_tokens.insert(), rows)
        done += size
        if done % 20_000 == 0 or done == count:
            log(f"  loaded {done:,}/{count:,}")
    elapsed = time.perf_counter() - started
    async with store.engine.connect() as conn:
        if store.engine.dialect.name == "postgresql":
            # VACUUM runs outside a transaction; it also sets the visibility map (index-only scans).
            conn = await conn.execution_options(isolation_level="AUTOCOMMIT")
            await conn.execute(sa.text("VACUUM (ANALYZE) client_tokens"))
        else:
            await conn.execute(sa.text("ANALYZE"))
            await conn.commit()
    return elapsed


async def prepare(settings: Settings, count: int) -> Setup:
    await bootstrap.upgrade_database(settings)
    async with bootstrap.running(settings) as deps:
        loaded = await new_partner(deps, "Bench loaded")
        empty = await new_partner(deps, "Bench empty")
        store = deps.store
        assert isinstance(store, SqlStore)
        log(f"  bulk-loading {count:,} client tokens…")
        seconds = await bulk_load(store, loaded, count)
        page = max(1, min(TARGET_PAGE, count // PER_PAGE))
        async with store.engine.connect() as conn:
            total = (
                await conn.execute(
                    sa.select(sa.func.count()).select_from(client_tokens).where(scope_of(loaded))
                )
            ).scalar_one()
            if total != count:
                raise BenchError(f"loaded {total} tokens, expected {count}")
            if page == 1:
                cursor, first = "", ""
            else:
                query = (
                    sa.select(client_tokens.c.id)
                    .where(scope_of(loaded))
                    .order_by(client_tokens.c.id.desc())
                    .offset((page - 1) * PER_PAGE - 1)
                    .limit(2)
                )
                cursor, first = (await conn.execute(query)).scalars().all()
    return Setup(loaded, empty, page, cursor, first, seconds, count / seconds)


# --- the server -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    base: str
    log_file: Path

    def unhandled(self) -> Counter[str]:
        """``unhandled <Type> on request <id>`` lines the server logged, by exception type."""
        text = self.log_file.read_text(errors="replace")
        return Counter(re.findall(r"unhandled (\w+) on request", text))


@contextmanager
def serving(env: dict[str, str]) -> Iterator[Served]:
    with tempfile.TemporaryDirectory(prefix="keyhouse-bench-log-") as tmp:
        log_file = Path(tmp) / "serve.log"
        try:
            with harness.serving(env, log_file) as base:
                yield Served(base, log_file)
        except BenchError as exc:
            tail = log_file.read_text(errors="replace")[-4000:]
            raise BenchError(f"{exc}\nkeyhouse serve log (tail):\n{tail}") from exc


# --- list latency ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ListResult:
    page1_ms: list[float]
    deep_ms: list[float]
    estimated_total: int

    @property
    def ratio(self) -> float:
        return statistics.median(self.deep_ms) / statistics.median(self.page1_ms)

    @property
    def ratio_p95(self) -> float:
        return percentile(self.deep_ms, 0.95) / percentile(self.page1_ms, 0.95)


def list_latency(base: str, setup: Setup, samples: int) -> ListResult:
    headers = {"Authorization": f"Bearer {setup.loaded.key}"}
    page1 = {"per_page": str(PER_PAGE)}
    deep = {"per_page": str(PER_PAGE), "after": setup.cursor} if setup.cursor else page1
    timings: dict[bool, list[float]] = {False: [], True: []}
    totals: set[int] = set()
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:

        def one(is_deep: bool) -> float:
            started = time.perf_counter()
            response = client.get("/client-tokens", params=deep if is_deep else page1)
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200:
                raise BenchError(f"GET /client-tokens answered {response.status_code}: {response.text[:500]}")
            body = response.json()
            data = body["data"]
            if len(data) != PER_PAGE:
                raise BenchError(f"expected {PER_PAGE} tokens on a page, got {len(data)}")
            if is_deep and setup.first_id and data[0]["id"] != setup.first_id:
                raise BenchError(f"page {setup.page} starts at {data[0]['id']}, expected {setup.first_id}")
            totals.add(body["meta"]["pagination"]["estimated_total"])
            return elapsed

        for index in range(LIST_WARMUP):
            one(index % 2 == 1)
        for index in range(samples):
            order = (False, True) if index % 2 == 0 else (True, False)
            for is_deep in order:
                timings[is_deep].append(one(is_deep))
    if len(totals) != 1:
        raise BenchError(f"estimated_total changed during the list runs: {sorted(totals)}")
    return ListResult(timings[False], timings[True], totals.pop())


# --- the SQL behind one list call -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SqlCosts:
    page1_ms: float
    deep_ms: float
    count_ms: float
    page1_plan: str
    deep_plan: str
    count_plan: str


def _plan(dialect: str, rows: list[Any]) -> str:
    if dialect == "postgresql":
        text = " / ".join(
            r[0].strip().split("  (")[0].removeprefix("->  ").strip()
            for r in rows
            if not r[0].strip().startswith(("Index Cond", "Filter", "Heap Fetches", "Sort Key"))
        )
    else:
        text = " / ".join(str(r[-1]) for r in rows)
    return text


async def sql_costs(settings: Settings, setup: Setup) -> SqlCosts:
    """Each statement of ``SqlTransaction._page`` for the partner's list, timed on its own."""
    store = bootstrap.open_store(settings)
    where = scope_of(setup.loaded)
    order = client_tokens.c.id.desc()
    page1 = sa.select(client_tokens).where(where).order_by(order).limit(PER_PAGE + 1)
    deep = page1.where(client_tokens.c.id < setup.cursor) if setup.cursor else page1
    count = sa.select(sa.func.count()).select_from(client_tokens).where(where)
    dialect = store.engine.dialect.name
    explain = "EXPLAIN " if dialect == "postgresql" else "EXPLAIN QUERY PLAN "
    try:
        async with store.engine.connect() as conn:

            async def median_ms(statement: sa.Executable) -> float:
                for _ in range(5):
                    (await conn.execute(statement)).all()
                runs = []
                for _ in range(SQL_SAMPLES):
                    started = time.perf_counter()
                    (await conn.execute(statement)).all()
                    runs.append((time.perf_counter() - started) * 1000)
                return statistics.median(runs)

            async def plan(statement: sa.Select[Any]) -> str:
                compiled = statement.compile(
                    dialect=store.engine.dialect, compile_kwargs={"literal_binds": True}
                )
                return _plan(dialect, list((await conn.execute(sa.text(explain + str(compiled)))).all()))

            return SqlCosts(
                page1_ms=await median_ms(page1),
                deep_ms=await median_ms(deep),
                count_ms=await median_ms(count),
                page1_plan=await plan(page1),
                deep_plan=await plan(deep),
                count_plan=await plan(count),
            )
    finally:
        await store.close()


# --- create throughput ----------------------------------------------------------------------------


@dataclass(slots=True)
class CreateRun:
    """Creates of one variant over its rounds; ``per_second`` counts only the 201s."""

    requests: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)

    @property
    def created(self) -> int:
        return self.requests - self.failures.total()

    @property
    def per_second(self) -> float:
        return self.created / self.seconds

    def latency(self) -> str:
        values = self.latencies_ms or [0.0]
        return f"{statistics.median(values):.1f} / {percentile(values, 0.95):.1f}"


def _failure(response: httpx.Response) -> str:
    try:
        code = response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = "?"
    return f"{response.status_code} {code}"


async def create_burst(base: str, key: str, requests: int, concurrency: int, run: CreateRun) -> float:
    """``requests`` creates with ``concurrency`` in flight; a refusal is counted, not fatal."""
    remaining = iter(range(requests))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60, limits=limits
    ) as client:
        # One warm-up request on the connection pool (authentication cache, routes).
        await client.get("/client-tokens", params={"per_page": "1"})

        async def worker() -> None:
            for index in remaining:
                started = time.perf_counter()
                response = await client.post("/client-tokens", json={"name": f"bench create {index}"})
                run.latencies_ms.append((time.perf_counter() - started) * 1000)
                if response.status_code != 201:
                    run.failures[_failure(response)] += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        run.requests += requests
        run.seconds += elapsed
        return elapsed


def create_throughput(base: str, setup: Setup, creates: int) -> dict[tuple[int, str], CreateRun]:
    runs: dict[tuple[int, str], CreateRun] = {}
    per_round = max(1, creates // CREATE_ROUNDS)
    for concurrency in CONCURRENCIES:
        for index in range(CREATE_ROUNDS):
            order = ("loaded", "empty") if index % 2 == 0 else ("empty", "loaded")
            for which in order:
                partner = setup.loaded if which == "loaded" else setup.empty
                run = runs.setdefault((concurrency, which), CreateRun())
                failed = run.failures.total()
                seconds = asyncio.run(create_burst(base, partner.key, per_round, concurrency, run))
                failed = run.failures.total() - failed
                log(
                    f"  creates c={concurrency} {which} round {index + 1}/{CREATE_ROUNDS}: "
                    f"{(per_round - failed) / seconds:,.0f}/s" + (f", {failed} FAILED" if failed else "")
                )
    return runs


# --- one store ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StoreResult:
    store: str
    setup: Setup
    lists: ListResult
    sql: SqlCosts
    creates: dict[tuple[int, str], CreateRun]
    unhandled: Counter[str]  # exception types the server logged as unhandled (500s)

    @property
    def failures(self) -> int:
        return sum(run.failures.total() for run in self.creates.values())


def bench_store(name: str, args: argparse.Namespace) -> StoreResult:
    log(f"[{name}]")
    with DATABASES[name]() as url:
        cap = args.tokens + 2 * args.creates * len(CONCURRENCIES) + 1_000
        env = bench_env(url, cap)
        settings = settings_of(env)
        setup = asyncio.run(prepare(settings, args.tokens))
        log(f"  loaded in {setup.load_seconds:.1f} s ({setup.tokens_per_second:,.0f} tokens/s)")
        with serving(env) as served:
            base = served.base
            log(f"  list latency: page 1 vs page {setup.page}, {args.samples} samples each…")
            lists = list_latency(base, setup, args.samples)
            log("  SQL statements of one list call…")
            sql = asyncio.run(sql_costs(settings, setup))
            log(f"  create throughput: {args.creates} creates per variant…")
            creates = create_throughput(base, setup, args.creates)
            unhandled = served.unhandled()
    return StoreResult(name, setup, lists, sql, creates, unhandled)


# --- report ---------------------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "ABOVE"


def store_report(result: StoreResult, args: argparse.Namespace) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 96
    setup, lists, sql = result.setup, result.lists, result.sql
    add(rule)
    add(f"{result.store}: {args.tokens:,} active client tokens of one installation")
    add(
        f"bulk load {setup.load_seconds:.1f} s ({setup.tokens_per_second:,.0f} tokens/s, "
        f"batches of {LOAD_BATCH:,}), then {'VACUUM ANALYZE' if result.store == 'postgres' else 'ANALYZE'}"
    )
    add(rule)
    add(
        f"GET /client-tokens?per_page={PER_PAGE} ({len(lists.page1_ms)} alternating samples each, "
        f"{LIST_WARMUP} warm-up; estimated_total {lists.estimated_total:,})"
    )
    add(f"  {'':<26}{'p50 ms':>10}{'p95 ms':>10}{'min ms':>10}{'max ms':>10}")
    for label, values in (("page 1", lists.page1_ms), (f"page {setup.page}", lists.deep_ms)):
        add(
            f"  {label:<26}{statistics.median(values):>10.2f}{percentile(values, 0.95):>10.2f}"
            f"{min(values):>10.2f}{max(values):>10.2f}"
        )
    add(
        f"  ratio page {setup.page} / page 1  p50 {lists.ratio:.3f}  p95 {lists.ratio_p95:.3f}"
        f"   target <= {RATIO_TARGET:.1f}   {verdict(lists.ratio, RATIO_TARGET)}"
    )
    add(rule)
    add(f"SQL of one list call, in-process (median of {SQL_SAMPLES}):")
    add(f"  page rows, page 1            {sql.page1_ms:8.2f} ms   plan: {sql.page1_plan}")
    add(f"  page rows, page {setup.page:<13}{sql.deep_ms:8.2f} ms   plan: {sql.deep_plan}")
    add(f"  COUNT(*) estimated_total     {sql.count_ms:8.2f} ms   plan: {sql.count_plan}")
    for label, values in (("page 1", lists.page1_ms), (f"page {setup.page}", lists.deep_ms)):
        share = sql.count_ms / statistics.median(values) * 100
        add(f"  COUNT(*) share of the {label} HTTP p50: {share:.0f}%")
    add(rule)
    add(
        f"POST /client-tokens: {args.creates} requests per variant in {CREATE_ROUNDS} alternating rounds; "
        f"loaded = {args.tokens:,} tokens, empty = none"
    )
    add("  (per second counts 201s only; failed = non-201 answers, loaded/empty)")
    add(
        f"  {'in flight':<11}{'loaded /s':>10}{'empty /s':>10}{'ratio':>8}"
        f"{'loaded p50/p95 ms':>21}{'empty p50/p95 ms':>21}{'failed':>11}"
    )
    for concurrency in CONCURRENCIES:
        loaded = result.creates[(concurrency, "loaded")]
        empty = result.creates[(concurrency, "empty")]
        failed = f"{loaded.failures.total()}/{empty.failures.total()}"
        add(
            f"  {concurrency:<11}{loaded.per_second:>10,.1f}{empty.per_second:>10,.1f}"
            f"{loaded.per_second / empty.per_second:>8.3f}{loaded.latency():>21}{empty.latency():>21}{failed:>11}"
        )
    if result.failures:
        failures: Counter[str] = Counter()
        for run in result.creates.values():
            failures.update(run.failures)
        add(
            f"  FAILED answers: {dict(failures)}; server logged unhandled: {dict(result.unhandled) or 'none'}"
        )
    add(rule)
    return "\n".join(lines)


def combined_report(results: list[StoreResult], args: argparse.Namespace) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 96
    add(rule)
    add(f"keyhouse client-tokens benchmark: {args.tokens:,} tokens, one `keyhouse serve` process per store")
    add(harness.machine_line(f"{platform.system()} {platform.release()}"))
    add(rule)
    add(
        f"{'store':<10}{'page1 p50':>10}{'deep p50':>10}{'ratio':>7}{'':>7}{'count':>8}"
        f"{'create/s c1':>13}{'c16':>7}{'empty c1':>10}{'c16':>7}{'failed':>8}"
    )
    for result in results:
        c = result.creates
        add(
            f"{result.store:<10}{statistics.median(result.lists.page1_ms):>10.1f}"
            f"{statistics.median(result.lists.deep_ms):>10.1f}{result.lists.ratio:>7.2f}"
            f"{verdict(result.lists.ratio, RATIO_TARGET):>7}{result.sql.count_ms:>8.1f}"
            f"{c[(1, 'loaded')].per_second:>13,.1f}{c[(16, 'loaded')].per_second:>7,.1f}"
            f"{c[(1, 'empty')].per_second:>10,.1f}{c[(16, 'empty')].per_second:>7,.1f}{result.failures:>8}"
        )
    pages = sorted({r.setup.page for r in results})
    add(
        f"deep = page {'/'.join(map(str, pages))} of {PER_PAGE}; ratio = p50 deep / p50 page 1, target <= "
        f"{RATIO_TARGET:.1f}; times in ms;"
    )
    add("count = the estimated_total COUNT(*) alone, in-process; create/s (201s only) on the loaded")
    add("installation and on an empty one (a second account, the baseline); failed = non-201 creates")
    add(rule)
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tokens", type=int, default=100_000, help="tokens bulk-loaded (default 100000)")
    parser.add_argument("--samples", type=int, default=200, help="list samples per page (default 200)")
    parser.add_argument("--creates", type=int, default=1_000, help="creates per variant (default 1000)")
    parser.add_argument("--stores", default="sqlite,postgres", help="comma-separated: sqlite,postgres")
    parser.add_argument(
        "--quick", action="store_true", help="smoke run: 5,000 tokens, 30 samples, 64 creates"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.tokens, args.samples, args.creates = 5_000, 30, 64
    args.stores = [s.strip() for s in args.stores.split(",") if s.strip()]
    unknown = [s for s in args.stores if s not in DATABASES]
    if unknown or not args.stores:
        parser.error(f"--stores takes sqlite and/or postgres, not {unknown}")
    if args.tokens < PER_PAGE * 2 or args.samples < 1 or args.creates < CREATE_ROUNDS:
        parser.error(f"--tokens must be at least {PER_PAGE * 2}; --samples and --creates positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    results = []
    for name in args.stores:
        results.append(bench_store(name, args))
        print(store_report(results[-1], args), flush=True)
    print(combined_report(results, args))
    failed = {r.store: r.failures for r in results if r.failures}
    if failed:
        raise BenchError(f"non-201 answers to POST /client-tokens: {failed} (see the tables)")
    return 0


if __name__ == "__main__":
    harness.run(main)
