"""Suite-wide fixtures. The suite needs real PostgreSQL and Redis: say how to start them."""

import importlib
import os

import pytest
from hypothesis import settings as hypothesis_settings

from scripts.check_services import HELP, reachable

# Fixtures shared across apps, each defined once, next to the app whose data it makes.
pytest_plugins = ["accounts.tests.fixtures", "tts.tests.fixtures", "dialogs.tests.fixtures"]

# Property tests explore freely on a developer's machine; in CI (CI=true) they replay the same
# derandomised cases, so a red CI run is a reproducible bug rather than an unlucky draw.
hypothesis_settings.register_profile("ci", derandomize=True, database=None)
if os.environ.get("CI"):
    hypothesis_settings.load_profile("ci")


# With CI set, a skipped test is a failed test: a skip hides a claim nobody checked (the ASR
# negative control skipped for months because CI lacked espeak-ng). The only exceptions are
# named here, each with the condition under which it may skip: tests that need a CUDA device,
# on a machine without one. Everything else a test needs, `.ci/run` installs.
CI_ALLOWED_SKIPS: dict[str, str] = {
    "tts/tests/engine/test_vocoder.py::test_cuda_fp32_and_fp16": "cuda",
    "tts/tests/engine/test_acoustic.py::test_cuda_matches_cpu_and_is_deterministic": "cuda",
}


def _skip_allowed_in_ci(nodeid: str) -> bool:
    condition = CI_ALLOWED_SKIPS.get(nodeid.split("[")[0])
    if condition == "cuda":
        import torch

        return not torch.cuda.is_available()
    return False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if (
        os.environ.get("CI")
        and report.skipped
        and not hasattr(report, "wasxfail")
        and not _skip_allowed_in_ci(item.nodeid)
    ):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = (
            f"skipped in CI ({reason}). CI=true turns skips into failures: install what the "
            "test needs in .ci/run, or name the test in CI_ALLOWED_SKIPS (conftest.py) with "
            "the condition under which it may skip."
        )


def pytest_sessionstart(session):
    for what, env_name, port in (
        ("PostgreSQL", "DATABASE_URL", 5432),
        ("Redis", "REDIS_URL", 6379),
    ):
        url = os.environ.get(env_name, "")
        if url and not reachable(url, port):
            pytest.exit(HELP.format(what=what, url=url), returncode=3)


# Reference data created by data migrations. A transactional test anywhere in the suite
# flushes the test database (seeds included) and --reuse-db keeps it that way, so every
# database test re-applies these idempotent seed functions first.
SEEDS = [
    ("tts.migrations.0002_seed_voice_and_presets", "seed"),
    ("dialogs.migrations.0002_seed_intents_rules_phrases", "seed"),
    ("dialogs.migrations.0003_staff_groups", "create_groups"),
    ("tts.migrations.0006_history_names", "translate"),
    ("dialogs.migrations.0009_seed_workflow", "seed"),
]


@pytest.fixture(autouse=True)
def _reference_data(request):
    marker = request.node.get_closest_marker("django_db")
    names = set(request.fixturenames)
    if marker is None and not names & {"db", "transactional_db"}:
        return
    transactional = "transactional_db" in names or bool(marker and marker.kwargs.get("transaction"))
    request.getfixturevalue("transactional_db" if transactional else "db")
    from django.apps import apps

    from dialogs.services.phrases import phrase_rendering_paused

    # Re-seeding creates the canned phrases again; rendering them is not what a test is about.
    with phrase_rendering_paused():
        for module, function in SEEDS:
            getattr(importlib.import_module(module), function)(apps, None)


@pytest.fixture(autouse=True)
def _clear_cache_between_tests():
    """Drop this run's cache keys (rate-limit counters) only.

    Not cache.clear(): on Redis that is FLUSHDB, which would also drop Celery's queue.
    """
    yield
    import redis
    from django.conf import settings

    from tts.selectors import voice_default_forget

    voice_default_forget()  # the process's copy of the default voice: rows roll back

    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


def ratelimit_headroom(*values: str, period: int = 60, need: int = 20) -> None:
    """Wait, if need be, until the rate-limit windows of these key values (a user id, an IP,
    "api-key:<pk>") have at least `need` seconds left. django-ratelimit counts in fixed windows
    whose end depends on the key (a crc32 jitter): a test whose requests straddle a window end
    sees its counter reset half-way and fails by chance. Called at the start of such tests."""
    import time

    from django_ratelimit.core import _get_window

    for _ in range(2):
        left = min(_get_window(str(v), period) - int(time.time()) for v in values)
        if left >= need:
            return
        time.sleep(left + 1)


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()


@pytest.fixture(scope="session")
def engine():
    """The real engine, loaded once for the test session (needs `manage.py tts_install_model`)."""
    from django.conf import settings

    from tts.installer import voice_dir

    if not (voice_dir(settings.TTS_MODEL_DIR) / "config.json").exists():
        pytest.skip("TTS model not installed: run `python manage.py tts_install_model`")
    from tts.adapters import get_engine

    return get_engine()


@pytest.fixture(scope="session")
def recognizer():
    """The production recogniser, loaded once (needs `manage.py asr_install_model`; fails loudly)."""
    from django.conf import settings

    if not (settings.ASR_MODEL_DIR / "model.bin").exists():
        pytest.fail(
            f"ASR model missing in {settings.ASR_MODEL_DIR}: run `python manage.py asr_install_model`"
        )
    from tts.adapters import asr_recognizer

    return asr_recognizer()


@pytest.fixture(scope="session")
def spoken_request(engine):
    """Our engine saying a customer-service sentence (float samples, rate, reference text)."""
    text = "我要退款，订单号是三七二一。"
    speech = engine.synthesize(text)
    return speech.samples, speech.sample_rate, text
