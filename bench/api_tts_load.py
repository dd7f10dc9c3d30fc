"""Loopback measurements of the speech API against a real uvicorn process.

1. Requests/second of a *cached* `POST /api/tts/` (JWT auth, rate-limit counter, cache lookup,
   audit row, audio bytes): one priming call, then a bounded run (count and seconds).
2. First-chunk latency of `/ws/tts/` for a short sentence: time from sending the request to the
   first binary frame, median of a few runs (PCM and MP3).

It uses its own PostgreSQL database (`cs_platform_bench`, created and migrated if missing) and
Redis, and lifts the TTS rate limit for the server it starts (TTS_RATE_LIMIT env) only.

    .venv/bin/python bench/api_tts_load.py [--requests 2000] [--seconds 20] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXT = "您好，很高兴为您服务，请问有什么可以帮您？"
SENTENCE_20 = "您好，您的订单已经发货，预计明天下午送达。"  # 20 characters plus the full stop

ENV = {
    "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
    "DATABASE_URL": os.environ.get(
        "BENCH_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cs_platform_bench"
    ),
    "REDIS_URL": os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/3"),
    "SECRET_KEY": "bench-secret-key-not-for-production-0123456789abcdef",
    "DEBUG": "0",
    "SECURE_SSL_REDIRECT": "0",
    "ALLOWED_HOSTS": "127.0.0.1,localhost",
    "TTS_RATE_LIMIT": "1000000/m",  # this run only: the point is throughput, not the limit
    "LOG_LEVEL": "WARNING",
    # Persistent connections leak under ASGI (each request runs in a new thread that keeps its
    # own connection until CONN_MAX_AGE): with the default 60 s, a sustained load exhausts
    # PostgreSQL's max_connections and requests fail with 503. Override to compare.
    "DB_CONN_MAX_AGE": os.environ.get("DB_CONN_MAX_AGE", "0"),
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _prepare_database() -> str:
    """Create/migrate the bench database and return a fresh access token for a customer."""
    os.environ.update(ENV)
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        if not db.execute("select 1 from pg_database where datname='cs_platform_bench'").fetchone():
            db.execute("create database cs_platform_bench")
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env={**os.environ},
        check=True,
    )
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from accounts.services import customer_get_or_create, tokens_for_user

    return tokens_for_user(user=customer_get_or_create(openid="bench-openid"))["access"]


def _start_server(port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "uvicorn"),
            "cs_platform.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            "--log-level=warning",
            "--no-access-log",
        ],
        cwd=ROOT,
        env={**os.environ, **ENV},
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return server
        except OSError:
            time.sleep(0.2)
    server.kill()
    raise RuntimeError("uvicorn did not start")


async def _http_load(base: str, token: str, requests: int, seconds: float, concurrency: int):
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    body = {"text": TEXT}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=30) as client:
        prime = await client.post("/api/tts/", json=body)  # synthesises once, then cached
        prime.raise_for_status()
        for _ in range(20):  # warm-up: connections, caches
            (await client.post("/api/tts/", json=body)).raise_for_status()
        latencies: list[float] = []
        statuses: dict[str, int] = {}
        remaining = requests
        stop_at = time.perf_counter() + seconds

        async def worker():
            nonlocal remaining
            while remaining > 0 and time.perf_counter() < stop_at:
                remaining -= 1
                started = time.perf_counter()
                response = await client.post("/api/tts/", json=body)
                latencies.append(time.perf_counter() - started)
                label = f"{response.status_code} {response.headers.get('X-Cache', '-')}"
                statuses[label] = statuses.get(label, 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    latencies.sort()
    return {
        "requests": len(latencies),
        "seconds": round(elapsed, 2),
        "requests_per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(latencies[len(latencies) // 2] * 1000, 1),
        "p95_ms": round(latencies[int(len(latencies) * 0.95)] * 1000, 1),
        "statuses": statuses,
        "audio_bytes": len(prime.content),
        "concurrency": concurrency,
    }


async def _first_chunk(ws_base: str, origin: str, token: str, fmt: str, runs: int):
    import websockets

    firsts, totals = [], []
    async with websockets.connect(f"{ws_base}/ws/tts/?token={token}", origin=origin) as ws:
        for _ in range(runs + 1):  # the first run warms up (engine load in the server)
            started = time.perf_counter()
            await ws.send(json.dumps({"text": SENTENCE_20, "format": fmt}))
            first = None
            while True:
                frame = await ws.recv()
                if isinstance(frame, bytes):
                    first = first or time.perf_counter() - started
                elif json.loads(frame)["type"] in {"end", "error"}:
                    assert json.loads(frame)["type"] == "end", frame
                    break
            firsts.append(first)
            totals.append(time.perf_counter() - started)
    firsts, totals = firsts[1:], totals[1:]
    return {
        "format": fmt,
        "runs": runs,
        "first_chunk_median_ms": round(statistics.median(firsts) * 1000, 1),
        "first_chunk_all_ms": [round(f * 1000) for f in firsts],
        "reply_done_median_ms": round(statistics.median(totals) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--ws-runs", type=int, default=5)
    args = parser.parse_args()

    token = _prepare_database()
    port = _free_port()
    server = _start_server(port)
    try:
        base = f"http://127.0.0.1:{port}"
        ws = asyncio.run(_first_chunk(f"ws://127.0.0.1:{port}", base, token, "pcm", args.ws_runs))
        ws_mp3 = asyncio.run(
            _first_chunk(f"ws://127.0.0.1:{port}", base, token, "mp3", args.ws_runs)
        )
        http = asyncio.run(_http_load(base, token, args.requests, args.seconds, args.concurrency))
    finally:
        server.terminate()
        server.wait(10)
    print(json.dumps({"ws_tts": [ws, ws_mp3], "cached_post_api_tts": http}, indent=2))


if __name__ == "__main__":
    main()
