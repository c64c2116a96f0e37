"""The demo pricing page and keyhouse.js in a real browser: Debian's Chromium driven by Playwright.

One ``keyhouse serve`` on a fresh SQLite file (seeded with ``--demo-origin http://127.0.0.1:P``) and
one headless Chromium serve the whole module. Each state the page can be in is saved as a screenshot
under ``test-artifacts/browser/`` (gitignored), so a reviewer can see what a visitor would see.

Chromium is never downloaded (no ``playwright install``): the tests use ``/usr/bin/chromium``, and
outside CI skip loudly without it (``.ci/run`` installs it; under ``CI=true`` a missing browser fails).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import TEST_PEPPER, need

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
#: This closed network needs every one of these (no sandbox as root, no GPU, no background fetches).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
KEYHOUSE = str(Path(sys.executable).with_name("keyhouse"))
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "browser"
STARTUP_TIMEOUT = 30.0
#: Playwright's expect() waits this long (ms) for the page to reach a state.
EXPECT_TIMEOUT = 10_000

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
    from playwright.sync_api import Error as PlaywrightError
except ImportError:  # pragma: no cover - a dev dependency; the fixtures report it
    sync_playwright = None  # type: ignore[assignment]
    PlaywrightError = Exception  # type: ignore[assignment,misc]


def require_chromium() -> None:
    if sync_playwright is None:
        need("Chromium", "the playwright package is not installed (pip install -e '.[dev]')")
    if not CHROMIUM.exists():
        need("Chromium", f"{CHROMIUM} is missing (apt-get install -y chromium)")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- keyhouse, seeded for the demo ------------------------------------------------------------------


@dataclass
class Demo:
    """A running ``keyhouse serve`` on port ``port`` and what ``keyhouse seed --json`` printed."""

    port: int
    env: dict[str, str]
    seeded: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start_cli(self, *args: str) -> subprocess.Popen[str]:
        """``keyhouse ARGS --json`` in the background; :meth:`result` waits for it."""
        return subprocess.Popen(
            [KEYHOUSE, *args, "--json"],
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    @staticmethod
    def result(process: subprocess.Popen[str]) -> dict[str, Any]:
        """The CLI must succeed with exactly one JSON object."""
        stdout, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, f"{' '.join(map(str, process.args))} failed:\n{stdout}\n{stderr}"
        payload: dict[str, Any] = json.loads(stdout)
        return payload

    def cli(self, *args: str) -> dict[str, Any]:
        return self.result(self.start_cli(*args))

    def seed(self) -> dict[str, Any]:
        """Seed (idempotent): makes a new demo token when the last one was revoked."""
        self.seeded = self.cli("seed", "--demo-origin", self.url)
        return self.seeded


def _stop(process: subprocess.Popen[bytes]) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if process.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"keyhouse serve exited with {process.returncode}:\n{log.read_text(errors='replace')}"
            )
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    pytest.fail(
        f"keyhouse serve was not healthy within {STARTUP_TIMEOUT}s:\n{log.read_text(errors='replace')}"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """keyhouse on a fresh SQLite file: migrated, seeded for its own origin, client-tokens API on GA."""
    require_chromium()  # no server for tests that will not run
    folder = tmp_path_factory.mktemp("browser")
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYHOUSE_")}
    env.update(KEYHOUSE_DATABASE_URL=f"sqlite:///{folder / 'keyhouse.sqlite3'}", KEYHOUSE_PEPPER=TEST_PEPPER)
    upgrade = subprocess.run(
        [KEYHOUSE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert upgrade.returncode == 0, upgrade.stdout + upgrade.stderr
    port = free_port()
    log = folder / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [KEYHOUSE, "serve", "--port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        demo = Demo(port, env, {})
        # The server starts while the CLI seeds and switches (each process takes a couple of seconds).
        # The demo token was made by the CLI, not by an integration: only a merchant key may revoke
        # it through the API, and the client-tokens API is early-access gated until this switch.
        switch = demo.start_cli("features", "set", "client-tokens-api", "general-availability")
        demo.seed()
        demo.result(switch)
        _wait_until_healthy(process, demo.url, log)
        yield demo
    finally:
        _stop(process)


# --- the browser ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    require_chromium()
    expect.set_options(timeout=EXPECT_TIMEOUT)
    playwright = sync_playwright().start()
    try:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context; the page must never throw, whatever the API answers."""
    context = browser.new_context(viewport={"width": 1000, "height": 640})
    page = context.new_page()
    uncaught: list[str] = []
    page.on("pageerror", lambda error: uncaught.append(str(error)))
    try:
        yield page
    finally:
        context.close()
    assert not uncaught, f"uncaught errors in the page: {uncaught}"


def screenshot(page: Page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


# --- what the page shows ---------------------------------------------------------------------------

ERROR_CLASS = re.compile(r"(^|\s)error(\s|$)")
PRICES_UPDATED = re.compile(r"^Prices updated \(tax rate 20%\)\.$")


def expect_totals(page: Page, row: int, subtotal: str, tax: str, total: str) -> None:
    line = page.locator("tr[data-price-id]").nth(row)
    expect(line.locator("[data-field=subtotal]")).to_have_text(subtotal)
    expect(line.locator("[data-field=tax]")).to_have_text(tax)
    expect(line.locator("[data-field=total]")).to_have_text(total)


def expect_refusal(page: Page, *fragments: str) -> str:
    """The status says why, in the error style, and no stale total is left on show."""
    status = page.get_by_role("status")
    expect(status).to_have_class(ERROR_CLASS)
    for fragment in fragments:
        expect(status).to_contain_text(fragment)
    expect(page.locator("[data-field]")).to_have_text(["—"] * 6)
    return status.inner_text()


def open_demo(page: Page, url: str) -> None:
    page.goto(f"{url}/demo")
    expect(page.get_by_role("status")).to_have_text(PRICES_UPDATED)
    expect(page.get_by_role("status")).not_to_have_class(ERROR_CLASS)


# --- an allowed origin ------------------------------------------------------------------------------


def test_allowed_origin_shows_live_totals(demo: Demo, page: Page) -> None:
    open_demo(page, demo.url)
    expect(page.locator("tr[data-price-id] th")).to_have_text(
        ["keyhouse Pro — Monthly", "keyhouse Pro — Yearly"]
    )
    expect_totals(page, 0, "$15.00", "$3.00", "$18.00")
    expect_totals(page, 1, "$150.00", "$30.00", "$180.00")
    screenshot(page, "01-allowed-origin-loaded")

    price_ids = page.locator("tr[data-price-id]").evaluate_all("rows => rows.map(r => r.dataset.priceId)")
    with page.expect_request("**/pricing-preview") as sent:
        page.get_by_label("Quantity of Monthly").fill("3")
    request = sent.value
    headers = request.all_headers()
    assert request.method == "POST"
    assert request.url == f"{demo.url}/pricing-preview"
    assert headers["authorization"] == f"Bearer {demo.seeded['demo_client_token']['token']}"
    assert headers["keyhouse-environment"] == "sandbox"
    assert headers["origin"] == demo.url
    assert request.post_data_json == {
        "items": [{"price_id": price_ids[0], "quantity": 3}, {"price_id": price_ids[1], "quantity": 1}]
    }
    expect_totals(page, 0, "$45.00", "$9.00", "$54.00")
    expect_totals(page, 1, "$150.00", "$30.00", "$180.00")
    expect(page.get_by_role("status")).to_have_text(PRICES_UPDATED)
    screenshot(page, "02-allowed-origin-quantity-3")


def test_quantities_are_labelled_and_keyboard_reachable(demo: Demo, page: Page) -> None:
    open_demo(page, demo.url)
    monthly, yearly = page.get_by_label("Quantity of Monthly"), page.get_by_label("Quantity of Yearly")
    expect(monthly).to_have_attribute("type", "number")
    expect(yearly).to_have_attribute("type", "number")
    unlabelled = page.evaluate(
        """() => [...document.querySelectorAll('input, select, textarea, button')]
            .filter((field) => field.labels.length === 0 && !field.getAttribute('aria-label'))
            .map((field) => field.outerHTML)"""
    )
    assert unlabelled == []

    page.keyboard.press("Tab")
    expect(monthly).to_be_focused()
    # The focus ring is visible (demo.css: 3px solid outline on :focus-visible).
    ring = page.evaluate(
        "() => { const s = getComputedStyle(document.activeElement); return [s.outlineStyle, s.outlineWidth]; }"
    )
    assert ring == ["solid", "3px"]
    page.keyboard.press("Tab")
    expect(yearly).to_be_focused()
    page.keyboard.press("Shift+Tab")
    expect(monthly).to_be_focused()

    page.keyboard.press("Control+A")
    page.keyboard.type("3")
    expect(monthly).to_have_value("3")
    expect_totals(page, 0, "$45.00", "$9.00", "$54.00")
    expect(page.get_by_role("status")).to_have_text(PRICES_UPDATED)
    screenshot(page, "03-keyboard-focus-quantity-3")


# --- origins the token does not allow ---------------------------------------------------------------


def test_page_on_a_second_origin_of_the_same_server_is_refused(demo: Demo, page: Page) -> None:
    """http://localhost:P is another origin than http://127.0.0.1:P, and the token allows only the latter."""
    other = f"http://localhost:{demo.port}"
    page.goto(f"{other}/demo")
    text = expect_refusal(page, f"may not be used from {other}", "(forbidden)")
    assert text.startswith("This page may not use the token:")
    screenshot(page, "04-second-origin-forbidden")


@contextlib.contextmanager
def page_server(files: dict[str, tuple[str, bytes]]) -> Iterator[int]:
    """A tiny static server on 127.0.0.1 (another port, so another origin): path → (type, body)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            found = files.get(self.path.split("?")[0])
            if found is None:
                self.send_error(404)
                return
            content_type, body = found
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def copy_of_demo(demo: Demo) -> dict[str, tuple[str, bytes]]:
    """The demo page as keyhouse serves it (its config's apiBase is keyhouse's origin) and its assets."""
    with httpx.Client(base_url=demo.url, timeout=10) as client:
        html = client.get("/demo").raise_for_status().text
        assets = {
            f"/static/{name}": (kind, client.get(f"/static/{name}").raise_for_status().content)
            for name, kind in (
                ("demo.js", "text/javascript"),
                ("keyhouse.js", "text/javascript"),
                ("demo.css", "text/css"),
            )
        }
    assert f'"apiBase": "{demo.url}"' in html
    return {"/demo": ("text/html; charset=utf-8", html.encode()), **assets}


def test_page_served_from_another_origin_shows_a_refusal_not_silence(demo: Demo, page: Page) -> None:
    """The page and keyhouse.js at http://localhost:Q, the API at http://127.0.0.1:P: the browser's
    CORS preflight is refused (no token allows that origin), and the page says so."""
    failed: list[str] = []
    page.on("requestfailed", lambda request: failed.append(f"{request.method} {request.url}"))
    with page_server(copy_of_demo(demo)) as port:
        page.goto(f"http://localhost:{port}/demo")
        text = expect_refusal(page, "The request was blocked", "origin", "(request_blocked)")
        screenshot(page, "05-other-origin-request-blocked")
        origin = f"http://localhost:{port}"
    assert "not allowed for the token" in text
    assert failed == [f"POST {demo.url}/pricing-preview"]
    # Why the browser gave up: keyhouse refuses the CORS preflight for an origin no token allows.
    preflight = httpx.options(
        f"{demo.url}/pricing-preview",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type,keyhouse-environment",
        },
        timeout=10,
    )
    assert preflight.status_code == 403
    assert "access-control-allow-origin" not in preflight.headers


def test_a_page_on_another_origin_can_import_keyhouse_js(demo: Demo, page: Page) -> None:
    """Paddle.js is loaded from Paddle's CDN; keyhouse.js defaults apiBase to the origin it came from."""
    with page_server({"/": ("text/html", b"<!doctype html><title>shop</title>")}) as port:
        page.goto(f"http://localhost:{port}/")
        exported = page.evaluate(
            "async (url) => Object.keys(await import(url)).sort()", f"{demo.url}/static/keyhouse.js"
        )
    assert "PricePreview" in exported


# --- a token for another environment, and a revoked token -----------------------------------------


def test_wrong_environment_is_refused(demo: Demo, page: Page) -> None:
    """The sandbox (test_) token initialized for production: the API refuses it and the page says why."""
    open_demo(page, demo.url)
    settings = page.evaluate(
        """async () => {
            const keyhouse = await import('/static/keyhouse.js');  // the instance demo.js uses
            const { token } = JSON.parse(document.getElementById('demo-config').textContent);
            return keyhouse.Initialize({ token, environment: 'production' });
        }"""
    )
    token = demo.seeded["demo_client_token"]["token"]
    # apiBase defaults to the module's own origin; the token is never echoed whole.
    assert settings == {"token": f"{token[:9]}…", "environment": "production", "apiBase": demo.url}

    page.get_by_label("Quantity of Monthly").fill("2")
    text = expect_refusal(page, "The client-side token was refused", "(invalid_client_token)")
    assert "test_" in text
    assert "production" in text
    screenshot(page, "06-wrong-environment")

    error = page.evaluate(
        """async () => {
            const keyhouse = await import('/static/keyhouse.js');
            try {
                await keyhouse.PricePreview({ items: [] });
                return null;
            } catch (e) {
                return { name: e.name, type: e.type, code: e.code, detail: e.detail,
                         documentation_url: e.documentation_url, status: e.status };
            }
        }"""
    )
    assert error is not None
    assert error == {
        "name": "KeyhouseError",
        "type": "request_error",
        "code": "invalid_client_token",
        "detail": error["detail"],
        "documentation_url": "https://developer.paddle.com/v1/errors/shared/invalid_client_token",
        "status": 403,
    }
    assert "belongs to the sandbox environment" in error["detail"]
    assert "for production" in error["detail"]


def test_revoked_token_is_refused_on_the_next_preview(demo: Demo, page: Page) -> None:
    open_demo(page, demo.url)
    expect_totals(page, 0, "$15.00", "$3.00", "$18.00")
    token = demo.seeded["demo_client_token"]
    try:
        revoked = httpx.patch(
            f"{demo.url}/client-tokens/{token['id']}",
            headers={"Authorization": f"Bearer {demo.seeded['api_key']['key']}"},
            json={"status": "revoked"},
            timeout=10,
        )
        assert revoked.status_code == 200, revoked.text
        assert revoked.json()["data"]["status"] == "revoked"

        page.get_by_label("Quantity of Monthly").fill("4")
        text = expect_refusal(page, "The client-side token was refused", "(invalid_client_token)")
        assert "revoked" in text
        screenshot(page, "07-revoked-token")
    finally:
        # A new demo token, so the other tests do not depend on running before this one.
        demo.seed()
