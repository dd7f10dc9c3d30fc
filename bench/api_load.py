"""API load benchmark against a production-like local stack, in one command.

Starts uvicorn (`cs_platform.asgi:application`, DEBUG=0, N workers) on PostgreSQL (its own
database, created and migrated here) and Redis (its own DB number; nothing is flushed), plus one
Celery worker (`-Q tts,default --concurrency 1`, the model loaded), then drives closed-loop load
from this process over loopback with a small keep-alive HTTP/1.1 client (cheaper per request
than httpx, so the 2-core machine spends its time in the server, not in the load generator):

  (a) POST /api/conversations/{id}/messages/  customers posting (own customer + conversation per
      virtual client, a unique client_id per request; one post in four triggers the bot reply,
      which is voiced by the worker, off the request path)
  (b) POST /api/tts/                           the same text every time: served from the clip cache
  (c) GET  /api/conversations/{id}/messages/   the first page (50 messages with signed audio URLs)
  (0) GET  /api/me/                            the floor (JWT + one query), measured first; the
      other cells are read as ratios to it at the same concurrency (same run, same machine)

at 1, 16 and 64 concurrent clients: requests/second, p50/p95/p99 latency, responses by status.
Then the engine figures: RTF, first-chunk latency and precompute clips/second (bench/tts_bench.py
in a subprocess) and the resident memory of the Celery worker child with the model loaded.

Rate limits are lifted for the servers it starts through their settings (TTS_RATE_LIMIT,
CHAT_RATE_LIMIT env); no code path exists for the bench.

    .venv/bin/python bench/api_load.py [--workers 2] [--clients 1,16,64] [--seconds 6]
        [--baseline GIT_REV]   # also run the same load against an older tree, side by side

Results: the markdown table on stdout, and `var/bench/api_load.json`
(`{"cells": {"<name>@<clients>": {rps, p50_ms, p95_ms, p99_ms, errors,
server_cpu_ms_per_request}}, "ratios_to_floor": ..., "baseline": {...}}`).

`--baseline` exports that revision with `git archive` into a temporary folder (the working
tree and the repository are not touched) and benchmarks it first, with the same database,
model and settings; the table then shows both columns.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DB_NAME = os.environ.get("BENCH_DB_NAME", "cs_platform_apiload")
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
# A Redis DB number of its own: the broker queue, rate-limit counters and channel groups of
# this bench never meet anyone else's keys. Never flushed.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
# Server and worker output (the servers' own logging configuration applies).
LOG = ROOT / "var/bench/api_load.log"
JSON_OUT = ROOT / "var/bench/api_load.json"
PROFILE_DIR = ROOT / "var/bench/profiles"
# floor_me first: every other cell is read as a ratio to it (same run, same concurrency).
CELLS = ("floor_me", "post_message", "get_messages", "tts_cached")
TTS_TEXT = "您好，很高兴为您服务，请问有什么可以帮您？"
# Three inquiries (intent only) and one greeting that makes the bot answer with a voiced phrase.
POST_TEXTS = [
    "请问我的订单什么时候发货？",
    "请问运费怎么算？",
    "请问能不能开发票？",
    "你好，在吗？",
]


def server_env(*, workers: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        # A real, long key: DEBUG=0 refuses development keys.
        "SECRET_KEY": "bench-5f1c0d8e2b7a4c6f9e3d1a0b8c7e6f5d4c3b2a1908f7e6d5c4b3a29180f7e6d5",
        "DEBUG": "0",
        "SECURE_SSL_REDIRECT": "0",
        "ALLOWED_HOSTS": "127.0.0.1",
        "LOG_LEVEL": "WARNING",
        "JWT_ACCESS_MINUTES": "120",
        # This stack only: the point is throughput, not the limits (tests cover the limits).
        "TTS_RATE_LIMIT": "100000000/m",
        "CHAT_RATE_LIMIT": "100000000/m",
        "TTS_MODEL_DIR": str(ROOT / "var/models"),
        "MEDIA_ROOT": str(ROOT / "var/bench/media"),
        "TTS_DEVICE": "cpu",
        "WEB_CONCURRENCY": str(workers),
    }


# --- the stack --------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def use_database(name: str) -> None:
    """Point the bench (its servers, workers and its own reads) at another database: with
    --abba each tree keeps its own, so the baseline never runs on the newer tree's schema."""
    global DB_NAME, DATABASE_URL
    DB_NAME = name
    DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"


def prepare_database(src: Path, env: dict[str, str]) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        if not db.execute("select 1 from pg_database where datname=%s", [DB_NAME]).fetchone():
            db.execute(f'create database "{DB_NAME}"')
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=src,
        env=env,
        check=True,
    )


SETUP_SCRIPT = r"""
import json, sys
import django
django.setup()
from accounts.services import customer_get_or_create, tokens_for_user
from dialogs.services.conversations import conversation_create
clients = []
for i in range(int(sys.argv[1])):
    user = customer_get_or_create(openid=f"bench-load-{i:03d}")
    # A new conversation per stack run: the previous run's posts handed the old one to the
    # human queue, where a greeting gets no bot reply (the voicing check needs one).
    conversation = conversation_create(customer=user)
    clients.append({"token": tokens_for_user(user=user)["access"], "conversation": conversation.pk})
print(json.dumps(clients))
"""


def prepare_clients(src: Path, env: dict[str, str], count: int) -> list[dict]:
    """One customer, one open conversation and one access token per virtual client."""
    out = subprocess.run(
        [sys.executable, "-c", SETUP_SCRIPT, str(count)],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _wait_port(port: int, proc: subprocess.Popen, seconds: float = 90) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("server did not start")


def start_server(
    src: Path, env: dict[str, str], port: int, workers: int, extra: list[str]
) -> subprocess.Popen:
    # The production command (see README "Deployment"), on loopback.
    proc = subprocess.Popen(
        [
            str(VENV_BIN / "uvicorn"),
            "cs_platform.asgi:application",
            "--host=127.0.0.1",
            f"--port={port}",
            f"--workers={workers}",
            "--log-level=warning",
            "--no-access-log",
            *extra,
        ],
        cwd=src,
        env=env,
        start_new_session=True,
        stdout=LOG.open("ab"),
        stderr=subprocess.STDOUT,
    )
    _wait_port(port, proc)
    return proc


def start_worker(src: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [
            str(VENV_BIN / "celery"),
            "-A",
            "cs_platform",
            "worker",
            "-Q",
            "tts,default",
            "--concurrency",
            "1",
            "--loglevel",
            "WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        cwd=src,
        env={**env, "TTS_NUM_THREADS": "1"},
        start_new_session=True,
        stdout=LOG.open("ab"),
        stderr=subprocess.STDOUT,
    )


def wait_worker_ready(src: Path, env: dict[str, str], seconds: float = 180) -> float:
    """Until the worker answers a ping: its pool is up, so each child has loaded the model
    (`worker_process_init`). Without this the first voiced reply timed the worker's start
    (seconds of imports and model loading), not the reply. Returns the seconds waited."""
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        ping = subprocess.run(
            [str(VENV_BIN / "celery"), "-A", "cs_platform", "inspect", "ping", "--timeout", "1"],
            cwd=src,
            env=env,
            capture_output=True,
        )
        if ping.returncode == 0:
            return round(time.perf_counter() - began, 1)
        time.sleep(0.5)
    raise RuntimeError("the worker did not answer a ping")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)  # its own session: the process and its children only
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(5)


def child_pids(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                status = (entry / "status").read_text()
            except OSError:
                continue
            if re.search(rf"^PPid:\s+{pid}$", status, re.M):
                children.append(int(entry.name))
    return children


def cpu_seconds(pids: list[int]) -> float:
    """utime + stime of these processes: CPU work, unlike wall time, barely moves when others
    load the machine, so it compares runs taken at different moments."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return total / os.sysconf("SC_CLK_TCK")


def vmrss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"^VmRSS:\s+(\d+) kB", status, re.M).group(1)) / 1024


def audit_rows() -> int:
    import psycopg

    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://")) as db:
        return db.execute(
            "select count(*) from tts_synthesisrecord where source = 'api'"
        ).fetchone()[0]


def stale_shared_clips() -> int:
    """Make the shared (platform) clips miss, so the first voiced bot reply is synthesised:
    a second run on the same database would otherwise find the greeting's clip from the first.
    Customers' own clips (`scope`, the cached /api/tts/ cell) are kept. Rows are re-keyed, not
    deleted: messages point at them."""
    import psycopg

    with psycopg.connect(DATABASE_URL.replace("postgres://", "postgresql://")) as db:
        return db.execute(
            "update tts_audioclip set cache_key = md5(random()::text) || md5(cache_key)"
            " where scope = ''"
        ).rowcount


def queue_length(queue: str = "tts") -> int:
    import redis

    return redis.Redis.from_url(REDIS_URL).llen(queue)


def wait_queue_empty(timeout: float = 120) -> float:
    """Seconds until the worker drained the voicing queue (bounded), so the next scenario does
    not compete with a backlog."""
    started = time.perf_counter()
    while queue_length() and time.perf_counter() - started < timeout:
        time.sleep(0.2)
    return round(time.perf_counter() - started, 1)


# --- a minimal keep-alive HTTP/1.1 client -----------------------------------------------------


class Connection:
    def __init__(self, port: int):
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                headers[name.strip().lower()] = value.strip()
        if "content-length" in headers:
            body = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding") == "chunked":
            body = b""
            while True:
                size = int((await self.reader.readline()).strip(), 16)
                body += await self.reader.readexactly(size + 2)
                if size == 0:
                    break
        else:
            body = b""
        if headers.get("connection", "").lower() == "close":
            await self.close()
        return status, body

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None


def http_request(method: str, path: str, token: str, body: dict | None = None) -> bytes:
    data = json.dumps(body, ensure_ascii=False).encode() if body is not None else b""
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Accept: */*\r\nContent-Length: {len(data)}\r\n"
    )
    if body is not None:
        head += "Content-Type: application/json\r\n"
    return (head + "\r\n").encode() + data


@dataclass
class Cell:
    latencies: list[float] = field(default_factory=list)
    statuses: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    answered_2xx: int = 0  # warm-up included: what the server must have audited

    def summary(self) -> dict:
        lat = sorted(self.latencies)
        n = len(lat)

        def pct(p: float) -> float:
            return round(lat[min(n - 1, int(n * p))] * 1000, 1) if n else float("nan")

        errors = sum(v for k, v in self.statuses.items() if not k.startswith("2"))
        return {
            "requests": n,
            "rps": round(n / self.seconds, 1) if self.seconds else 0.0,
            "p50_ms": pct(0.50),
            "p95_ms": pct(0.95),
            "p99_ms": pct(0.99),
            "errors": errors,
            "statuses": dict(sorted(self.statuses.items())),
            "answered_2xx_with_warmup": self.answered_2xx,
        }


def scenario_request(name: str, client: dict, index: int, run_id: str) -> bytes:
    path = f"/api/conversations/{client['conversation']}/messages/"
    if name == "post_message":
        # Each client cycles through the texts by its own count (index = count * 1000 + client),
        # so every concurrency posts the same mix. The text was `index % 4`, which fixed one
        # text per client: at 1 client only inquiries, at 16 four clients posting nothing but
        # greetings, each answered by a voiced bot reply - the two columns measured different
        # work (profiled: Celery publishes were 8 % of the CPU at 16 clients, 0 % at 1).
        text = POST_TEXTS[(index // 1000) % len(POST_TEXTS)]
        body = {"text": text, "client_id": f"{run_id}-{index}"}
        return http_request("POST", path, client["token"], body)
    if name == "tts_cached":
        return http_request("POST", "/api/tts/", client["token"], {"text": TTS_TEXT})
    if name == "get_messages":
        return http_request("GET", path, client["token"])
    if name == "floor_me":
        # The floor: JWT authentication plus one query, the least an API request costs here.
        return http_request("GET", "/api/me/", client["token"])
    raise ValueError(name)


async def drive(
    port: int,
    name: str,
    clients: list[dict],
    *,
    seconds: float,
    max_requests: int,
    run_id: str,
    after_warmup=None,
) -> dict:
    """Closed loop: each virtual client sends its next request when the previous one answered.
    Stops at `seconds` or `max_requests`, whichever comes first. `after_warmup()` is called
    between the warm-up and the measured loop (the server's CPU is read there)."""
    cell = Cell()
    connections = [Connection(port) for _ in clients]
    budget = {"left": max_requests}

    async def one(i: int, client: dict, counter: list[int], record: bool) -> None:
        counter[0] += 1
        raw = scenario_request(name, client, counter[0] * 1000 + i, f"{run_id}-{i}")
        started = time.perf_counter()
        try:
            status, _ = await asyncio.wait_for(connections[i].request(raw), timeout=30)
            label = str(status)
        except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError) as exc:
            await connections[i].close()
            label = f"exc:{type(exc).__name__}"
        cell.answered_2xx += label.startswith("2")
        if record:
            cell.latencies.append(time.perf_counter() - started)
            cell.statuses[label] = cell.statuses.get(label, 0) + 1

    counters = [[0] for _ in clients]
    # Warm-up: connections opened, caches filled, 3 requests per client, not recorded.
    for _ in range(3):
        await asyncio.gather(*(one(i, c, counters[i], False) for i, c in enumerate(clients)))

    if after_warmup is not None:
        after_warmup()
    stop_at = time.perf_counter() + seconds

    async def loop(i: int, client: dict) -> None:
        while time.perf_counter() < stop_at and budget["left"] > 0:
            budget["left"] -= 1
            await one(i, client, counters[i], True)

    began = time.perf_counter()
    await asyncio.gather(*(loop(i, c) for i, c in enumerate(clients)))
    cell.seconds = time.perf_counter() - began
    for connection in connections:
        await connection.close()
    return cell.summary()


WARM_UP_TEXT = "我的订单还没到"  # no canned phrase answers it: handed off, acknowledged aloud


async def wait_voiced(
    port: int, client: dict, timeout: float = 180, text: str = "你好，在吗？"
) -> float:
    """Post a greeting (the bot answers with a voiced phrase) and poll until its audio is
    ready: proves the worker voices end to end before measuring. Returns the seconds taken."""
    connection = Connection(port)
    started = time.perf_counter()
    body = {"text": text, "client_id": f"voice-check-{time.time()}"}
    path = f"/api/conversations/{client['conversation']}/messages/"
    started = time.perf_counter()
    status, data = await connection.request(http_request("POST", path, client["token"], body))
    assert status in (200, 201), (status, data[:300])
    reply = json.loads(data)["bot_reply"]
    assert reply is not None, "the greeting did not trigger the bot reply"
    while time.perf_counter() - started < timeout:
        status, data = await connection.request(
            http_request("GET", f"{path}?after={reply['id'] - 1}", client["token"])
        )
        audio = next(m for m in json.loads(data)["results"] if m["id"] == reply["id"])["audio"]
        if audio["status"] == "ready":
            await connection.close()
            return round(time.perf_counter() - started, 2)
        if audio["status"] == "failed":
            raise RuntimeError(f"voicing failed: {audio}")
        await asyncio.sleep(0.02)
    raise RuntimeError("the worker did not voice the bot reply in time")


def tts_misses(port: int, client: dict, *, count: int) -> list[float]:
    """Wall seconds of `count` /api/tts/ requests for texts never spoken before, one at a time."""
    import httpx

    seconds = []
    for n in range(count):
        text = f"您的取件码是{time.time_ns() % 10**6:06d}，请在今天{n + 1}点前取件。"
        started = time.perf_counter()
        response = httpx.post(
            f"http://127.0.0.1:{port}/api/tts/",
            json={"text": text},
            headers={"Authorization": f"Bearer {client['token']}"},
            timeout=90,
        )
        if response.status_code != 200:
            raise RuntimeError(f"uncached /api/tts/ answered {response.status_code}")
        seconds.append(time.perf_counter() - started)
    return seconds


def run_stack(label: str, src: Path, args, clients_all: list[dict], extra: list[str] = ()) -> dict:
    env = server_env(workers=args.workers)
    port = _free_port()
    worker = server = None
    results: dict = {"label": label, "cells": {}}
    try:
        stale_shared_clips()
        worker = start_worker(src, env)
        server = start_server(src, env, port, args.workers, list(extra))
        results["worker_ready_s"] = wait_worker_ready(src, env)
        # A ping is answered before the pool's child has loaded the model; one voiced reply
        # of another phrase (the handoff's acknowledgement, from a client no cell uses) waits
        # that out, so the figures below time a reply, not a worker start.
        results["worker_warm_s"] = asyncio.run(
            wait_voiced(port, clients_all[-1], text=WARM_UP_TEXT)
        )
        # The first voiced bot reply (its phrase not rendered yet: synthesis on the worker,
        # which is up), then the same greeting again (the phrase's clip is cached now, as
        # after precompute).
        results["voicing_first_s"] = asyncio.run(wait_voiced(port, clients_all[0]))
        results["voicing_cached_s"] = asyncio.run(wait_voiced(port, clients_all[-2]))
        children = child_pids(worker.pid)
        results["worker_child_rss_mib"] = round(max(vmrss_mib(p) for p in children), 0)
        results["worker_main_rss_mib"] = round(vmrss_mib(worker.pid), 0)
        # Rounds, each measuring every concurrency with the floor first: a cell's ratio is to
        # the floor measured seconds before it, not a minute earlier (this shared machine's
        # speed drifts by tens of percent over minutes); the figures are medians over rounds.
        rounds: list[dict] = []
        for round_no in range(args.rounds):
            round_cells: dict = {}
            for concurrency in args.clients:
                for name in sorted(args.cells, key=lambda n: n != "floor_me"):
                    server_pids = [server.pid, *child_pids(server.pid)]
                    profiler = None
                    if f"{name}@{concurrency}" in args.profile:
                        profiler = start_profile(label, f"{name}@{concurrency}", server_pids, args)
                    audit_before = audit_rows()
                    # CPU is read after the warm-up: a worker's first requests open connections
                    # (and, before the URL modules loaded at start, imported them: ~1 s of CPU),
                    # which would land on whichever cell runs first and flatter every ratio.
                    cpu_mark: dict[str, float] = {}

                    def mark_cpu(pids=server_pids, mark=cpu_mark) -> None:
                        mark["cpu"] = cpu_seconds(pids)

                    cell = asyncio.run(
                        drive(
                            port,
                            name,
                            clients_all[:concurrency],
                            seconds=args.seconds,
                            max_requests=args.max_requests,
                            run_id=f"{label}-{time.time_ns()}",
                            after_warmup=mark_cpu,
                        )
                    )
                    cell["server_cpu_ms_per_request"] = round(
                        (cpu_seconds(server_pids) - cpu_mark["cpu"])
                        * 1000
                        / max(1, cell["requests"]),
                        2,
                    )
                    if profiler is not None:
                        results.setdefault("profiles", {})[f"{name}@{concurrency}"] = (
                            finish_profile(profiler)
                        )
                    if name == "tts_cached":
                        # Every answered call must have left its audit row, in the request.
                        cell["audit_rows"] = audit_rows() - audit_before
                    if name == "post_message":
                        cell["queue_drain_s"] = wait_queue_empty()
                    round_cells[f"{name}@{concurrency}"] = cell
                    print(
                        f"[{label}] round {round_no + 1} {name} @{concurrency}: {json.dumps(cell)}",
                        file=sys.stderr,
                    )
            rounds.append(round_cells)
        results["rounds"] = rounds
        results["cells"] = median_cells(rounds)
        results["ratios"] = median_ratios(rounds)
        # Then uncached speech: each request a text never spoken (on this tree, rendered by the
        # worker; on trees before the hand-off, in the web process, which then loads torch).
        misses = tts_misses(port, clients_all[-3], count=3 * args.workers)
        results["tts_miss_s"] = round(statistics.median(misses), 3)
        # After cached and uncached /api/tts/: what a web process weighs once it served speech.
        web = child_pids(server.pid) or [server.pid]
        results["uvicorn_worker_rss_mib"] = round(max(vmrss_mib(p) for p in web), 0)
    finally:
        stop(server)
        stop(worker)
    return results


def start_profile(label: str, cell: str, pids: list[int], args) -> list:
    """py-spy on every uvicorn process for the cell's duration (the running server, sampled
    from outside: no profiler code in the server). Raw collapsed stacks, one file per process."""
    slug = re.sub(r"[^a-z0-9]+", "-", f"{label}-{cell}".lower()).strip("-")
    running = []
    for pid in pids:
        out = PROFILE_DIR / f"{slug}-{pid}.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.Popen(
            [
                str(VENV_BIN / "py-spy"),
                "record",
                "--pid",
                str(pid),
                "--rate",
                "250",
                "--duration",
                str(int(args.seconds) + 2),
                "--format",
                "raw",
                "--output",
                str(out),
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        running.append((proc, out))
    return running


def finish_profile(running: list) -> dict:
    """Share of samples per frame (inclusive), our code and the libraries on the request path."""
    for proc, _ in running:
        proc.wait(timeout=60)
    inclusive: dict[str, int] = {}
    total = 0
    for _, out in running:
        if not out.exists():
            continue
        for line in out.read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not count.isdigit():
                continue
            n = int(count)
            frames = stack.split(";")
            # Idle workers wait in the event loop's selector or the thread pool's queue.
            if any(
                f.startswith(("select (", "_worker (concurrent", "wait (threading"))
                for f in frames[-2:]
            ):
                continue
            total += n
            for frame in {
                f.split(" (")[0] + " (" + f.split(" (")[-1].split(":")[0] + ")" for f in frames
            }:
                inclusive[frame] = inclusive.get(frame, 0) + n
    top = sorted(inclusive.items(), key=lambda kv: -kv[1])[:60]
    return {
        "files": [str(out) for _, out in running],
        "busy_samples": total,
        "top_inclusive_pct": {k: round(100 * v / max(1, total), 1) for k, v in top},
    }


def engine_figures(src: Path) -> dict:
    """bench/tts_bench.py (2 threads, best of 2), its markdown rows parsed."""
    out = subprocess.run(
        [sys.executable, "bench/tts_bench.py", "--threads", "2", "--repeats", "2"],
        cwd=src,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    figures = {}
    for key, pattern in {
        "rtf": r"real-time factor \| ([\d.]+)",
        "first_chunk_ms": r"first chunk, 20-char sentence \(ms, median\) \| (\d+)",
        "precompute_batched_clips_s": r"precompute clips/s, batched \(\d+ clips\) \| ([\d.]+)",
        "precompute_serial_clips_s": r"precompute clips/s, one by one \| ([\d.]+)",
    }.items():
        match = re.search(pattern, out)
        figures[key] = float(match.group(1)) if match else None
    return figures


def run_tree(label: str, src: Path, args) -> dict:
    """Migrate this tree's database, make fresh clients, run the stack."""
    env = server_env(workers=args.workers)
    prepare_database(src, env)
    extra: list[str] = []
    if src != ROOT and "httptools" not in (src / "requirements.txt").read_text():
        # A tree whose requirements had no httptools/uvloop: pin uvicorn to what it ran on.
        extra = ["--loop=asyncio", "--http=h11"]
    # Three more than the cells use: a cached phrase's voicing, the worker's warm-up, misses.
    clients = prepare_clients(ROOT, env, max(args.clients) + 3)
    return run_stack(label, src, args, clients, extra)


def merge_runs(label: str, parts: list[dict]) -> dict:
    """One tree's stacks (--abba: two) as one run: rounds pooled, figures re-derived."""
    rounds = [r for part in parts for r in part["rounds"]]
    merged: dict = {"label": label, "rounds": rounds, "parts": parts}
    merged["cells"] = median_cells(rounds)
    merged["ratios"] = median_ratios(rounds)
    for key, value in parts[0].items():
        if key not in merged and isinstance(value, int | float) and not isinstance(value, bool):
            values = [p[key] for p in parts if key in p]
            # Memory: the larger of the two stacks; times: their median.
            pick = max if key.endswith("_mib") else statistics.median
            merged[key] = round(pick(values), 3)
    return merged


def export_tree(rev: str) -> Path:
    target = Path(tempfile.mkdtemp(prefix="api-load-baseline-"))
    archive = subprocess.run(["git", "archive", rev], cwd=ROOT, capture_output=True, check=True)
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    return target


def median_cells(rounds: list[dict]) -> dict:
    """Each cell's figures as the median over the rounds (counts: summed)."""
    summed = ("requests", "errors", "answered_2xx_with_warmup", "audit_rows")
    out: dict = {}
    for key in rounds[0]:
        cells = [r[key] for r in rounds if key in r]
        merged: dict = {}
        for figure, value in cells[0].items():
            values = [c[figure] for c in cells if figure in c]
            if figure in summed:
                merged[figure] = sum(values)
            elif isinstance(value, int | float) and not isinstance(value, bool):
                merged[figure] = round(statistics.median(values), 2)
            else:
                merged[figure] = value
        out[key] = merged
    return out


def median_ratios(rounds: list[dict]) -> dict:
    """Per cell, the median over rounds of its ratio to that round's floor."""
    per_round = [ratios({"cells": cells}) for cells in rounds]
    out: dict = {}
    for key in per_round[0]:
        out[key] = {
            measure: round(statistics.median(r[key][measure] for r in per_round), 2)
            for measure in ("cpu", "p95")
        }
    return out


def ratios(run: dict) -> dict:
    """CPU per request and p95 of each cell divided by the floor's at the same concurrency
    (the medians over rounds when the run had rounds)."""
    if "ratios" in run:
        return run["ratios"]
    out = {}
    for key, cell in run["cells"].items():
        name, concurrency = key.split("@")
        floor = run["cells"].get(f"floor_me@{concurrency}")
        if name == "floor_me" or not floor:
            continue
        out[key] = {
            "cpu": round(cell["server_cpu_ms_per_request"] / floor["server_cpu_ms_per_request"], 2),
            "p95": round(cell["p95_ms"] / floor["p95_ms"], 2),
        }
    return out


def markdown(runs: list[dict], engine: dict | None, args) -> str:
    lines = [
        f"uvicorn --workers {args.workers}, {args.seconds:g} s per cell (at most "
        f"{args.max_requests} requests), closed loop over loopback; latencies in ms; CPU ms/req = user+system CPU of the uvicorn processes per request (steady when the shared machine is busy, unlike wall times).",
        "",
    ]
    header = "| endpoint | clients |"
    rule = "| --- | --- |"
    for run in runs:
        header += f" {run['label']} req/s | p50 | p95 | p99 | CPU ms/req | errors |"
        rule += " --- | --- | --- | --- | --- | --- |"
    lines += [header, rule]
    names = {
        "floor_me": "GET /api/me/ (the floor)",
        "post_message": "POST /api/conversations/{id}/messages/",
        "tts_cached": "POST /api/tts/ (cached)",
        "get_messages": "GET /api/conversations/{id}/messages/",
    }
    for name, title in names.items():
        for concurrency in args.clients:
            row = f"| {title} | {concurrency} |"
            for run in runs:
                c = run["cells"].get(f"{name}@{concurrency}")
                if c is None:
                    row += " – | – | – | – | – | – |"
                    continue
                errors = c["errors"] if not c["errors"] else f"{c['errors']} {c['statuses']}"
                row += (
                    f" {c['rps']} | {c['p50_ms']} | {c['p95_ms']} | {c['p99_ms']} |"
                    f" {c['server_cpu_ms_per_request']} | {errors} |"
                )
            lines.append(row)
    lines.append("")
    lines.append("| engine / worker | " + " | ".join(r["label"] for r in runs) + " |")
    lines.append("| --- |" + " --- |" * len(runs))
    lines.append(
        "| Celery worker child RSS, model loaded (MiB) | "
        + " | ".join(str(r.get("worker_child_rss_mib")) for r in runs)
        + " |"
    )
    lines.append(
        "| uncached /api/tts/ (a text never spoken), wall seconds, median | "
        + " | ".join(str(r.get("tts_miss_s")) for r in runs)
        + " |"
    )
    lines.append(
        "| uvicorn worker RSS after the runs (MiB) | "
        + " | ".join(str(r.get("uvicorn_worker_rss_mib")) for r in runs)
        + " |"
    )
    for concurrency in args.clients:
        cells = [r["cells"].get(f"tts_cached@{concurrency}", {}) for r in runs]
        lines.append(
            f"| cached /api/tts/ at {concurrency}: 200s answered / audit rows written | "
            + " | ".join(
                f"{c.get('answered_2xx_with_warmup')} / {c.get('audit_rows')}" for c in cells
            )
            + " |"
        )
    lines.append(
        "| first voiced bot reply (phrase not rendered, worker up), post to audio ready (s) | "
        + " | ".join(str(r.get("voicing_first_s")) for r in runs)
        + " |"
    )
    lines.append(
        "| voiced bot reply, phrase already rendered: post to audio ready (s) | "
        + " | ".join(str(r.get("voicing_cached_s")) for r in runs)
        + " |"
    )
    lines += [
        "",
        "| ratio to the floor (same run, same clients) | "
        + " | ".join(f"{r['label']} CPU | p95" for r in runs)
        + " |",
        "| --- |" + " --- | --- |" * len(runs),
    ]
    all_ratios = [ratios(r) for r in runs]
    for name in ("post_message", "get_messages", "tts_cached"):
        for concurrency in args.clients:
            key = f"{name}@{concurrency}"
            row = f"| {key} |"
            for rs in all_ratios:
                r = rs.get(key)
                row += f" {r['cpu']} | {r['p95']} |" if r else " – | – |"
            lines.append(row)
    if engine:
        lines += [
            "",
            "| engine (bench/tts_bench.py, 2 threads) | value |",
            "| --- | --- |",
            f"| real-time factor | {engine['rtf']} |",
            f"| first chunk, 20-char sentence (ms, median) | {engine['first_chunk_ms']} |",
            f"| precompute clips/s, batched | {engine['precompute_batched_clips_s']} |",
            f"| precompute clips/s, one by one | {engine['precompute_serial_clips_s']} |",
        ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--clients", default="1,16,64", help="concurrency levels")
    parser.add_argument("--seconds", type=float, default=6, help="per cell")
    parser.add_argument(
        "--rounds", type=int, default=1, help="repeat every cell; figures are medians"
    )
    parser.add_argument("--max-requests", type=int, default=5000, help="per cell")
    parser.add_argument("--baseline", help="git revision to benchmark first, side by side")
    parser.add_argument(
        "--abba",
        action="store_true",
        help="with --baseline: run the trees before, after, after, before (half the rounds "
        "each time, each tree on its own database) so the host's drift cancels out",
    )
    parser.add_argument("--no-engine", action="store_true", help="skip the engine figures")
    parser.add_argument("--json", type=Path, help="also write the raw results here")
    parser.add_argument(
        "--cells", default=",".join(CELLS), help=f"which of {','.join(CELLS)} to run"
    )
    parser.add_argument(
        "--profile",
        default="",
        help="cells to profile with py-spy on the running uvicorn processes, e.g. post_message@1",
    )
    args = parser.parse_args()
    args.clients = [int(c) for c in args.clients.split(",")]
    args.cells = [c for c in args.cells.split(",") if c]
    args.profile = {c for c in args.profile.split(",") if c}

    LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"server and worker logs: {LOG}", file=sys.stderr)
    if args.abba and not args.baseline:
        parser.error("--abba needs --baseline")
    runs = []
    tree = export_tree(args.baseline) if args.baseline else None
    try:
        if tree is None:
            runs.append(run_tree("this tree", ROOT, args))
        elif not args.abba:
            runs.append(run_tree(f"before ({args.baseline})", tree, args))
            runs.append(run_tree("after", ROOT, args))
        else:
            # before, after, after, before: a drift of the host's speed over the run (seen:
            # the floor's CPU per request 25 % apart between the two halves of a run whose
            # trees both served the floor with the same code) falls on both trees alike.
            half = argparse.Namespace(**{**vars(args), "rounds": max(1, args.rounds // 2)})
            base_db, head_db = f"{DB_NAME}_baseline", DB_NAME
            parts = {"before": [], "after": []}
            for which in ("before", "after", "after", "before"):
                src, db = (tree, base_db) if which == "before" else (ROOT, head_db)
                use_database(db)
                parts[which].append(run_tree(which, src, half))
            use_database(head_db)
            runs.append(merge_runs(f"before ({args.baseline})", parts["before"]))
            runs.append(merge_runs("after", parts["after"]))
    finally:
        if tree is not None:
            subprocess.run(["rm", "-rf", str(tree)], check=False)
    engine = None if args.no_engine else engine_figures(ROOT)
    if args.json:
        args.json.write_text(json.dumps({"runs": runs, "engine": engine}, indent=2))
    # The machine-readable result: this tree's cells (and the baseline's, measured in the same
    # run); ratios to `floor_me` at the same concurrency are what the targets are about.
    keys = ("rps", "p50_ms", "p95_ms", "p99_ms", "errors", "server_cpu_ms_per_request")
    summary = {"cells": {k: {f: c[f] for f in keys} for k, c in runs[-1]["cells"].items()}}
    summary["ratios_to_floor"] = ratios(runs[-1])
    summary["voicing_first_s"] = runs[-1].get("voicing_first_s")
    summary["voicing_cached_s"] = runs[-1].get("voicing_cached_s")
    summary["uvicorn_worker_rss_mib"] = runs[-1].get("uvicorn_worker_rss_mib")
    if len(runs) > 1:
        summary["baseline"] = {
            "label": runs[0]["label"],
            "cells": {k: {f: c[f] for f in keys} for k, c in runs[0]["cells"].items()},
            "ratios_to_floor": ratios(runs[0]),
        }
    JSON_OUT.parent.mkdir(parents=True, exist_ok=True)
    JSON_OUT.write_text(json.dumps(summary, indent=2))
    print(f"results: {JSON_OUT}", file=sys.stderr)
    print(markdown(runs, engine, args))


if __name__ == "__main__":
    main()
