"""In-process cost of the #14 hot paths against the floor, without a server or a network.

    DATABASE_URL=postgres://.../db REDIS_URL=redis://.../n .venv/bin/python bench/hot_profile.py setup
    DATABASE_URL=... REDIS_URL=... .venv/bin/python bench/hot_profile.py measure [--n 300]
    DATABASE_URL=... REDIS_URL=... py-spy record -r 500 -f raw -o out.txt -- \
        .venv/bin/python bench/hot_profile.py loop --endpoint post_message --n 400
    .venv/bin/python bench/hot_profile.py summary out.txt

`setup` migrates the database it is given, creates one customer with a conversation of 60
messages (bot replies included) and fills the clip cache for the TTS text (that one call
synthesises, so it loads the engine: done here, never in `measure`). `measure` then drives
each endpoint through the real ASGI application (`cs_platform.asgi.application`: the same
middleware chain and sync/async hand-offs as under uvicorn, DEBUG=0) and prints CPU ms per
request (process time, every thread), the ratio to `GET /api/me/`, and the SQL queries and
Redis commands one request costs (counted on a second pass through Django's sync test client,
which runs the same middleware and view).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
os.environ.setdefault(
    "SECRET_KEY", "hotprofile-5f1c0d8e2b7a4c6f9e3d1a0b8c7e6f5d4c3b2a1908f7e6d5c4b3"
)
os.environ.setdefault("DEBUG", "0")
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1,testserver")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("JWT_ACCESS_MINUTES", "600")
os.environ.setdefault("TTS_RATE_LIMIT", "100000000/m")
os.environ.setdefault("CHAT_RATE_LIMIT", "100000000/m")
os.environ.setdefault("TTS_MODEL_DIR", str(ROOT / "var/models"))
os.environ.setdefault("MEDIA_ROOT", str(ROOT / "var/bench/media"))  # as api_load.py
os.environ.setdefault("TTS_DEVICE", "cpu")
os.environ.setdefault("STARTUP_CHECKS", "")
# `setup` fills the clip cache in this process (there is no worker here); `measure` only
# ever hits the cache, so this changes nothing it measures.
os.environ.setdefault("TTS_RENDER_ON_WORKER", "0")

STATE = ROOT / "var/bench/hot_profile_state.json"
# The same texts and cells as the load bench, so the two measure the same requests.
sys.path.insert(0, str(ROOT / "bench"))
from api_load import CELLS as ENDPOINTS
from api_load import POST_TEXTS, TTS_TEXT


def _request(name: str, state: dict, index: int) -> tuple[str, str, bytes]:
    path = f"/api/conversations/{state['conversation']}/messages/"
    if name == "floor_me":
        return "GET", "/api/me/", b""
    if name == "get_messages":
        return "GET", path, b""
    if name == "tts_cached":
        return "POST", "/api/tts/", json.dumps({"text": TTS_TEXT}).encode()
    body = {"text": POST_TEXTS[index % 4], "client_id": f"hot-{time.time_ns()}-{index}"}
    return "POST", path, json.dumps(body).encode()


def setup() -> None:
    import subprocess

    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, check=True
    )
    import django

    django.setup()
    from django.test import Client

    from accounts.services import customer_get_or_create, tokens_for_user
    from dialogs.services.conversations import conversation_resume_or_create

    user = customer_get_or_create(openid=f"hot-profile-{time.time_ns()}")
    conversation, _ = conversation_resume_or_create(customer=user)
    token = tokens_for_user(user=user)["access"]
    state = {"token": token, "conversation": conversation.pk}
    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    for i in range(48):
        _method, path, body = _request("post_message", state, i)
        assert client.post(path, body, content_type="application/json").status_code == 201
    response = client.post("/api/tts/", {"text": TTS_TEXT}, content_type="application/json")
    assert response.status_code == 200, response.content[:300]
    STATE.parent.mkdir(parents=True, exist_ok=True)
    STATE.write_text(json.dumps(state))
    print(json.dumps(state))


def _asgi_call(app, method: str, path: str, body: bytes, token: str):
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"127.0.0.1"),
            (b"authorization", f"Bearer {token}".encode()),
            (b"accept", b"*/*"),
            (b"content-length", str(len(body)).encode()),
            *([(b"content-type", b"application/json")] if body else []),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    sent = {"body": False}
    out = {}

    async def receive():
        if not sent["body"]:
            sent["body"] = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message):
        if message["type"] == "http.response.start":
            out["status"] = message["status"]

    async def go():
        await app(scope, receive, send)
        return out["status"]

    return go()


def _drive(name: str, n: int, state: dict) -> tuple[float, float, dict]:
    from cs_platform.asgi import application

    statuses: dict[int, int] = {}

    async def run(count: int) -> None:
        for i in range(count):
            method, path, body = _request(name, state, i)
            status = await _asgi_call(application, method, path, body, state["token"])
            statuses[status] = statuses.get(status, 0) + 1

    loop = asyncio.new_event_loop()
    loop.run_until_complete(run(20))  # warm-up
    statuses.clear()
    cpu, wall = time.process_time(), time.perf_counter()
    loop.run_until_complete(run(n))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    loop.close()
    return cpu * 1000 / n, wall * 1000 / n, statuses


def _count(name: str, state: dict) -> tuple[int, int, list[str]]:
    """SQL queries and Redis commands of one request (sync test client, same chain)."""
    import redis.asyncio.connection as aconn
    import redis.connection as sconn
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Bearer {state['token']}")
    commands: list[str] = []
    original, aoriginal = (
        sconn.AbstractConnection.send_command,
        aconn.AbstractConnection.send_command,
    )

    def counted(self, *args, **kwargs):
        commands.append(str(args[0]))
        return original(self, *args, **kwargs)

    async def acounted(self, *args, **kwargs):
        commands.append(str(args[0]))
        return await aoriginal(self, *args, **kwargs)

    sconn.AbstractConnection.send_command = counted
    aconn.AbstractConnection.send_command = acounted
    import redis.asyncio.client as aclient
    import redis.client as sclient

    pipe, apipe = sclient.Pipeline.execute, aclient.Pipeline.execute

    def piped(self, *args, **kwargs):  # one round trip; its commands skip send_command
        commands.append(f"pipeline[{len(self.command_stack)}]")
        return pipe(self, *args, **kwargs)

    async def apiped(self, *args, **kwargs):
        commands.append(f"pipeline[{len(self.command_stack)}]")
        return await apipe(self, *args, **kwargs)

    sclient.Pipeline.execute, aclient.Pipeline.execute = piped, apiped

    try:
        for i in range(3):
            method, path, body = _request(name, state, 1000 + i)
            commands.clear()
            with CaptureQueriesContext(connection) as ctx:
                if method == "GET":
                    status = client.get(path).status_code
                else:
                    status = client.post(path, body, content_type="application/json").status_code
            assert status in (200, 201), (name, status)
    finally:
        sconn.AbstractConnection.send_command = original
        aconn.AbstractConnection.send_command = aoriginal
        sclient.Pipeline.execute, aclient.Pipeline.execute = pipe, apipe
    return (
        len(ctx.captured_queries),
        len(commands),
        [q["sql"][:160] for q in ctx.captured_queries] + commands,
    )


def _first(run: tuple) -> float:
    return run[0]


def measure(n: int, verbose: bool, rounds: int = 3) -> None:
    import django

    django.setup()
    state = json.loads(STATE.read_text())
    rows = {}
    for name in ENDPOINTS:
        queries, redis_commands, detail = _count(name, state)
        # The least of `rounds` runs: other processes on a shared machine only ever add.
        cpu, wall, statuses = min((_drive(name, n, state) for _ in range(rounds)), key=_first)
        sync = min(sync_cpu(name, n, state) for _ in range(rounds))
        rows[name] = {
            "cpu_ms": round(cpu, 2),
            "sync_cpu_ms": round(sync, 2),
            "wall_ms": round(wall, 2),
            "queries": queries,
            "redis": redis_commands,
            "statuses": statuses,
        }
        if verbose:
            print(name, *detail, sep="\n  ", file=sys.stderr)
    floor = rows["floor_me"]["cpu_ms"]
    print(
        "| endpoint | CPU ms/req (ASGI) | ratio to floor | CPU ms/req (sync handler) |"
        " wall ms/req | SQL queries | Redis commands |"
    )
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        print(
            f"| {name} | {row['cpu_ms']} | {row['cpu_ms'] / floor:.2f} | {row['sync_cpu_ms']} |"
            f" {row['wall_ms']} |"
            f" {row['queries']} | {row['redis']} |"
        )
    print(json.dumps(rows), file=sys.stderr)


def _sync_calls(name: str, n: int, state: dict, offset: int = 0) -> None:
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {state['token']}", HTTP_HOST="127.0.0.1")
    for i in range(n):
        method, path, body = _request(name, state, offset + i)
        if method == "GET":
            response = client.get(path)
        else:
            response = client.post(path, body, content_type="application/json")
        assert response.status_code in (200, 201), (name, response.status_code)


def sync_cpu(name: str, n: int, state: dict) -> float:
    """CPU ms per request through the sync handler: the view and middleware without the
    ASGI hand-offs (the difference to `_drive` is what ASGI adds)."""
    _sync_calls(name, 20, state)
    cpu = time.process_time()
    _sync_calls(name, n, state, 100)
    return (time.process_time() - cpu) * 1000 / n


def cprofile(endpoint: str, n: int, top: int) -> None:
    import cProfile
    import pstats

    import django

    django.setup()
    state = json.loads(STATE.read_text())
    _sync_calls(endpoint, 20, state)
    # CPU time, not wall: the DB's and Redis's own work (other processes) is not ours.
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    _sync_calls(endpoint, n, state, 100)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top // 2)


def loop(endpoint: str, n: int) -> None:
    import django

    django.setup()
    state = json.loads(STATE.read_text())
    cpu, wall, statuses = _drive(endpoint, n, state)
    print(endpoint, round(cpu, 2), round(wall, 2), statuses, file=sys.stderr)


IDLE = ("select (", "wait (threading", "get (queue", "_wait_for_tstate_lock", "wait (psycopg")


def summary(path: Path, top: int) -> None:
    """Inclusive and self share of samples per function (idle waits dropped)."""
    inclusive: dict[str, int] = {}
    own: dict[str, int] = {}
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        # Only the measured loop (the event loop in `_drive` and the executor threads), not
        # imports or setup; idle waits (selector, queue, condition) are not CPU.
        if not any(f.startswith(("_drive (", "_worker (concurrent")) for f in frames):
            continue
        if frames[-1].startswith(IDLE):
            continue
        n = int(count)
        total += n
        names = [f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")" for f in frames]
        for name in set(names):
            inclusive[name] = inclusive.get(name, 0) + n
        own[names[-1]] = own.get(names[-1], 0) + n
    print(f"busy samples: {total}")
    print("-- inclusive")
    for name, v in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{100 * v / total:5.1f}%  {name}")
    print("-- self")
    for name, v in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        print(f"{100 * v / total:5.1f}%  {name}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["setup", "measure", "loop", "summary", "cprofile"])
    parser.add_argument("file", nargs="?")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--endpoint", choices=ENDPOINTS, default="post_message")
    parser.add_argument("--top", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3, help="measure: best of this many")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    os.chdir(ROOT)
    if args.command == "setup":
        setup()
    elif args.command == "measure":
        measure(args.n, args.verbose, args.rounds)
    elif args.command == "cprofile":
        cprofile(args.endpoint, args.n, args.top)
    elif args.command == "loop":
        loop(args.endpoint, args.n)
    else:
        summary(Path(args.file), args.top)


if __name__ == "__main__":
    main()
