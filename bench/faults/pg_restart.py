"""Fault drill 2: PostgreSQL restarted under traffic.

Starts a private stack (PostgreSQL, Redis, uvicorn, a Celery worker); 5 customers post messages
while a monitor polls /readyz and the agent console (a logged-in session: the console is a plain
Django view, not DRF). PostgreSQL is stopped for a few seconds and started again. A voicing task
is queued while it is down. Verifies:
  - during the outage every request fails fast with 503 (API: the JSON error envelope with
    `service_unavailable`; /readyz: database not ok; console: a 503 page), none with 500, none
    slower than the connect timeout;
  - after PostgreSQL is back every endpoint answers 2xx again without restarting anything;
  - the Celery task that hit the outage retried and the message ended `ready`.

    .venv/bin/python bench/faults/pg_restart.py
"""

import asyncio
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import Stack, customer_token, db_close, run, say, staff_session, wait_for

CLIENTS = 5
BEFORE_SECONDS, OUTAGE_SECONDS = 3.0, 6.0
RECOVERY_LIMIT_SECONDS = 30


async def probe(c, method: str, url: str, **kwargs) -> tuple[object, str, float]:
    import httpx

    started = time.monotonic()
    try:
        response = await c.request(method, url, **kwargs)
    except httpx.HTTPError as exc:
        return type(exc).__name__, "", time.monotonic() - started
    code = ""
    if response.headers.get("content-type", "").startswith("application/json"):
        body = response.json()
        code = body.get("error", {}).get("code", "") if isinstance(body.get("error"), dict) else ""
        code = code or body.get("status", "")
    return response.status_code, code, time.monotonic() - started


async def traffic(stack, tokens, conversations, session, phase, results) -> None:
    import httpx

    async def customer(n: int) -> None:
        headers = {"Authorization": f"Bearer {tokens[n]}"}
        async with httpx.AsyncClient(base_url=stack.base_url, headers=headers, timeout=15) as c:
            i = 0
            while phase["name"] != "done":
                i += 1
                url = f"/api/conversations/{conversations[n]}/messages/"
                body = {"text": f"第{i}条", "client_id": f"p{n}-{i}"}
                label = phase["name"]  # the phase the request was sent in
                status, code, latency = await probe(c, "POST", url, json=body)
                results.append((label, "POST message", status, code, latency, time.time()))
                await asyncio.sleep(0.2)

    async def monitor() -> None:
        cookies = {"sessionid": session}
        async with httpx.AsyncClient(base_url=stack.base_url, cookies=cookies, timeout=15) as c:
            while phase["name"] != "done":
                for name, url, headers in (
                    ("GET /readyz", "/readyz", {}),
                    ("GET /console/", "/console/", {"Accept": "text/html"}),
                ):
                    label = phase["name"]
                    status, code, latency = await probe(c, "GET", url, headers=headers)
                    results.append((label, name, status, code, latency, time.time()))
                await asyncio.sleep(0.2)

    await asyncio.gather(*(customer(n) for n in range(CLIENTS)), monitor())


async def drill(stack, tokens, conversations, session, message_id, results) -> dict:
    from dialogs.tasks import message_voice_task

    phase = {"name": "before"}
    load = asyncio.create_task(traffic(stack, tokens, conversations, session, phase, results))
    await asyncio.sleep(BEFORE_SECONDS)
    say("stopping PostgreSQL (fast shutdown: open connections are cut)")
    phase["name"] = "stopping"  # requests sent now may land either side: not judged
    stop_at = time.time()
    await asyncio.to_thread(stack.pg_stop, "fast")
    phase["name"] = "outage"
    await asyncio.sleep(1)
    say(f"queueing voicing of message {message_id} while the database is down")
    message_voice_task.delay(message_id)
    await asyncio.sleep(OUTAGE_SECONDS - 1)
    say("starting PostgreSQL again")
    phase["name"] = "starting"
    await asyncio.to_thread(stack.pg_start)
    back_at = time.time()
    phase["name"] = "after"
    await asyncio.sleep(8)
    phase["name"] = "done"
    await load
    return {"stop_at": stop_at, "back_at": back_at}


def main() -> bool:
    with Stack("pg") as stack:
        stack.django()
        from dialogs.models import AudioStatus, Message, SenderKind
        from dialogs.services.conversations import conversation_create
        from tts.models import EmotionPreset

        tokens, conversations = [], []
        for n in range(CLIENTS):
            user_id, token = customer_token(f"faults-pg-{n}")
            tokens.append(token)
            from accounts.models import User

            conversations.append(conversation_create(customer=User.objects.get(pk=user_id)).pk)
        session = staff_session("faults-admin")
        # A reply whose voicing task will run into the outage (stored without queueing it).
        message = Message.objects.create(
            conversation_id=conversations[0],
            sender_kind=SenderKind.BOT,
            text=f"您的工单{uuid.uuid4().int % 10**6:06d}已受理。",
            emotion=EmotionPreset.objects.get(name="calm"),
            audio_status=AudioStatus.PENDING,
        )
        db_close()
        server = stack.start_server()
        worker = stack.start_worker()
        pool = stack.env.get("DB_POOL_MAX", "default")
        say(f"DB_POOL_MAX={pool} (psycopg pool per process; 0 = a connection per request)")
        say(f"stack up; {CLIENTS} customers posting, a monitor on /readyz and /console/")

        results: list = []
        marks = asyncio.run(drill(stack, tokens, conversations, session, message.pk, results))

        ok = True
        summary: dict[tuple, Counter] = {}
        for phase, name, status, code, _latency, _t in results:
            summary.setdefault((phase, name), Counter())[f"{status} {code}".strip()] += 1
        for (phase, name), counts in sorted(summary.items()):
            say(f"{phase:>6} {name:<14} {dict(counts)}")
        # Before the stop everything succeeds; a request still in flight when PostgreSQL
        # went down may get its 503.
        before = [r for r in results if r[0] == "before"]
        in_flight = [r for r in before if r[2] == 503 and r[5] >= marks["stop_at"]]
        if any(r[2] not in (200, 201) for r in before if r not in in_flight):
            ok = False
            say("FAIL: errors before the outage")
        say(f"in flight at the stop and answered 503: {len(in_flight)}")
        outage = [r for r in results if r[0] == "outage"]
        slowest = max((r[4] for r in outage), default=0.0)
        say(f"outage: {len(outage)} requests, slowest answer {slowest:.2f}s")
        if any(r[2] != 503 for r in outage):
            ok = False
            say(f"FAIL: non-503 during the outage: {[r[:4] for r in outage if r[2] != 503][:5]}")
        api = [r for r in outage if r[1] == "POST message"]
        if any(r[3] != "service_unavailable" for r in api):
            ok = False
            say("FAIL: API 503 without the service_unavailable envelope")
        if slowest > 4:
            ok = False
            say("FAIL: a request hung during the outage")
        recovered: dict[str, float] = {}
        for name in ("POST message", "GET /readyz", "GET /console/"):
            oks = [r for r in results if r[1] == name and r[5] >= marks["back_at"]]
            firsts = [r[5] for r in oks if r[2] in (200, 201)]
            fails_after = [
                r for r in oks if r[2] not in (200, 201) and firsts and r[5] > min(firsts)
            ]
            if not firsts or fails_after:
                ok = False
                say(f"FAIL: {name} did not recover cleanly ({len(fails_after)} failures after)")
            else:
                recovered[name] = min(firsts) - marks["back_at"]
        say(
            "first success after PostgreSQL was back: "
            + ", ".join(f"{k} +{v:.1f}s" for k, v in recovered.items())
        )
        if server.poll() is not None or worker.poll() is not None:
            ok = False
            say("FAIL: uvicorn or the worker died")

        db_close()
        message.refresh_from_db()
        try:
            wait_for(
                lambda: Message.objects.get(pk=message.pk).audio_status == AudioStatus.READY,
                timeout=60,
                interval=1,
                what="the message voiced after the outage",
            )
        except TimeoutError as exc:
            ok = False
            say(f"FAIL: {exc}")
        log = stack.worker_log(worker)
        retries = log.count("database unavailable")
        say(
            f"voicing task: {retries} retry(ies) on the database outage, message ends "
            f"{Message.objects.get(pk=message.pk).audio_status}"
        )
        if retries < 1:
            ok = False
            say("FAIL: the task never met the outage (no retry logged)")
        return ok


if __name__ == "__main__":
    run(main)
