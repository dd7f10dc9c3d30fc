"""Test settings: real PostgreSQL and Redis (never a silent SQLite fallback).

Lives outside the settings package so the env defaults below are set before it is imported.
"""

import os

os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cs_platform")
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/0")
os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789abcdef")
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "1")
# Start-up checks have their own tests (cs_platform/tests/test_startup.py).
os.environ.setdefault("STARTUP_CHECKS", "")
# Configured, so /readyz is ready; tests that log in through WeChat point WECHAT_API_BASE at
# their own local server (accounts/tests/wechat_server.py).
os.environ.setdefault("WECHAT_APPID", "wx-test-appid")
os.environ.setdefault("WECHAT_SECRET", "wx-test-secret")

from cs_platform.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# The test suite's 429 checks set their own limits; a shared Redis must not carry state
# between runs, so every run gets its own key prefix.
for _cache in CACHES.values():  # noqa: F405
    _cache["KEY_PREFIX"] = f"test-{os.getpid()}"
