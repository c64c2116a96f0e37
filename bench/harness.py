"""What the benchmarks share: a temp database, the ``keyhouse`` CLI and server, ``wrk``, the report.

Imported as ``import harness`` by the scripts beside it (run by path, so this directory is on
``sys.path``). Not a benchmark itself.
"""

from __future__ import annotations

import argparse
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
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import httpx

PEPPER = "keyhouse-bench-pepper-0123456789-abcdefghijklmnopqrstuvwxyz"  # fixed, 40+ characters
BIN = Path(sys.executable).parent


class BenchError(RuntimeError):
    """The benchmark could not measure what it claims to (not a missed target)."""


def run(main: Callable[[], int]) -> NoReturn:
    """Exit with ``main()``'s status; a ``BenchError`` is printed and exits 1."""
    try:
        sys.exit(main())
    except BenchError as exc:
        print(f"\nBENCHMARK FAILED: {exc}", file=sys.stderr)
        sys.exit(1)


# --- database and environment ---------------------------------------------------------------------


@contextmanager
def sqlite_database() -> Iterator[tuple[Path, str]]:
    """A temp directory and the URL of a (not yet created) SQLite database in it; removed on exit."""
    with tempfile.TemporaryDirectory(prefix="keyhouse-bench-") as tmp:
        yield Path(tmp), f"sqlite:///{Path(tmp) / 'bench.sqlite3'}"


def export_database(database_url: str) -> dict[str, str]:
    """Point this process (and so in-process settings) at the database; return a copy of the env."""
    os.environ["KEYHOUSE_DATABASE_URL"] = database_url
    os.environ["KEYHOUSE_PEPPER"] = PEPPER
    return dict(os.environ)


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


def revealed(key: str) -> str:
    """The plaintext key ``seed`` printed, or ``BenchError`` if it printed none (or a masked one)."""
    if not key or "*" in key:
        raise BenchError(f"seed did not reveal a key: {key!r}")
    return key


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until_serving(base: str, server: subprocess.Popen[bytes], log_file: Path) -> None:
    """Return once ``/healthz`` answers 200; ``BenchError`` if the server exits or 30 s pass."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise BenchError(f"keyhouse serve exited {server.returncode}:\n{log_file.read_text()}")
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise BenchError(f"keyhouse serve did not answer /healthz within 30 s:\n{log_file.read_text()}")


def stop(server: subprocess.Popen[bytes]) -> None:
    """Terminate the server, killing it if it has not exited within 10 s."""
    if server.poll() is None:
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@contextmanager
def serving(env: dict[str, str], log_file: Path) -> Iterator[str]:
    """ONE ``keyhouse serve`` on a free port, output to ``log_file``: yield its base URL once healthy."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log_file.open("wb") as handle:
        server = subprocess.Popen(
            [str(BIN / "keyhouse"), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_serving(base, server, log_file)
            yield base
        finally:
            stop(server)


# --- timing in process ----------------------------------------------------------------------------


async def median_us(call: Callable[[], Awaitable[None]], calls: int, batch: int, warmup: int) -> float:
    """Median µs per call of ``call``: ``warmup`` untimed calls, then ``calls`` in timed batches."""
    for _ in range(warmup):
        await call()
    batches = []
    for _ in range(calls // batch):
        start = time.perf_counter_ns()
        for _ in range(batch):
            await call()
        batches.append(time.perf_counter_ns() - start)
    return statistics.median(batches) / batch / 1000


# --- wrk ------------------------------------------------------------------------------------------

_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise BenchError(f"cannot read wrk latency {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True, slots=True)
class WrkResult:
    """One wrk run: requests per second, request count, latencies (ms) and socket errors."""

    rps: float
    requests: int
    avg_ms: float
    p50_ms: float
    p99_ms: float
    socket_errors: int


def wrk_version() -> str | None:
    """``wrk``'s name and version, or None (having said how to install it) when it is missing."""
    if shutil.which("wrk") is None:
        print("bench needs wrk: apt-get install -y wrk", file=sys.stderr)
        return None
    out = subprocess.run(["wrk", "-v"], capture_output=True, text=True, check=False).stdout
    return " ".join(out.split()[:2])


def run_wrk(
    url: str,
    options: Sequence[str],
    *,
    seconds: int,
    connections: int,
    what: str,
    require_requests: bool = False,
) -> WrkResult:
    """``wrk -t1`` with ``options`` against ``url``; ``BenchError`` on any non-2xx/3xx answer.

    ``what`` names the variant in errors; ``require_requests`` also refuses a run of no requests.
    """
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *options, url]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    out = done.stdout
    if done.returncode != 0:
        raise BenchError(f"wrk exited {done.returncode}: {done.stderr.strip()}\n{out}")
    non2xx = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    if non2xx is not None:
        raise BenchError(f"wrk saw {non2xx.group(1)} non-2xx/3xx responses ({what}):\n{out}")
    rps = re.search(r"Requests/sec:\s*([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    avg = re.search(r"^\s*Latency\s+(\S+)", out, re.MULTILINE)
    p50 = re.search(r"^\s*50%\s+(\S+)", out, re.MULTILINE)
    p99 = re.search(r"^\s*99%\s+(\S+)", out, re.MULTILINE)
    if not (rps and total and avg and p50 and p99):
        raise BenchError(f"cannot parse wrk output:\n{out}")
    if require_requests and int(total.group(1)) == 0:
        raise BenchError(f"wrk completed no requests ({what}):\n{out}")
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        rps=float(rps.group(1)),
        requests=int(total.group(1)),
        avg_ms=_ms(avg.group(1)),
        p50_ms=_ms(p50.group(1)),
        p99_ms=_ms(p99.group(1)),
        socket_errors=sum(int(n) for n in errors.groups()) if errors else 0,
    )


def parse_wrk_args(description: str | None, argv: list[str] | None = None) -> argparse.Namespace:
    """The options of a wrk benchmark: ``--rounds --seconds --connections --warmup --quick``."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
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


# --- report ---------------------------------------------------------------------------------------


def load_average() -> float:
    """The 1-minute load average."""
    return os.getloadavg()[0]


def machine_line(about: str) -> str:
    """``machine: <n> CPUs, Python <version>, <about>``."""
    return f"machine: {os.cpu_count()} CPUs, Python {platform.python_version()}, {about}"


def load_line(loads: tuple[float, float]) -> str:
    """The 1-min load average at start/end, flagged when it exceeded the CPU count."""
    busy = " (BUSY MACHINE: other work competed for the CPUs)" if max(loads) > (os.cpu_count() or 1) else ""
    return f"1-min load average at start/end: {loads[0]:.2f} / {loads[1]:.2f}{busy}"
