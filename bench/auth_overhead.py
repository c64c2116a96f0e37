"""Benchmark: what authentication costs, and how fast a revoke takes effect.

Run by ``make bench`` (never by the tests). Standalone: stdlib + httpx + keyhouse, plus ``wrk``.

1. A fresh SQLite database in a temp dir, ``keyhouse db upgrade`` + ``seed``, ONE ``keyhouse serve``.
2. ``wrk -t1`` against ``GET /`` with and without ``Authorization``, in alternating rounds (the order
   flips every round, so drift on the machine falls on both sides). The figure of merit is the ratio
   authenticated / unauthenticated requests per second, measured in the same run.
3. The in-process cost of one ``Authenticator.authenticate`` (cache hit) and of the cheapest refusal
   (bad checksum), as the median of batches of 1000 calls.
4. The delay from ``keyhouse keys revoke`` to the first ``403 invalid_token`` seen by a client
   polling the server in a tight loop.

Everything ends in one plain-text table (pasted into the issue's closing note). Targets are printed
with PASS/BELOW; the exit status reflects only failures of the benchmark itself (e.g. a non-2xx
answer under load), never a missed target.

    .venv/bin/python bench/auth_overhead.py [--rounds 5] [--seconds 10] [--connections 32] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

import harness
from harness import BenchError, WrkResult
from keyhouse import bootstrap
from keyhouse.config import load_settings
from keyhouse.domain.errors import InvalidToken

RATIO_TARGET_NOW = 0.90
RATIO_TARGET_LATER = 0.95
VERIFY_CALLS = 100_000
VERIFY_BATCH = 1_000
VERIFY_WARMUP = 10_000
REVOKE_REPEATS = 5


# --- wrk ------------------------------------------------------------------------------------------


def run_wrk(url: str, *, seconds: int, connections: int, header: str | None) -> WrkResult:
    return harness.run_wrk(
        url,
        ["-H", header] if header is not None else [],
        seconds=seconds,
        connections=connections,
        what=f"{'authenticated' if header else 'unauthenticated'} GET /",
    )


@dataclass(slots=True)
class LoadResults:
    auth: list[WrkResult] = field(default_factory=list)
    anon: list[WrkResult] = field(default_factory=list)


def load_rounds(base: str, key: str, args: argparse.Namespace) -> LoadResults:
    header = f"Authorization: Bearer {key}"
    url = f"{base}/"
    if args.warmup > 0:
        print(f"warm-up: {args.warmup} s each", file=sys.stderr)
        run_wrk(url, seconds=args.warmup, connections=args.connections, header=header)
        run_wrk(url, seconds=args.warmup, connections=args.connections, header=None)
    results = LoadResults()
    for index in range(args.rounds):
        order = [True, False] if index % 2 == 0 else [False, True]
        for authenticated in order:
            result = run_wrk(
                url,
                seconds=args.seconds,
                connections=args.connections,
                header=header if authenticated else None,
            )
            (results.auth if authenticated else results.anon).append(result)
            label = "auth" if authenticated else "anon"
            print(f"round {index + 1}/{args.rounds} {label}: {result.rps:,.0f} req/s", file=sys.stderr)
    return results


def check_routes(base: str, key: str) -> None:
    """Both variants really take the paths they claim: with auth the caller is the key."""
    anon = httpx.get(f"{base}/", timeout=5)
    auth = httpx.get(f"{base}/", headers={"Authorization": f"Bearer {key}"}, timeout=5)
    if anon.status_code != 200 or anon.json()["data"]["caller"]["auth_type"] is not None:
        raise BenchError(f"unauthenticated GET / answered {anon.status_code}: {anon.text}")
    if auth.status_code != 200 or auth.json()["data"]["caller"]["auth_type"] != "api_key":
        raise BenchError(f"authenticated GET / answered {auth.status_code}: {auth.text}")


# --- in-process verification cost -----------------------------------------------------------------


def bad_checksum(key: str) -> str:
    last = key[-1]
    return key[:-1] + ("A" if last != "A" else "B")


async def verification_costs(key: str) -> dict[str, float]:
    """Median µs per call over ``VERIFY_CALLS`` calls, timed in batches of ``VERIFY_BATCH``."""
    settings = load_settings()
    deps = bootstrap.build_deps(settings)
    await deps.store.start()
    authenticate = deps.authenticator.authenticate
    refused = bad_checksum(key)
    try:
        await authenticate(key)  # the first call loads the cache (and may touch last_used_at)

        async def accept() -> None:
            await authenticate(key)

        async def refuse() -> None:
            try:
                await authenticate(refused)
            except InvalidToken:
                return
            raise BenchError("a key with a bad checksum was accepted")

        async def marker() -> None:
            deps.store.change_marker()

        return {
            "accept": await harness.median_us(accept, VERIFY_CALLS, VERIFY_BATCH, VERIFY_WARMUP),
            "refuse": await harness.median_us(refuse, VERIFY_CALLS, VERIFY_BATCH, VERIFY_WARMUP),
            "marker": await harness.median_us(marker, VERIFY_CALLS, VERIFY_BATCH, VERIFY_WARMUP),
        }
    finally:
        await deps.store.close()


# --- revoke → first refusal -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RevokeTiming:
    from_exit_ms: float
    from_start_ms: float
    polls: int
    poll_ms: float


def revoke_delay(base: str, env: dict[str, str]) -> RevokeTiming:
    seeded = harness.keyhouse(env, "seed", "--new-key")
    key, key_id = seeded["api_key"]["key"], seeded["api_key"]["id"]
    ready = threading.Event()
    stop_polling = threading.Event()
    seen: dict[str, Any] = {}

    def poll() -> None:
        polls = 0
        seen["since"] = time.perf_counter()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=5) as client:
            while not stop_polling.is_set():
                response = client.get("/")
                polls += 1
                if response.status_code == 200:
                    ready.set()
                    continue
                seen["at"] = time.perf_counter()
                seen["polls"] = polls
                seen["status"] = response.status_code
                seen["body"] = response.text
                ready.set()
                return

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    if not ready.wait(10) or "status" in seen:
        stop_polling.set()
        raise BenchError(f"the new key never worked before the revoke: {seen}")
    time.sleep(0.2)  # the poller is in its steady state
    started = time.perf_counter()
    done = subprocess.run(
        [str(harness.BIN / "keyhouse"), "keys", "revoke", key_id, "--json"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    exited = time.perf_counter()
    poller.join(10)
    stop_polling.set()
    if done.returncode != 0:
        raise BenchError(f"keyhouse keys revoke exited {done.returncode}: {done.stderr.strip()}")
    if "at" not in seen:
        raise BenchError("the revoked key was still accepted 10 s after the revoke")
    code = json.loads(seen["body"]).get("error", {}).get("code") if seen["status"] == 403 else None
    if code != "invalid_token":
        raise BenchError(f"expected 403 invalid_token after the revoke, got {seen['status']}: {seen['body']}")
    return RevokeTiming(
        from_exit_ms=(seen["at"] - exited) * 1000,
        from_start_ms=(seen["at"] - started) * 1000,
        polls=seen["polls"],
        poll_ms=(seen["at"] - seen["since"]) * 1000 / seen["polls"],
    )


# --- report ---------------------------------------------------------------------------------------


def verdict(value: float, target: float) -> str:
    return "PASS" if value >= target else "BELOW"


def report(
    args: argparse.Namespace,
    load: LoadResults,
    costs: dict[str, float],
    revokes: list[RevokeTiming],
    wrk_version: str,
    loads: tuple[float, float],
) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 96
    add(rule)
    add("keyhouse auth overhead benchmark")
    add(harness.machine_line(f"{wrk_version}; SQLite, one `keyhouse serve` process"))
    add(harness.load_line(loads))
    add(
        f"load: wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} alternating rounds "
        f"(order flips each round), warm-up {args.warmup} s; route GET /"
    )
    add(rule)
    add(
        f"{'round':<7}{'auth req/s':>12}{'anon req/s':>12}{'ratio':>8}"
        f"{'auth p50/p99 ms':>20}{'anon p50/p99 ms':>20}{'sock err':>10}"
    )
    for index, (auth, anon) in enumerate(zip(load.auth, load.anon, strict=True)):
        add(
            f"{index + 1:<7}{auth.rps:>12,.0f}{anon.rps:>12,.0f}{auth.rps / anon.rps:>8.3f}"
            f"{f'{auth.p50_ms:.2f} / {auth.p99_ms:.2f}':>20}{f'{anon.p50_ms:.2f} / {anon.p99_ms:.2f}':>20}"
            f"{f'{auth.socket_errors}/{anon.socket_errors}':>10}"
        )
    auth_median = statistics.median(r.rps for r in load.auth)
    anon_median = statistics.median(r.rps for r in load.anon)
    ratio = auth_median / anon_median
    round_ratio = statistics.median(a.rps / b.rps for a, b in zip(load.auth, load.anon, strict=True))
    auth_lat, anon_lat = (
        f"{statistics.median(r.p50_ms for r in runs):.2f} / {statistics.median(r.p99_ms for r in runs):.2f}"
        for runs in (load.auth, load.anon)
    )
    add(f"{'median':<7}{auth_median:>12,.0f}{anon_median:>12,.0f}{ratio:>8.3f}{auth_lat:>20}{anon_lat:>20}")
    add(rule)
    add(f"ratio auth/anon (median req/s)      {ratio:.3f}   (median of per-round ratios {round_ratio:.3f})")
    add(f"  target now   >= {RATIO_TARGET_NOW:.2f}                 {verdict(ratio, RATIO_TARGET_NOW)}")
    add(f"  target later >= {RATIO_TARGET_LATER:.2f}                 {verdict(ratio, RATIO_TARGET_LATER)}")
    per_request_us = (1 / auth_median - 1 / anon_median) * 1e6
    add(f"server time added per authenticated request   {per_request_us:.1f} µs (from the medians)")
    add(rule)
    add(
        f"in-process Authenticator.authenticate (median of {VERIFY_CALLS // VERIFY_BATCH} batches "
        f"of {VERIFY_BATCH}, after {VERIFY_WARMUP:,} warm-up)"
    )
    add(f"  accepted key (cache hit)             {costs['accept']:7.2f} µs")
    add(f"  refused: bad checksum                {costs['refuse']:7.2f} µs")
    add(f"  of which PRAGMA data_version alone   {costs['marker']:7.2f} µs")
    add(rule)
    add(f"CLI `keyhouse keys revoke` -> first 403 invalid_token ({len(revokes)} runs, tight httpx poller)")
    exits = [r.from_exit_ms for r in revokes]
    starts = [r.from_start_ms for r in revokes]
    add(f"  {'':<36}{'median':>10}{'max':>10}   runs")
    add(
        f"  {'from revoke process exit (ms)':<36}{statistics.median(exits):>10.1f}{max(exits):>10.1f}   "
        + " ".join(f"{v:.1f}" for v in exits)
    )
    add(
        f"  {'from revoke process start (ms)':<36}{statistics.median(starts):>10.1f}{max(starts):>10.1f}   "
        + " ".join(f"{v:.0f}" for v in starts)
    )
    add(
        f"  poller round trip {statistics.median(r.poll_ms for r in revokes):.2f} ms (the resolution); "
        "negative = refused before the CLI process had finished exiting (the commit comes first)"
    )
    add(rule)
    return "\n".join(lines)


# --- main -----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = harness.parse_wrk_args(__doc__, argv)
    wrk_version = harness.wrk_version()
    if wrk_version is None:
        return 1
    load_start = harness.load_average()
    with harness.sqlite_database() as (tmp, database_url):
        env = harness.export_database(database_url)
        harness.keyhouse(env, "db", "upgrade")
        key = harness.revealed(harness.keyhouse(env, "seed")["api_key"]["key"])
        with harness.serving(env, tmp / "serve.log") as base:
            check_routes(base, key)
            load = load_rounds(base, key, args)
            print("in-process verification cost…", file=sys.stderr)
            costs = asyncio.run(verification_costs(key))
            print("revoke delay…", file=sys.stderr)
            revokes = [revoke_delay(base, env) for _ in range(REVOKE_REPEATS)]
    print(report(args, load, costs, revokes, wrk_version, (load_start, harness.load_average())))
    return 0


if __name__ == "__main__":
    harness.run(main)
