"""One abusive account's effect on everyone else's /api/tts/ latency, before and after the work
limits of issue 13 (item 2), side by side in one run.

For each tree (a baseline git revision, exported with `git archive`, then this working tree) it
starts one uvicorn process (DEBUG=0, PostgreSQL database of its own, recreated each run, Redis)
and measures three victims - customers asking, one after another, for short sentences that are
not cached (about 0.4 s of synthesis each) - first alone ("quiet"), then while one abusive
customer keeps ABUSER_PARALLEL long requests (ABUSE_DIGITS digits each) in flight ("abused").
Reported: the victims' median and p95 latency in both phases, and what the abuser got.

    .venv/bin/python bench/tts_fairness.py [--baseline main] [--seconds 15]

Short on purpose (the bench machine is 2 shared cores): about two and a half minutes.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import api_load

DB_NAME = "cs_platform_tts_fairness"
VICTIMS = 3
ABUSER_PARALLEL = 4
ABUSE_DIGITS = 200


def _env() -> dict[str, str]:
    env = api_load.server_env(workers=1)
    env["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    env["REDIS_URL"] = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/5")
    env["MEDIA_ROOT"] = str(ROOT / "var/bench/fairness-media")
    env["TTS_NUM_THREADS"] = "2"
    return env


def _recreate_database() -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        db.execute(f'drop database if exists "{DB_NAME}" with (force)')
        db.execute(f'create database "{DB_NAME}"')


TOKENS_SCRIPT = r"""
import json, sys
import django
django.setup()
from accounts.services import customer_get_or_create, tokens_for_user
users = [customer_get_or_create(openid=f"bench-fair-{i:02d}") for i in range(int(sys.argv[1]))]
print(json.dumps([tokens_for_user(user=user)["access"] for user in users]))
"""


def _tokens(src: Path, env: dict[str, str], count: int) -> list[str]:
    """Customers and access tokens (only accounts.services: the same in every tree)."""
    out = subprocess.run(
        [sys.executable, "-c", TOKENS_SCRIPT, str(count)],
        cwd=src,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _post(port: int, token: str, text: str, timeout: float = 300) -> tuple[int, float]:
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    conn.request(
        "POST",
        "/api/tts/",
        body=json.dumps({"text": text, "format": "mp3"}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    response = conn.getresponse()
    response.read()
    conn.close()
    return response.status, time.perf_counter() - started


def _victims(port: int, tokens: list[str], seconds: float, tag: str) -> list[float]:
    latencies: list[float] = []
    stop = time.monotonic() + seconds

    def loop(index: int, token: str) -> None:
        n = 0
        while time.monotonic() < stop:
            n += 1
            status, took = _post(port, token, f"您好，这是{tag}第{index}号第{n}句。")
            if status == 200:
                latencies.append(took)

    threads = [threading.Thread(target=loop, args=(i, t)) for i, t in enumerate(tokens)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run_tree(label: str, src: Path, seconds: float) -> dict:
    env = _env()
    _recreate_database()
    api_load.prepare_database(src, env)  # migrates (recreated above: old trees see old schema)
    tokens = _tokens(src, env, VICTIMS + 1)
    victims, abuser = tokens[:VICTIMS], tokens[VICTIMS]
    port = api_load._free_port()
    proc = api_load.start_server(src, env, port, 1, ["--loop=asyncio", "--http=h11"])
    try:
        _post(port, victims[0], "预热。")  # loads the model in the web process
        quiet = _victims(port, victims, seconds, "quiet")
        abuse_results: list[tuple[int, float]] = []
        stop = threading.Event()

        def abuse(k: int) -> None:
            n = 0
            while not stop.is_set():
                n += 1
                text = str(10 ** (ABUSE_DIGITS - 1) + k * 1000 + n)  # never cached
                try:
                    status, took = _post(port, abuser, text)
                except OSError:  # the server is stopped under it at the end
                    return
                abuse_results.append((status, took))
                if status == 429:
                    time.sleep(0.5)  # a client honouring the refusal a little

        abusers = [
            threading.Thread(target=abuse, args=(k,), daemon=True) for k in range(ABUSER_PARALLEL)
        ]
        for thread in abusers:
            thread.start()
        time.sleep(1.0)  # the long requests are running
        abused = _victims(port, victims, seconds, "abused")
        stop.set()  # requests still in flight are cut off with the server below
    finally:
        # In-flight abusive syntheses would hold a graceful shutdown for minutes.
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)
    statuses: dict[int, int] = {}
    for status, _took in abuse_results:
        statuses[status] = statuses.get(status, 0) + 1
    ok = [took for status, took in abuse_results if status == 200]
    result = {
        "label": label,
        "quiet": _summary(quiet),
        "abused": _summary(abused),
        "abuser_statuses": statuses,
        "abuser_ok_median_s": round(statistics.median(ok), 1) if ok else None,
    }
    print(json.dumps(result), file=sys.stderr, flush=True)  # survives a later failure
    return result


def _summary(latencies: list[float]) -> dict:
    if not latencies:
        return {"n": 0, "p50_s": None, "p95_s": None}
    ordered = sorted(latencies)
    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 2),
        "p95_s": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))], 2),
    }


def markdown(runs: list[dict], seconds: float) -> str:
    lines = [
        f"{VICTIMS} victims asking for short uncached sentences one after another, {seconds:g} s "
        f"per phase; abuser: one customer with {ABUSER_PARALLEL} requests of {ABUSE_DIGITS} "
        "digits in flight; one uvicorn process; latencies in seconds.",
        "",
        "| tree | victims quiet p50 / p95 (n) | victims abused p50 / p95 (n) | slowdown p50 |"
        " abuser answers | abuser 200 median (s) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for run in runs:
        quiet, abused = run["quiet"], run["abused"]
        slowdown = (
            f"{abused['p50_s'] / quiet['p50_s']:.1f}x"
            if quiet["p50_s"] and abused["p50_s"]
            else "–"
        )
        lines.append(
            f"| {run['label']} | {quiet['p50_s']} / {quiet['p95_s']} ({quiet['n']}) |"
            f" {abused['p50_s']} / {abused['p95_s']} ({abused['n']}) | {slowdown} |"
            f" {run['abuser_statuses']} | {run['abuser_ok_median_s']} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--baseline", default="main", help="git revision measured first")
    parser.add_argument("--seconds", type=float, default=15, help="per phase")
    args = parser.parse_args()
    api_load.LOG.parent.mkdir(parents=True, exist_ok=True)
    rev = subprocess.run(
        ["git", "rev-parse", "--short", args.baseline], cwd=ROOT, capture_output=True, text=True
    ).stdout.strip()
    tree = api_load.export_tree(args.baseline)
    try:
        runs = [run_tree(f"before ({rev})", tree, args.seconds)]
    finally:
        subprocess.run(["rm", "-rf", str(tree)], check=False)
    runs.append(run_tree("after (this tree)", ROOT, args.seconds))
    print(markdown(runs, args.seconds))


if __name__ == "__main__":
    main()
