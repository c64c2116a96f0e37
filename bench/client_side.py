"""Benchmark: what a pricing preview costs, with a client-side token and with an API key.

Run by ``make bench`` (never by the tests). Standalone: stdlib + httpx + keyhouse, plus ``wrk``.

1. A fresh SQLite database in a temp dir, ``keyhouse db upgrade`` + ``seed`` (a merchant key with
   every permission, a partner key with ``client_token.read``/``.write``), ONE ``keyhouse serve``
   with the preview and refused-request rate limits raised far out of reach, so the load measures
   work and not 429s.
2. Over HTTP: a product and a price (1500 USD) with the merchant key, and a client-side token with
   the partner key (no ``allowed_origins``, so requests need no ``Origin``).
3. ``wrk -t1`` (a Lua script per variant) in alternating rounds (the order rotates every round, so
   drift on the machine falls on every variant): ``POST /pricing-preview`` for 3 of the price with
   the client token, the same with the merchant API key (no ``Origin``: a server caller), and the
   trivial baseline ``GET /`` without credentials on the same app. The figures of merit are the
   ratios of median requests per second, measured in the same run.
4. In process, the pieces of one preview (median of batches): the preview service itself (the
   catalogue and tax-rate reads plus the arithmetic), the client-token and API-key checks (cache
   hits) and one rate-limit hit, to say where the time goes.

Everything ends in one plain-text table (pasted into the issue's closing note). The exit status
reflects only failures of the benchmark itself (e.g. a non-2xx answer under load).

    .venv/bin/python bench/client_side.py [--rounds 5] [--seconds 10] [--connections 32] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import httpx
import sqlalchemy as sa

import harness
from harness import BenchError, WrkResult
from keyhouse import bootstrap
from keyhouse.config import load_settings
from keyhouse.domain.accounts import Environment
from keyhouse.services import client_side, previews
from keyhouse.web.ratelimits import RateLimitOptions, RateLimits

UNLIMITED = "100000000/minute"
UNIT_AMOUNT = 1500
QUANTITY = 3
#: In process: (calls, batch, warm-up) for the cheap pieces and for those that read the database.
FAST = (20_000, 500, 2_000)
SLOW = (2_000, 50, 200)

#: Variant name -> what it is, in table order.
VARIANTS = {
    "token": "POST /pricing-preview, client-side token",
    "key": "POST /pricing-preview, merchant API key (no Origin)",
    "trivial": "GET / without credentials",
}


# --- set-up over HTTP -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Fixture:
    merchant_key: str
    client_token: str
    price_id: str
    account_id: str
    environment: Environment


def _created(response: httpx.Response, what: str) -> dict[str, Any]:
    if response.status_code not in (200, 201):
        raise BenchError(f"creating {what} answered {response.status_code}: {response.text}")
    data: dict[str, Any] = response.json()["data"]
    return data


def set_up(base: str, merchant_key: str, partner_key: str) -> Fixture:
    merchant = {"Authorization": f"Bearer {merchant_key}"}
    with httpx.Client(base_url=base, timeout=10) as client:
        product = _created(
            client.post(
                "/products", headers=merchant, json={"name": "Bench plan", "tax_category": "standard"}
            ),
            "a product",
        )
        price = _created(
            client.post(
                "/prices",
                headers=merchant,
                json={
                    "description": "Bench monthly",
                    "product_id": product["id"],
                    "unit_price": {"amount": str(UNIT_AMOUNT), "currency_code": "USD"},
                    "billing_cycle": {"interval": "month", "frequency": 1},
                },
            ),
            "a price",
        )
        token = _created(
            client.post(
                "/client-tokens", headers={"Authorization": f"Bearer {partner_key}"}, json={"name": "bench"}
            ),
            "a client-side token",
        )
        root = client.get("/", headers=merchant).json()["data"]
    environment = Environment.parse(root["api"]["environment"])
    if environment is None:
        raise BenchError(f"GET / named an unknown environment: {root}")
    return Fixture(
        merchant_key=merchant_key,
        client_token=token["token"],
        price_id=price["id"],
        account_id=root["caller"]["account"]["id"],
        environment=environment,
    )


def preview_body(price_id: str) -> str:
    return json.dumps({"items": [{"price_id": price_id, "quantity": QUANTITY}]}, separators=(",", ":"))


def check_routes(base: str, fixture: Fixture) -> None:
    """Every variant really takes the path it claims, and the preview computes what it should."""
    body = preview_body(fixture.price_id)
    json_type = {"Content-Type": "application/json"}
    with httpx.Client(base_url=base, timeout=5) as client:
        for variant, credential in (("token", fixture.client_token), ("key", fixture.merchant_key)):
            response = client.post(
                "/pricing-preview",
                content=body,
                headers={**json_type, "Authorization": f"Bearer {credential}"},
            )
            if response.status_code != 200:
                raise BenchError(f"{VARIANTS[variant]} answered {response.status_code}: {response.text}")
            line = response.json()["data"]["details"]["line_items"][0]
            if line["price"]["id"] != fixture.price_id or line["totals"]["subtotal"] != str(
                UNIT_AMOUNT * QUANTITY
            ):
                raise BenchError(f"{VARIANTS[variant]} priced the wrong thing: {line}")
        anon = client.get("/")
        if anon.status_code != 200 or anon.json()["data"]["caller"]["auth_type"] is not None:
            raise BenchError(f"unauthenticated GET / answered {anon.status_code}: {anon.text}")


# --- wrk ------------------------------------------------------------------------------------------


def _lua(value: str) -> str:
    """A Lua string literal (JSON's escapes are a subset of Lua's for what we send)."""
    return json.dumps(value)


def write_scripts(directory: Path, fixture: Fixture) -> dict[str, Path]:
    body = preview_body(fixture.price_id)
    scripts: dict[str, Path] = {}
    for variant, credential in (("token", fixture.client_token), ("key", fixture.merchant_key)):
        path = directory / f"{variant}.lua"
        path.write_text(
            'wrk.method = "POST"\n'
            f"wrk.body = {_lua(body)}\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
            f'wrk.headers["Authorization"] = {_lua("Bearer " + credential)}\n'
        )
        scripts[variant] = path
    trivial = directory / "trivial.lua"
    trivial.write_text('wrk.method = "GET"\n')
    scripts["trivial"] = trivial
    return scripts


def run_wrk(url: str, script: Path, *, variant: str, seconds: int, connections: int) -> WrkResult:
    return harness.run_wrk(
        url,
        ["-s", str(script)],
        seconds=seconds,
        connections=connections,
        what=VARIANTS[variant],
        require_requests=True,
    )


def load_rounds(base: str, scripts: dict[str, Path], args: argparse.Namespace) -> dict[str, list[WrkResult]]:
    names = list(VARIANTS)

    def url(variant: str) -> str:
        return f"{base}/" if variant == "trivial" else f"{base}/pricing-preview"

    if args.warmup > 0:
        print(f"warm-up: {args.warmup} s each", file=sys.stderr)
        for variant in names:
            run_wrk(
                url(variant),
                scripts[variant],
                variant=variant,
                seconds=args.warmup,
                connections=args.connections,
            )
    results: dict[str, list[WrkResult]] = {name: [] for name in names}
    for index in range(args.rounds):
        shift = index % len(names)
        order = names[shift:] + names[:shift]  # each variant leads, sits in the middle, and closes
        if index // len(names) % 2 == 1:
            order.reverse()
        for variant in order:
            result = run_wrk(
                url(variant),
                scripts[variant],
                variant=variant,
                seconds=args.seconds,
                connections=args.connections,
            )
            results[variant].append(result)
            print(f"round {index + 1}/{args.rounds} {variant}: {result.rps:,.0f} req/s", file=sys.stderr)
    return results


# --- in-process pieces of one preview -------------------------------------------------------------


async def piece_costs(fixture: Fixture) -> dict[str, float]:
    """Median µs per call, timed in batches (``FAST`` or ``SLOW`` sizes)."""
    settings = load_settings()
    deps = bootstrap.build_deps(settings)
    await deps.store.start()
    tokens = client_side.ClientTokenAuthenticator(deps)
    limits = RateLimits(RateLimitOptions(per_credential=UNLIMITED, refused_per_ip=UNLIMITED))
    body = json.loads(preview_body(fixture.price_id))
    env = fixture.environment

    async def preview() -> None:
        await previews.pricing_preview(deps, fixture.account_id, env, body)

    async def tax_rate() -> None:
        await previews.tax_rate(deps, fixture.account_id, env)

    async def token() -> None:
        await tokens.authenticate(fixture.client_token, env, None)

    async def key() -> None:
        await deps.authenticator.authenticate(fixture.merchant_key)

    async def spend() -> None:
        await limits.spend("bench")

    async def marker() -> None:
        deps.store.change_marker()

    async def empty_read() -> None:
        async with deps.store.read() as tx:
            await cast(Any, tx).conn.execute(sa.text("SELECT 1"))  # the SQL store's connection

    async def median_us(call: Callable[[], Awaitable[None]], sizes: tuple[int, int, int] = FAST) -> float:
        return await harness.median_us(call, *sizes)

    try:
        return {
            "preview": await median_us(preview, SLOW),
            "tax_rate": await median_us(tax_rate, SLOW),
            "empty_read": await median_us(empty_read, SLOW),
            "token": await median_us(token),
            "key": await median_us(key),
            "spend": await median_us(spend),
            "marker": await median_us(marker),
        }
    finally:
        await deps.store.close()


# --- report ---------------------------------------------------------------------------------------


def _lat(result: WrkResult) -> str:
    return f"{result.p50_ms:.2f}/{result.p99_ms:.2f}"


def report(
    args: argparse.Namespace,
    load: dict[str, list[WrkResult]],
    costs: dict[str, float],
    wrk_version: str,
    loads: tuple[float, float],
) -> str:
    lines: list[str] = []
    add = lines.append
    rule = "-" * 113
    token, key, trivial = load["token"], load["key"], load["trivial"]
    add(rule)
    add("keyhouse client-side API benchmark: pricing preview")
    add(
        harness.machine_line(
            f"{wrk_version}; SQLite, one `keyhouse serve` process, rate limits raised to {UNLIMITED}"
        )
    )
    add(harness.load_line(loads))
    add(
        f"load: wrk -t1 -c{args.connections} -d{args.seconds}s, {args.rounds} rounds "
        f"(order rotates each round), warm-up {args.warmup} s per variant"
    )
    for name, what in VARIANTS.items():
        add(f"  {name:<8} {what}")
    add(f"  preview body: {{items: [{{price_id, quantity: {QUANTITY}}}]}}, price {UNIT_AMOUNT} USD")
    add(rule)
    add(
        f"{'round':<7}{'token req/s':>12}{'key req/s':>12}{'trivial':>10}"
        f"{'tok/triv':>10}{'key/triv':>10}{'tok/key':>9}"
        f"{'p50/p99 ms: token':>20}{'key':>16}{'trivial':>15}"
    )
    for index, (t, k, z) in enumerate(zip(token, key, trivial, strict=True)):
        add(
            f"{index + 1:<7}{t.rps:>12,.0f}{k.rps:>12,.0f}{z.rps:>10,.0f}"
            f"{t.rps / z.rps:>10.3f}{k.rps / z.rps:>10.3f}{t.rps / k.rps:>9.3f}"
            f"{_lat(t):>20}{_lat(k):>16}{_lat(z):>15}"
        )
    med = {name: statistics.median(r.rps for r in runs) for name, runs in load.items()}
    med_lat = {
        name: f"{statistics.median(r.p50_ms for r in runs):.2f}/{statistics.median(r.p99_ms for r in runs):.2f}"
        for name, runs in load.items()
    }
    add(
        f"{'median':<7}{med['token']:>12,.0f}{med['key']:>12,.0f}{med['trivial']:>10,.0f}"
        f"{med['token'] / med['trivial']:>10.3f}{med['key'] / med['trivial']:>10.3f}"
        f"{med['token'] / med['key']:>9.3f}"
        f"{med_lat['token']:>20}{med_lat['key']:>16}{med_lat['trivial']:>15}"
    )
    errors = sum(r.socket_errors for runs in load.values() for r in runs)
    add(f"socket errors over all runs: {errors}")
    add(rule)

    def per_round(a: list[WrkResult], b: list[WrkResult]) -> float:
        return statistics.median(x.rps / y.rps for x, y in zip(a, b, strict=True))

    add("ratios of median req/s                 value   (median of per-round ratios)")
    add(
        f"  client token / trivial              {med['token'] / med['trivial']:7.3f}   "
        f"({per_round(token, trivial):.3f})"
    )
    add(
        f"  API key / trivial                   {med['key'] / med['trivial']:7.3f}   ({per_round(key, trivial):.3f})"
    )
    add(
        f"  client token / API key              {med['token'] / med['key']:7.3f}   ({per_round(token, key):.3f})"
    )

    def added_us(name: str) -> float:
        return (1 / med[name] - 1 / med["trivial"]) * 1e6

    add(
        f"server time per preview beyond the trivial route: client token {added_us('token'):.0f} µs, "
        f"API key {added_us('key'):.0f} µs (from the medians)"
    )
    add(rule)
    add(
        f"in process, one call (median of batches: {SLOW[0] // SLOW[1]} of {SLOW[1]} for database reads, "
        f"{FAST[0] // FAST[1]} of {FAST[1]} otherwise)"
    )
    add(f"  previews.pricing_preview (1 item; catalogue read + tax-rate read) {costs['preview']:8.1f} µs")
    add(f"    of which previews.tax_rate alone (its own read transaction)     {costs['tax_rate']:8.1f} µs")
    add(f"  store.read() with SELECT 1 (the floor of any read transaction)   {costs['empty_read']:8.1f} µs")
    add(f"  ClientTokenAuthenticator.authenticate (cache hit)                {costs['token']:8.1f} µs")
    add(f"  Authenticator.authenticate, API key (cache hit)                  {costs['key']:8.1f} µs")
    add(f"  RateLimits.spend (memory storage)                                {costs['spend']:8.1f} µs")
    add(f"  store.change_marker (PRAGMA data_version)                        {costs['marker']:8.1f} µs")
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
        harness.export_database(database_url)
        os.environ["KEYHOUSE_PREVIEW_RATE_LIMIT"] = UNLIMITED
        os.environ["KEYHOUSE_REFUSED_RATE_LIMIT"] = UNLIMITED
        os.environ.pop("KEYHOUSE_REDIS_URL", None)  # memory counters: this measures keyhouse, not Redis
        env = dict(os.environ)
        harness.keyhouse(env, "db", "upgrade")
        seeded = harness.keyhouse(env, "seed")
        merchant_key = harness.revealed(seeded["api_key"]["key"])
        partner_key = harness.revealed(seeded["partner_api_key"]["key"])
        with harness.serving(env, tmp / "serve.log") as base:
            fixture = set_up(base, merchant_key, partner_key)
            check_routes(base, fixture)
            scripts = write_scripts(tmp, fixture)
            load = load_rounds(base, scripts, args)
            check_routes(base, fixture)  # still answering correctly after the load
        print("in-process pieces of one preview…", file=sys.stderr)
        costs = asyncio.run(piece_costs(fixture))
    print(report(args, load, costs, wrk_version, (load_start, harness.load_average())))
    return 0


if __name__ == "__main__":
    harness.run(main)
