"""The agent console in Chromium, served by a real ASGI server (uvicorn) so the chat WebSocket
works: log in, answer with a canned phrase, see the audio player appear, see a customer message
arrive live."""

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from django.db import connection

from conftest import SEEDS  # the suite-wide seed list (root conftest.py)
from dialogs.services.conversations import conversation_create
from dialogs.services.messages import customer_message_create

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the server process must see committed rows
]

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module", autouse=True)
def _reseed_after_flush(django_db_blocker):
    """Transactional tests end with a flush of the shared test database; put the seed rows
    (presets, intents, phrases, groups) back for the tests that run after this module."""
    yield
    import importlib

    from django.apps import apps

    with django_db_blocker.unblock():
        for module, function in SEEDS:
            getattr(importlib.import_module(module), function)(apps, None)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def asgi_server(transactional_db):
    db = connection.settings_dict
    port = _free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="cs_platform.settings_test",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        SESSION_COOKIE_SECURE="0",  # plain http on 127.0.0.1
        CSRF_COOKIE_SECURE="0",
        CELERY_TASK_ALWAYS_EAGER="1",
        TTS_NUM_THREADS="1",
    )
    log = open(ROOT / "var" / f"browser-test-uvicorn-{port}.log", "wb")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "cs_platform.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, "uvicorn exited; see var/browser-test-uvicorn.log"
                time.sleep(0.2)
        else:
            raise AssertionError("uvicorn did not start")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.fixture
def browser_page(monkeypatch):
    if not Path(CHROMIUM).exists():
        pytest.skip("chromium is not installed (apt-get install chromium)")
    playwright_api = pytest.importorskip("playwright.sync_api")
    # Playwright's sync API keeps an event loop in this thread; the test's ORM calls are plain
    # synchronous setup, so Django's async-safety guard does not apply to them.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with playwright_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(locale="zh-CN")
        try:
            yield page
        finally:
            browser.close()


def _in_thread(function, **kwargs):
    errors = []

    def run():
        try:
            function(**kwargs)
        except Exception as exc:  # re-raised in the test thread
            errors.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    if errors:
        raise errors[0]


def test_agent_answers_with_a_canned_phrase_and_hears_it(
    asgi_server, browser_page, customer, agent
):
    conversation = conversation_create(customer=customer)
    _in_thread(
        customer_message_create, conversation=conversation, author=customer, text="太差了，我要投诉"
    )
    page = browser_page

    page.goto(f"{asgi_server}/console/")
    assert "/admin/login/" in page.url
    page.fill("#id_username", agent.username)
    page.fill("#id_password", "pw-123456!")
    page.click("input[type=submit]")
    page.wait_for_url(f"{asgi_server}/console/")
    page.click(f'tr[data-conversation="{conversation.pk}"] a')
    page.wait_for_selector("body[data-live=websocket]", timeout=15000)
    assert page.input_value("#emotion") == "calm"  # the policy's suggestion for a complaint

    page.fill("#reply-text", "/sor")
    page.wait_for_selector('#phrase-list li[data-short-code="sorry"]')
    page.press("#reply-text", "Enter")
    assert page.input_value("#reply-text").startswith("非常抱歉")
    page.click("#send")

    audio = page.wait_for_selector(".msg.from-agent audio", timeout=60000)
    src = audio.get_attribute("src")
    assert src.startswith("/media/audio/")
    response = page.request.get(f"{asgi_server}{src}")
    assert response.status == 200 and len(response.body()) > 1000

    # A new customer message arrives over the socket, without a reload. Written from another
    # thread: publishing uses async_to_sync, which refuses a thread with Playwright's loop.
    _in_thread(
        customer_message_create, conversation=conversation, author=customer, text="运费多少钱"
    )
    page.wait_for_selector(".msg.from-customer >> text=运费多少钱", timeout=10000)
