import os
import subprocess
import sys

import pytest
from django.db import connection
from django.urls import reverse

from cs_platform.settings.env import BASE_DIR

# What settings_test put into the environment must not leak into "production" subprocesses.
_TEST_ONLY_ENV = {
    "SECRET_KEY",
    "DEBUG",
    "SECURE_SSL_REDIRECT",
    "ALLOWED_HOSTS",
    "CELERY_TASK_ALWAYS_EAGER",
    "WECHAT_APPID",
    "WECHAT_SECRET",
}


def _production_env(**overrides: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _TEST_ONLY_ENV}
    env.update(overrides, DJANGO_SETTINGS_MODULE="cs_platform.settings")
    return env


def _django_setup_with(env_overrides: dict[str, str]) -> subprocess.CompletedProcess:
    env = _production_env(**env_overrides)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_settings_refuse_to_start_without_a_secret_key():
    result = _django_setup_with({"DEBUG": "0"})

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr
    assert "SECRET_KEY" in result.stderr


def test_production_settings_refuse_a_development_secret_key():
    result = _django_setup_with({"DEBUG": "0", "SECRET_KEY": "django-insecure-abc"})

    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


GOOD_KEY = "prod-7Qm2vX9kLp4RtZ8wYc3NbH6jDf1GsA5eUo0Ii-x4Vb8Nq2Wr6Ty"


@pytest.mark.parametrize(
    "key",
    [
        "password",  # short: the one an attacker tried and signed an admin JWT with
        "x" * 60,  # long but one character
        "passwordpassword1234passwordpassword",  # long, few distinct characters
        "prod-" + "k3y!" * 15,  # a repeated pattern
        "Tr0ub4dor&3-Tr0ub4dor&3-Tr0ub4dor&3",  # long enough, repetitive
    ],
)
def test_production_settings_refuse_a_weak_secret_key(key):
    result = _django_setup_with({"DEBUG": "0", "SECRET_KEY": key})

    assert result.returncode != 0
    assert "SECRET_KEY is too weak" in result.stderr


def test_a_weak_jwt_signing_key_is_refused_too():
    result = _django_setup_with(
        {"DEBUG": "0", "SECRET_KEY": GOOD_KEY, "JWT_SIGNING_KEY": "password"}
    )

    assert result.returncode != 0
    assert "JWT_SIGNING_KEY is too weak" in result.stderr


def test_the_debug_default_key_never_serves_hosts_beyond_loopback():
    local = _django_setup_with({"DEBUG": "1"})
    exposed = _django_setup_with({"DEBUG": "1", "ALLOWED_HOSTS": "cs.example.com"})
    weak_exposed = _django_setup_with(
        {"DEBUG": "1", "SECRET_KEY": "password", "ALLOWED_HOSTS": "10.0.0.5"}
    )

    assert local.returncode == 0, local.stderr
    assert exposed.returncode != 0 and "ALLOWED_HOSTS is not loopback only" in exposed.stderr
    assert weak_exposed.returncode != 0


def test_jwts_use_their_own_key_when_one_is_set():
    script = (
        "import django; django.setup(); from django.conf import settings as s; "
        "print(s.SIMPLE_JWT['SIGNING_KEY'] == s.SECRET_KEY)"
    )
    other = "jwt-9fK2mQ7xR4tW1zB8nC5vL3hJ6gD0sA-PeYuIoT-3kLm7Np1Qr5St"
    shared = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=_production_env(DEBUG="0", SECRET_KEY=GOOD_KEY),
        capture_output=True,
        text=True,
        timeout=60,
    )
    own = subprocess.run(
        [sys.executable, "-c", script],
        cwd=BASE_DIR,
        env=_production_env(DEBUG="0", SECRET_KEY=GOOD_KEY, JWT_SIGNING_KEY=other),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert shared.stdout.strip() == "True", shared.stderr
    assert own.stdout.strip() == "False", own.stderr


def test_production_settings_start_with_a_real_secret_key():
    result = _django_setup_with({"DEBUG": "0", "SECRET_KEY": GOOD_KEY})

    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_a_typo_in_a_boolean_setting_is_refused():
    result = _django_setup_with({"DEBUG": "ture"})

    assert result.returncode != 0
    assert "DEBUG must be one of" in result.stderr


def test_check_deploy_is_clean_for_production_like_settings():
    env = _production_env(
        DEBUG="0",
        SECRET_KEY=GOOD_KEY,
        ALLOWED_HOSTS="cs.example.com",
        WECHAT_APPID="wx0123456789abcdef",
        WECHAT_SECRET="0123456789abcdef0123456789abcdef",
    )
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=BASE_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_healthz_is_always_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.django_db
def test_readyz_reports_database_and_redis(client):
    response = client.get("/readyz")

    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert checks["database"]["ok"] and checks["redis"]["ok"]


def test_readyz_is_503_when_the_database_is_unreachable(client, django_db_blocker):
    with django_db_blocker.unblock():
        original = dict(connection.settings_dict)
        connection.close()
        # The process's connection pool (if any) holds connections to the real server: drop
        # it, so the next connection is made from the settings below (and gives up in 1 s).
        connection.close_pool()
        connection.settings_dict["PORT"] = 1  # nothing listens there
        if original["OPTIONS"].get("pool"):
            pool = {**original["OPTIONS"]["pool"], "timeout": 1}
            connection.settings_dict["OPTIONS"] = {**original["OPTIONS"], "pool": pool}
        try:
            response = client.get("/readyz")
        finally:
            connection.close()
            connection.close_pool()
            connection.settings_dict.clear()
            connection.settings_dict.update(original)

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["database"]["ok"] is False
    assert body["checks"]["redis"]["ok"] is True


def test_readyz_stays_ready_but_degraded_when_redis_is_unreachable(
    client, settings, django_db_blocker
):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    with django_db_blocker.unblock():
        response = client.get("/readyz")

    # Messages are still accepted without Redis: degraded, not taken out of the balancer.
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["redis"]["ok"] is False


def test_unknown_api_paths_get_the_json_envelope(client):
    response = client.get("/api/does-not-exist/")

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": response.json()["error"]["message"], "fields": {}}
    }


def test_unknown_pages_get_an_html_404(client):
    response = client.get("/nope/", HTTP_ACCEPT="text/html")

    assert response.status_code == 404
    assert b"<html" in response.content


@pytest.mark.django_db
def test_openapi_schema_and_docs_are_served(client):
    schema = client.get(reverse("schema"), HTTP_ACCEPT="application/vnd.oai.openapi+json")
    docs = client.get(reverse("api-docs"))

    assert schema.status_code == 200
    assert b"/api/auth/wechat/" in schema.content
    assert docs.status_code == 200


def test_invalid_json_is_a_400_envelope(api_client):
    response = api_client.post(
        reverse("auth-wechat"), data="{not json", content_type="application/json"
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "parse_error"


def test_a_wrong_content_type_is_a_415_envelope(api_client):
    response = api_client.post(reverse("auth-wechat"), data="code=1", content_type="text/plain")

    assert response.status_code == 415
    assert response.json()["error"]["code"] == "unsupported_media_type"


@pytest.mark.django_db
def test_pages_default_to_simplified_chinese(client):
    response = client.get("/admin/login/")

    assert response.status_code == 200
    assert 'lang="zh-hans"' in response.content.decode()
    assert "用户名" in response.content.decode()


@pytest.mark.django_db
def test_pages_stay_chinese_for_an_english_browser_unless_english_is_chosen(client):
    from django.conf import settings

    default = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "en"
    english = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en-US,en;q=0.9")

    assert "用户名" in default.content.decode()
    assert "Username" in english.content.decode()


def _hand_offs_for_one_request(handler) -> tuple[int, int]:
    """(sync_to_async hand-offs, response status) of one GET /healthz through `handler`."""
    import asyncio

    from asgiref import sync

    calls = []
    real = sync.SyncToAsync.__call__

    async def counted(self, *args, **kwargs):
        calls.append(getattr(self.func, "__name__", repr(self.func)))
        return await real(self, *args, **kwargs)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/healthz",
        "raw_path": b"/healthz",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver")],
        "client": ("127.0.0.1", 50000),
        "server": ("testserver", 80),
    }
    messages = []

    async def receive():
        if not messages:
            messages.append("body")
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.sleep(3600)

    status = []

    async def send(message):
        if message["type"] == "http.response.start":
            status.append(message["status"])

    sync.SyncToAsync.__call__ = counted
    try:
        asyncio.run(handler(scope, receive, send))
    finally:
        sync.SyncToAsync.__call__ = real
    return len(calls), status[0]


@pytest.mark.django_db(transaction=True)
def test_the_asgi_handler_serves_a_request_in_one_thread_hand_off():
    """Middleware and view in one hop (plus the request_started and close signals Django sends
    around every request); Django's own handler takes two more for our sync middleware."""
    from django.core.handlers.asgi import ASGIHandler

    from common.asgi_handler import OneHopASGIHandler

    ours, status = _hand_offs_for_one_request(OneHopASGIHandler())
    stock, stock_status = _hand_offs_for_one_request(ASGIHandler())
    assert status == stock_status == 200
    assert ours == 3
    assert stock == ours + 2


def test_a_web_process_loads_no_engine_and_no_audio_stack():
    """Web processes serve cached speech as files and rows (#14): loading the ASGI application
    and every URL module must not import torch, the recogniser or the audio encoders (scipy and
    pyloudnorm alone were ~60 MiB of every web worker's RSS)."""
    import json
    import os
    import subprocess
    import sys

    script = (
        "import json, sys\n"
        "import cs_platform.asgi\n"
        "from django.urls import get_resolver\n"
        "get_resolver().url_patterns\n"
        "heavy = ('torch', 'ctranslate2', 'faster_whisper', 'scipy', 'pyloudnorm', 'av')\n"
        "print(json.dumps(sorted(m for m in heavy if m in sys.modules)))\n"
    )
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="cs_platform.settings", DEBUG="1")
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []
