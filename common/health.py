"""Liveness and readiness probes for the proxy / orchestrator."""

import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.utils.module_loading import import_string


def healthz(request):
    return JsonResponse({"status": "ok"})


def _check_database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True}


def _check_redis() -> dict:
    if not settings.REDIS_URL:
        return {"ok": True, "detail": "not configured (embedded mode)"}
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=1, socket_timeout=1)
    try:
        client.ping()
    finally:
        client.close()
    return {"ok": True}


def _run(check: Callable[[], dict]) -> dict:
    started = time.perf_counter()
    try:
        result = check()
    except Exception as exc:
        # Only the exception type: messages may carry DSNs or hostnames.
        result = {"ok": False, "detail": type(exc).__name__}
    result["ms"] = round((time.perf_counter() - started) * 1000, 1)
    return result


def readiness_checks() -> dict[str, Callable[[], dict]]:
    checks: dict[str, Callable[[], dict]] = {"database": _check_database, "redis": _check_redis}
    for name, dotted in getattr(settings, "READINESS_EXTRA_CHECKS", {}).items():
        checks[name] = import_string(dotted)
    return checks


# Redis down degrades the service (caches and rate limits fall back to process memory,
# voicing waits in `pending` until the sweep requeues it) but every process can still accept
# and store messages. Taking ALL instances out of the load balancer for it - they share one
# Redis - would turn a degradation into a full outage, so it reports without failing.
NON_CRITICAL_CHECKS = frozenset({"redis", "remote_engines"})
# (remote_engines: a TTS voice on another box is down; that voice falls back to the local one.)


def readyz(request):
    results = {name: _run(check) for name, check in readiness_checks().items()}
    ready = all(r["ok"] for name, r in results.items() if name not in NON_CRITICAL_CHECKS)
    degraded = ready and not all(r["ok"] for r in results.values())
    status = "degraded" if degraded else "ready" if ready else "not_ready"
    return JsonResponse({"status": status, "checks": results}, status=200 if ready else 503)
