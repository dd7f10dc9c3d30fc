"""Fault drill 1: Redis restarted (data lost) under chat traffic.

Starts a private stack (PostgreSQL, Redis without persistence, uvicorn, a Celery worker and
`celery beat`), runs 10 customers posting messages continuously (every third one triggers a
voiced bot reply), stops Redis for a few seconds, starts it again empty, keeps the traffic going,
then verifies:
  - every POST was answered 2xx, also while Redis was down (cache/rate limit degrade to memory,
    the broker publish after commit is caught), and none took long;
  - every acknowledged message is stored exactly once;
  - rate limiting is back on Redis after the restart (its counters reappear there);
  - no voicing is lost: tasks that could not be published, and those wiped with Redis, are
    requeued by the recovery sweep; every voiced reply ends `ready`, one clip per text.

    .venv/bin/python bench/faults/redis_restart.py
"""

import asyncio
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import Stack, customer_token, run, say, start_beat, wait_for

CLIENTS = 10
BEFORE_SECONDS, OUTAGE_SECONDS, AFTER_SECONDS = 4.0, 6.0, 6.0
SWEEP_ENV = {
    "VOICE_SWEEP_INTERVAL_SECONDS": "5",
    "VOICE_REQUEUE_AFTER_SECONDS": "8",
}


async def traffic(stack: Stack, tokens: list[str], phase: dict, results: list) -> None:
    import httpx

    async def client(number: int, token: str) -> None:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=15) as c:
            conversation = (await c.post("/api/conversations/")).json()["id"]
            i = 0
            while phase["name"] != "done":
                i += 1
                text = f"你好，在吗？第{i}条" if i % 3 == 0 else f"客户{number}的第{i}条消息"
                client_id = f"r{number}-{i}"
                started = time.monotonic()
                try:
                    response = await c.post(
                        f"/api/conversations/{conversation}/messages/",
                        json={"text": text, "client_id": client_id},
                    )
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                label = "after" if phase["name"] == "done" else phase["name"]
                results.append((label, status, time.monotonic() - started, client_id, conversation))
                await asyncio.sleep(0.05)

    await asyncio.gather(*(client(n, t) for n, t in enumerate(tokens)))


async def drill(stack: Stack, tokens: list[str], results: list) -> None:
    phase = {"name": "before"}
    load = asyncio.create_task(traffic(stack, tokens, phase, results))
    # Steady traffic first (the first requests warm the server up).
    warm_until = time.monotonic() + 30
    while len(results) < 30 and time.monotonic() < warm_until:
        await asyncio.sleep(0.2)
    await asyncio.sleep(BEFORE_SECONDS)
    say("stopping Redis (no persistence: its queue and counters are gone)")
    await asyncio.to_thread(stack.redis_stop)
    phase["name"] = "outage"
    await asyncio.sleep(OUTAGE_SECONDS)
    say("starting Redis again, empty")
    await asyncio.to_thread(stack.redis_start)
    phase["name"] = "after"
    await asyncio.sleep(AFTER_SECONDS)
    phase["name"] = "done"
    await load


def main() -> bool:
    with Stack("redis", env=SWEEP_ENV) as stack:
        stack.django()
        tokens = [customer_token(f"faults-redis-{n}")[1] for n in range(CLIENTS)]
        stack.start_server()
        worker = stack.start_worker()
        start_beat(stack)
        say(f"stack up: uvicorn {stack.base_url}, worker, beat; {CLIENTS} customers posting")

        results: list = []
        asyncio.run(drill(stack, tokens, results))

        ok = True
        by_phase: dict[str, Counter] = {}
        for phase, status, _latency, _cid, _conv in results:
            by_phase.setdefault(phase, Counter())[status] += 1
        for phase in ("before", "outage", "after"):
            latencies = sorted(r[2] for r in results if r[0] == phase) or [float("nan")]
            say(
                f"{phase:>6}: {sum(by_phase.get(phase, {}).values())} POSTs, statuses "
                f"{dict(by_phase.get(phase, {}))}, p50 {latencies[len(latencies) // 2]:.3f}s "
                f"max {latencies[-1]:.3f}s"
            )
        bad = [r for r in results if r[1] not in (200, 201)]
        if bad:
            ok = False
            say(f"FAIL: {len(bad)} POSTs not 2xx, e.g. {bad[:3]}")
        slow = max(r[2] for r in results)
        if slow > 3:
            ok = False
            say(f"FAIL: slowest POST took {slow:.2f}s")

        from dialogs.models import AudioStatus, Message, SenderKind
        from tts.models import AudioClip

        acknowledged = {r[3] for r in results if r[1] in (200, 201)}
        stored = list(
            Message.objects.filter(sender_kind=SenderKind.CUSTOMER).values_list(
                "client_id", flat=True
            )
        )
        say(
            f"stored customer messages: {len(stored)}, acknowledged client_ids: {len(acknowledged)}"
        )
        if len(stored) != len(set(stored)) or set(stored) != acknowledged:
            ok = False
            say("FAIL: stored messages differ from the acknowledged ones")

        import redis

        client = redis.Redis.from_url(stack.env["REDIS_URL"])
        keys = wait_for(lambda: client.keys("*rl:*"), timeout=10, what="rate-limit keys")
        say(f"rate limiting is back on Redis: {len(keys)} counter key(s) there after the restart")

        voiced = Message.objects.filter(sender_kind=SenderKind.BOT)
        pending_at_end = voiced.filter(audio_status=AudioStatus.PENDING).count()
        say(
            f"bot replies: {voiced.count()}, still pending when the traffic stopped: {pending_at_end}"
        )
        try:
            wait_for(
                lambda: not voiced.exclude(audio_status=AudioStatus.READY).exists(),
                timeout=90,
                interval=1,
                what="every voiced reply ready",
            )
        except TimeoutError as exc:
            ok = False
            say(f"FAIL: {exc}: {dict(Counter(voiced.values_list('audio_status', flat=True)))}")
        log = stack.worker_log(worker)
        sweeps = [line for line in log.splitlines() if "recovery sweep: requeued" in line]
        say(f"recovery sweeps that requeued something: {len(sweeps)}")
        for line in sweeps[:3]:
            say("  " + line.split("WARNING/")[-1][:160])
        server_log = stack.log_path("uvicorn").read_text(errors="replace")
        say(
            "publishes that failed during the outage (logged, left for the sweep): "
            f"{server_log.count('left for the sweep')}"
        )
        # One clip per (text, tone): every reply with the same words and emotion shares it.
        clips_per_reply: dict[tuple, set] = {}
        for text, emotion, clip in voiced.values_list("text", "emotion_id", "audio_clip_id"):
            clips_per_reply.setdefault((text, emotion), set()).add(clip)
        clip_ids = set().union(*clips_per_reply.values()) if clips_per_reply else set()
        say(
            f"{len(clips_per_reply)} distinct (text, emotion) replies -> {len(clip_ids)} clip(s) "
            f"({AudioClip.objects.count()} clips in the cache)"
        )
        if any(len(ids) != 1 for ids in clips_per_reply.values()):
            ok = False
            say(f"FAIL: a reply text has several clips: {clips_per_reply}")
        return ok


if __name__ == "__main__":
    run(main)
