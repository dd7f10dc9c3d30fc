"""Suite-wide fixtures. The suite needs real PostgreSQL and Redis: say how to start them."""

import os

import pytest

from scripts.check_services import HELP, reachable


def pytest_sessionstart(session):
    for what, env_name, port in (
        ("PostgreSQL", "DATABASE_URL", 5432),
        ("Redis", "REDIS_URL", 6379),
    ):
        url = os.environ.get(env_name, "")
        if url and not reachable(url, port):
            pytest.exit(HELP.format(what=what, url=url), returncode=3)


@pytest.fixture(autouse=True)
def _clear_cache_between_tests():
    """Drop this run's cache keys (rate-limit counters) only.

    Not cache.clear(): on Redis that is FLUSHDB, which would also drop Celery's queue.
    """
    yield
    import redis
    from django.conf import settings

    client = redis.Redis.from_url(settings.REDIS_URL)
    prefix = settings.CACHES["default"].get("KEY_PREFIX", "")
    keys = list(client.scan_iter(match=f"{prefix}:*", count=500))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def api_client():
    from rest_framework.test import APIClient

    return APIClient()
