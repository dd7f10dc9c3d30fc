"""Security headers (CSP, HSTS, ...), CSRF on the console, the admin login rate limit and log
hygiene: customer text and secrets never reach a log record."""

import json
import logging
import re

import pytest
from django.contrib.staticfiles import finders
from django.test import Client
from django.urls import reverse

from accounts.services import tokens_for_user
from common.redaction import RedactingFormatter, redact, traceback_summary
from tts.adapters import reset_engine

pytestmark = pytest.mark.django_db

PRIVATE_TEXT = "我的银行卡号是六二二二零二一八八八，身份证尾号三四五六，请帮我冻结账户"


def _csp(response) -> dict[str, list[str]]:
    header = response["Content-Security-Policy"]
    directives = {}
    for part in header.split(";"):
        name, *values = part.split()
        directives[name] = values
    return directives


def _inline_scripts(html: str) -> list[str]:
    """Opening tags of <script> elements that are executable and inline (no src)."""
    tags = re.findall(r"<script\b[^>]*>", html)
    return [t for t in tags if "src=" not in t and 'type="application/json"' not in t]


@pytest.fixture
def agent_client(agent):
    client = Client()
    client.force_login(agent)
    return client


def test_console_page_scripts_run_only_with_this_responses_nonce(agent_client, conversation):
    response = agent_client.get(reverse("console:conversation", args=[conversation.pk]))
    assert response.status_code == 200
    csp = _csp(response)
    nonces = [v for v in csp["script-src"] if v.startswith("'nonce-")]
    assert csp["script-src"][0] == "'self'" and len(nonces) == 1
    nonce = nonces[0][len("'nonce-") : -1]
    inline = _inline_scripts(response.content.decode())
    assert inline, "the console script is inline and must carry the nonce"
    assert all(f'nonce="{nonce}"' in tag for tag in inline)
    # A fresh nonce per response: a nonce seen once cannot be replayed by an injection.
    again = agent_client.get(reverse("console:conversation", args=[conversation.pk]))
    assert _csp(again)["script-src"] != csp["script-src"]


def test_chat_page_has_the_nonce_and_can_open_its_websocket(client, settings):
    settings.ALLOWED_HOSTS = ["cs.example.com"]
    response = client.get("/chat/", HTTP_HOST="cs.example.com", HTTP_X_FORWARDED_PROTO="https")
    assert response.status_code == 200
    csp = _csp(response)
    assert all("nonce=" in tag for tag in _inline_scripts(response.content.decode()))
    assert "wss://cs.example.com" in csp["connect-src"]
    assert "ws://cs.example.com" not in csp["connect-src"]  # no plain socket on an https page
    assert "'self'" in csp["connect-src"]


@pytest.mark.parametrize("path", ["/chat/", "/admin/login/", "/api/docs/", "/api/conversations/"])
def test_every_page_gets_the_protective_headers(client, path, settings):
    settings.ALLOWED_HOSTS = ["cs.example.com"]
    response = client.get(path, HTTP_HOST="cs.example.com")
    csp = _csp(response)
    assert csp["frame-ancestors"] == ["'none'"]
    assert csp["object-src"] == ["'none'"]
    assert csp["default-src"] == ["'self'"]
    assert "'unsafe-inline'" not in csp["script-src"] and "'unsafe-eval'" not in csp["script-src"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Referrer-Policy"] == "same-origin"
    assert response["X-Frame-Options"] == "DENY"


def test_hsts_is_sent_behind_the_https_proxy_only(client):
    secure = client.get("/healthz", HTTP_X_FORWARDED_PROTO="https")
    assert secure.status_code == 200
    assert "max-age=31536000" in secure["Strict-Transport-Security"]
    assert "includeSubDomains" in secure["Strict-Transport-Security"]
    plain = client.get("/healthz")
    assert "Strict-Transport-Security" not in plain


def test_api_docs_load_nothing_from_a_cdn(client):
    html = client.get("/api/docs/").content.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/static/") for u in urls), urls
    for url in urls:
        assert finders.find(url.removeprefix("/static/")), f"{url} is not a local static file"
    assert all("nonce=" in tag for tag in _inline_scripts(html))


def test_admin_pages_have_no_inline_script(client, admin_user):
    client.force_login(admin_user)
    for path in ("/admin/login/", "/admin/", "/admin/accounts/authevent/"):
        html = client.get(path, follow=True).content.decode()
        assert _inline_scripts(html) == [], path


def test_console_reply_without_the_csrf_token_is_refused(agent, conversation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    url = reverse("console:reply", args=[conversation.pk])
    response = client.post(url, json.dumps({"text": "您好"}), content_type="application/json")
    assert response.status_code == 403
    assert not conversation.messages.exists()


def test_admin_login_is_rate_limited_per_ip(client, settings):
    from conftest import ratelimit_headroom

    settings.ADMIN_LOGIN_RATE_LIMIT = "3/m"
    ratelimit_headroom("203.0.113.7", "203.0.113.8")
    attempt = {"username": "admin", "password": "guess"}
    statuses = [
        client.post("/admin/login/", attempt, REMOTE_ADDR="203.0.113.7").status_code
        for _ in range(4)
    ]
    assert statuses[:3] == [200, 200, 200]  # the form again, with an error
    refused = client.post("/admin/login/", attempt, REMOTE_ADDR="203.0.113.7")
    assert statuses[3] == 429 and refused.status_code == 429
    assert refused["Retry-After"] == "60"
    # Another address is not affected.
    assert client.post("/admin/login/", attempt, REMOTE_ADDR="203.0.113.8").status_code == 200


def test_the_admin_login_page_itself_is_not_limited(client, settings):
    settings.ADMIN_LOGIN_RATE_LIMIT = "1/m"
    assert all(client.get("/admin/login/").status_code == 200 for _ in range(5))


# --- log hygiene ---------------------------------------------------------------------------


class _EngineThatQuotesItsInput:
    """A TTS engine (plugged in through TTS_ENGINE) whose errors repeat the text - as a real
    library's error message might. The platform must still not log the text."""

    engine_version = "quoting-failure-1"

    def synthesize(self, text, **kwargs):
        raise RuntimeError(f"cannot synthesise {text!r}")

    def synthesize_batch(self, texts, **kwargs):
        raise RuntimeError(f"cannot synthesise {texts!r}")

    def utterances(self, text, **kwargs):
        raise RuntimeError(f"cannot split {text!r}")


def quoting_engine_factory():
    return _EngineThatQuotesItsInput()


@pytest.fixture
def quoting_engine(settings):
    settings.TTS_ENGINE = f"{__name__}.quoting_engine_factory"
    reset_engine()
    yield
    reset_engine()


def _all_logged_text(caplog) -> str:
    """Every record as logged: caplog's handler is not ours, and the redacting formatter leaves
    records alone, so this is what the code itself wrote - before any safety net."""
    formatter = logging.Formatter("%(message)s")
    return "\n".join(formatter.format(record) for record in caplog.records) + caplog.text


def test_log_hygiene_tests_see_records_before_redaction(caplog):
    # The guard for the two tests below: if the production handler rewrote records in place
    # (as it once did), caplog would see "[redacted ...]" here and those tests would prove
    # nothing about what the code logs.
    caplog.set_level(logging.INFO)
    logging.getLogger("dialogs.services").warning("leaked %s", PRIVATE_TEXT)

    assert PRIVATE_TEXT in _all_logged_text(caplog)


def test_customer_text_never_reaches_the_log_when_synthesis_fails(
    caplog, customer, agent, conversation, quoting_engine, django_capture_on_commit_callbacks
):
    caplog.set_level(logging.DEBUG)
    api = Client()
    token = tokens_for_user(user=customer)["access"]
    with django_capture_on_commit_callbacks(execute=True):
        posted = api.post(
            f"/api/conversations/{conversation.pk}/messages/",
            json.dumps({"text": PRIVATE_TEXT}),
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        )
    assert posted.status_code == 201
    console = Client()
    console.force_login(agent)
    reply = f"收到：{PRIVATE_TEXT}"
    with django_capture_on_commit_callbacks(execute=True):
        replied = console.post(
            reverse("console:reply", args=[conversation.pk]),
            json.dumps({"text": reply}),
            content_type="application/json",
        )
    assert replied.status_code == 201
    # The synthesis did fail, and that failure was logged (so the check below means something).
    assert any("synthesis failed" in r.getMessage() for r in caplog.records)
    logged = _all_logged_text(caplog)
    assert "RuntimeError" in logged
    for fragment in (PRIVATE_TEXT, "六二二二零二一八八八", "身份证尾号"):
        assert fragment not in logged
    assert token not in logged


def test_the_tts_api_does_not_log_the_text_either(caplog, customer, quoting_engine):
    caplog.set_level(logging.DEBUG)
    token = tokens_for_user(user=customer)["access"]
    response = Client().post(
        "/api/tts/",
        json.dumps({"text": PRIVATE_TEXT}),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 503
    assert "Traceback" not in response.content.decode()
    assert PRIVATE_TEXT not in _all_logged_text(caplog)


def test_the_redacting_filter_hides_secrets_tokens_and_chinese_text():
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJ1c2VyX2lkIjo0Mn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
    line = (
        "GET https://api.weixin.qq.com/sns/jscode2session?appid=wx1&secret=s3cr3t-app&js_code=abc"
        f' WebSocket /ws/tts/?token={jwt} body {{"text": "hello", "password": "hunter2"}}'
        f" Authorization: Bearer csk_AbCdEf123456 message: {PRIVATE_TEXT}"
    )
    cleaned = redact(line)
    for secret in ("s3cr3t-app", jwt, "hunter2", "csk_AbCdEf123456", "六二二二", '"hello"'):
        assert secret not in cleaned
    assert "appid=wx1" in cleaned and "/ws/tts/" in cleaned  # the useful part stays
    assert redact("voicing message 12 failed (engine unavailable); retry in 5s") == (
        "voicing message 12 failed (engine unavailable); retry in 5s"
    )


def test_the_formatter_redacts_arguments_and_tracebacks_without_touching_the_record():
    formatter = RedactingFormatter("%(message)s")
    try:
        raise ValueError(f"bad input {PRIVATE_TEXT}")
    except ValueError:
        import sys

        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed on %s", (PRIVATE_TEXT,), sys.exc_info()
        )
    formatted = formatter.format(record)
    assert "ValueError" in formatted and "failed on" in formatted
    assert "六二二二" not in formatted
    assert record.args == (PRIVATE_TEXT,)  # other handlers still see what was logged


def test_the_production_log_handlers_redact(settings):
    assert settings.LOGGING["loggers"]["httpx"]["level"] == "WARNING"  # URLs carry the secret
    for name in ("", "django", "django.request", "uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        while not logger.handlers and logger.propagate and logger.parent:
            logger = logger.parent
        ours = [h for h in logger.handlers if not type(h).__module__.startswith("_pytest")]
        assert ours, name
        assert all(isinstance(h.formatter, RedactingFormatter) for h in ours), name


def test_traceback_summary_has_the_place_not_the_message():
    try:
        raise RuntimeError(PRIVATE_TEXT)
    except RuntimeError as exc:
        summary = traceback_summary(exc)
    assert "RuntimeError" in summary and "test_security.py" in summary
    assert PRIVATE_TEXT not in summary
