"""Real screens under test: a uvicorn process on the test database (restartable, so a test can
kill the server mid-conversation) and Debian's Chromium driven by Playwright, with every page
watched for console errors and Content-Security-Policy violations.

Not a conftest: the browser modules import the fixtures they use, so the rest of the suite
never pays for them.
"""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # The page decides what may autoplay (only replies that arrive live); the browser's own
    # gesture rule would make that untestable in a headless run.
    "--autoplay-policy=no-user-gesture-required",
]
PASSWORD = "pw-123456!"  # accounts.tests.factories

# Runs before any page script: counts play() calls (with their source) and records CSP
# violations, so a test can say "exactly one clip played" and "no CSP violation".
WATCH_SCRIPT = """
window.__plays = [];
window.__csp = [];
const play = HTMLMediaElement.prototype.play;
HTMLMediaElement.prototype.play = function () {
  window.__plays.push(this.currentSrc || this.src);
  return play.apply(this, arguments);
};
document.addEventListener("securitypolicyviolation", function (e) {
  window.__csp.push(e.violatedDirective + " " + e.blockedURI);
});
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class UvicornServer:
    """One ASGI server process on a fixed port; `restart()` keeps the port, so open pages
    reconnect to the same address as they would after a deploy."""

    def __init__(self, env: dict[str, str]):
        self.port = free_port()
        self.env = env
        self.process: subprocess.Popen | None = None
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = ROOT / "var" / f"browser-test-uvicorn-{self.port}.log"

    def start(self) -> None:
        self.log_path.parent.mkdir(exist_ok=True)
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "cs_platform.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                return
            except OSError:
                assert self.process.poll() is None, f"uvicorn exited; see {self.log_path}"
                time.sleep(0.2)
        raise AssertionError(f"uvicorn did not start; see {self.log_path}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                # Open WebSockets can hold a graceful shutdown on a busy machine; the test is
                # about what clients see after the server goes away, so a hard stop is the same.
                self.process.kill()
                self.process.wait(timeout=15)
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


def server_env(**extra: str) -> dict[str, str]:
    db = connection.settings_dict
    return dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="cs_platform.settings_test",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        SESSION_COOKIE_SECURE="0",  # plain http on 127.0.0.1
        CSRF_COOKIE_SECURE="0",
        CELERY_TASK_ALWAYS_EAGER="1",
        TTS_NUM_THREADS="1",
        # The chat page signs the demo customer in through the dev login.
        DEBUG="1",
        WECHAT_DEV_LOGIN="1",
        **extra,
    )


@pytest.fixture
def uvicorn_server(transactional_db):
    server = UvicornServer(server_env())
    server.start()
    try:
        yield server
    finally:
        server.stop()


class PageWatch:
    """Console errors, uncaught exceptions and CSP violations of one page."""

    def __init__(self, page, name: str):
        self.page = page
        self.name = name
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        page.on("response", self._response)

    def _response(self, response) -> None:
        # The console line says "404" without the address: keep the address too.
        if response.status >= 400:
            self.errors.append(f"HTTP {response.status} {response.request.method} {response.url}")

    def _console(self, message) -> None:
        if message.type == "error":
            self.errors.append(f"console.error: {message.text}")

    def plays(self) -> list[str]:
        return self.page.evaluate("window.__plays")

    def assert_clean(self, *, allow: tuple[str, ...] = ()) -> None:
        csp = self.page.evaluate("window.__csp || []")
        errors = [e for e in self.errors if not any(a in e for a in allow)]
        assert not csp, f"CSP violations on the {self.name} page: {csp}"
        assert not errors, f"console errors on the {self.name} page: {errors}"


@pytest.fixture
def chromium(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "Debian's chromium is needed for the browser tests: apt-get install chromium "
            "(bash .ci/run installs it)"
        )
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the test's ORM calls are plain
    # synchronous setup, so Django's async-safety guard does not apply to them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _has_favicon() -> bool:
    from django.urls import NoReverseMatch, reverse

    try:
        reverse("favicon")
    except NoReverseMatch:
        return False
    return True


def open_page(browser, *, name: str, phone: bool):
    """A page in its own context (own cookies): a phone for the customer, a desktop for staff."""
    viewport = {"width": 390, "height": 844} if phone else {"width": 1440, "height": 900}
    context = browser.new_context(
        locale="zh-CN",
        timezone_id="Asia/Shanghai",
        viewport=viewport,
        device_scale_factor=2 if phone else 1,
        is_mobile=phone,
        has_touch=phone,
    )
    context.add_init_script(WATCH_SCRIPT)
    if not _has_favicon():
        # The admin's login page has no icon link, so Chromium asks for /favicon.ico; until
        # the site serves one (the admin-polish branch adds it) that 404 is not this page's.
        context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = context.new_page()
    return page, PageWatch(page, name)


def staff_login(page, server_url: str, user, next_path: str = "/console/") -> None:
    page.goto(f"{server_url}{next_path}")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_url(f"{server_url}{next_path}")


def customer_start(page, server_url: str) -> int:
    page.goto(f"{server_url}/chat/")
    page.click("#login")
    page.wait_for_selector("#status[data-state=live]", timeout=30000)
    return int(page.get_attribute("body", "data-conversation-id"))


def send(page, text: str) -> None:
    """The customer types `text` and presses Enter; returns once the server stored it."""
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_selector(f".row.from-customer[data-message-id] >> text={text}", timeout=15000)


def in_thread(function, **kwargs):
    """Run a service outside Playwright's event loop (publishing uses async_to_sync)."""
    result, errors = [], []

    def run():
        try:
            result.append(function(**kwargs))
        except Exception as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if errors:
        raise errors[0]
    return result[0] if result else None


def wait_until(predicate, *, timeout: float = 20.0, what: str = "condition"):
    """Poll `predicate` (a database read, say) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def reseed_after_flush(django_db_blocker):
    """Transactional tests end with a flush of the shared test database: put the seed rows
    back for the modules that run after this one. Browser modules name it in `pytestmark`
    (`usefixtures`); dialogs/tests/conftest.py makes it visible to them."""
    yield
    import importlib

    from django.apps import apps

    from conftest import SEEDS

    with django_db_blocker.unblock():
        for module, function in SEEDS:
            getattr(importlib.import_module(module), function)(apps, None)
