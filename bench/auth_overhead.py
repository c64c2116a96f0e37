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
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from keyhouse import bootstrap
from keyhouse.config import load_settings
from keyhouse.domain.errors import InvalidToken

PEPPER = "keyhouse-bench-pepper-0123456789-abcdefghijklmnopqrstuvwxyz"  # fixed, 40+ characters
RATIO_TARGET_NOW = 0.90
RATIO_TARGET_LATER = 0.95
VERIFY_CALLS = 100_000
VERIFY_BATCH = 1_000
VERIFY_WARMUP = 10_000
REVOKE_REPEATS = 5
BIN = Path(sys.executable).parent


class BenchError(RuntimeError):
    """The benchmark could not measure what it claims to (not a missed target)."""


# --- processes ------------------------------------------------------------------------------------


def keyhouse(env: dict[str, str], *args: str) -> dict[str, Any]:
    """Run a CLI command with ``--json`` and return its one JSON object."""
    done = subprocess.run(
        [str(BIN / "keyhouse"), *args, "--json"], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchError(f"keyhouse {' '.join(args)} exited {done.returncode}: {done.stderr.strip()}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"keyhouse serve exited {server.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(f"keyhouse serve did not answer /healthz within 30 s:\n{log.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


# --- wrk ------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True, slots=True)
class WrkResult:
    rps: float
    requests: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    socket_errors: int


def run_wrk(url: str, *, seconds: int, connections: int, header: str | None) -> WrkResult:
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    if header is not None:
        command += ["-H", header]
    done = subprocess.run([*command, url], capture_output=True, text=True, check=False)
    out = done.stdout
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}: {done.stderr.strip()}\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx is not None:
        what = "authenticated" if header else "unauthenticated"
        raise BenchError(f"wrk saw {non2xx.group(1)} non-2xx/3xx responses ({what} GET /):\n{out}")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    avg = re.search(r"^\s*Latency\s+(\S+)", out, re.MULTILINE)
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    if not (rps and total and avg and p50 and p99):
        raise BenchError(f"cannot parse wrk output:\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        avg_ms=_ms(avg.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
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

        async def median_us(call: Any) -> float:
            for _ in range(VERIFY_WARMUP):
                await call()
            batches = []
            for _ in range(VERIFY_CALLS // VERIFY_BATCH):
                start = time.perf_counter_ns()
                for _ in range(VERIFY_BATCH):
                    await call()
                batches.append(time.perf_counter_ns() - start)
            return statistics.median(batches) / VERIFY_BATCH / 1000

        return {
            "accept": await median_us(accept),
            "refuse": await median_us(refuse),
            "marker": await median_us(marker),
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
    seeded = keyhouse(env, "seed", "--new-key")
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
        [str(BIN / "keyhouse"), "keys", "revoke", key_id, "--json"],
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
    add(
        f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {wrk_version}; "
        "SQLite, one `keyhouse serve` process"
    )
    busy = " (BUSY MACHINE: other work competed for the CPUs)" if max(loads) > (os.cpu_count() or 1) else ""
    add(f"1-min load average at start/end: {loads[0]:.2f} / {loads[1]:.2f}{busy}")
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


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--seconds", type=int, default=10, help="seconds per wrk run (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (default 32)")
    parser.add_argument("--warmup", type=int, default=2, help="unrecorded warm-up seconds per variant")
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 2 s, 1 s warm-up")
    args = parser.parse_args(argv)
    if args.quick:
        args.rounds, args.seconds, args.warmup = 2, 2, 1
    if args.rounds < 1 or args.seconds < 1 or args.connections < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds and --connections must be positive")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 1
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    wrk_version = " ".join(wrk_version.split()[:2])
    load_start = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="keyhouse-bench-") as tmp:
        os.environ["KEYHOUSE_DATABASE_URL"] = f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"
        os.environ["KEYHOUSE_PEPPER"] = PEPPER
        env = dict(os.environ)
        keyhouse(env, "db", "upgrade")
        key = keyhouse(env, "seed")["api_key"]["key"]
        if not key or "*" in key:
            raise BenchError(f"seed did not reveal a key: {key!r}")
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = Path(tmp) / "serve.log"
        with log.open("wb") as log_handle:
            server = subprocess.Popen(
                [str(BIN / "keyhouse"), "serve", "--host", "127.0.0.1", "--port", str(port)],
                env=env,
                stdout=log_handle,
                stderr=subprocess.STDOUT,
            )
            try:
                wait_until_serving(base, server, log)
                check_routes(base, key)
                load = load_rounds(base, key, args)
                print("in-process verification cost…", file=sys.stderr)
                costs = asyncio.run(verification_costs(key))
                print("revoke delay…", file=sys.stderr)
                revokes = [revoke_delay(base, env) for _ in range(REVOKE_REPEATS)]
            finally:
                stop(server)
    print(report(args, load, costs, revokes, wrk_version, (load_start, os.getloadavg()[0])))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
