"""Fault drill 5: a burst of 1,000 customer messages from 50 concurrent clients, with retries.

Starts a private stack (PostgreSQL, Redis, uvicorn). 50 customers, each in their own
conversation, send 20 messages each as fast as the server answers, every message with a
`client_id` idempotency key, and retry on purpose:
  - every 4th message is sent again after its answer (a retry after a lost response): 200;
  - every 5th is first sent with a 5 ms client timeout (the request may or may not have been
    stored: the client cannot know), then retried normally;
  - every 7th is sent twice at the same time (a double tap / two connections).
Verifies in the database: exactly 1,000 customer messages, each conversation holds its 20 in
the order they were sent, no client_id twice, and every answer (first, retried, concurrent)
named the one stored row.

    .venv/bin/python bench/faults/burst.py
"""

import asyncio
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import Stack, customer_token, db_close, run, say

CLIENTS = 50
PER_CLIENT = 20


async def burst(stack: Stack, clients: list[tuple[str, int]]) -> dict:
    import httpx

    answers: dict[str, set[int]] = {}  # client_id -> message ids named by 2xx answers
    statuses: Counter = Counter()
    latencies: list[float] = []
    counts = Counter()
    limits = httpx.Limits(max_connections=CLIENTS * 2)

    async with httpx.AsyncClient(base_url=stack.base_url, timeout=60, limits=limits) as c:

        async def post(n: int, token: str, url: str, client_id: str, i: int) -> None:
            for attempt in range(5):
                started = time.monotonic()
                try:
                    response = await c.post(
                        url,
                        json={"text": f"客户{n}的第{i:02d}条消息", "client_id": client_id},
                        headers={"Authorization": f"Bearer {token}"},
                    )
                except httpx.TransportError as exc:
                    # A dropped connection (e.g. a keep-alive closed by the server as it was
                    # reused) is a lost response to the client: it retries, same client_id.
                    counts[f"transport-error retries ({type(exc).__name__})"] += 1
                    if attempt == 4:
                        raise
                    continue
                break
            latencies.append(time.monotonic() - started)
            statuses[response.status_code] += 1
            if response.status_code in (200, 201):
                answers.setdefault(client_id, set()).add(response.json()["message"]["id"])

        async def client(n: int, token: str, conversation: int) -> None:
            url = f"/api/conversations/{conversation}/messages/"
            for i in range(1, PER_CLIENT + 1):
                client_id = f"b{n}-{i:02d}"
                if i % 5 == 0:
                    counts["lost-response retries"] += 1
                    try:
                        await asyncio.wait_for(post(n, token, url, client_id, i), 0.005)
                    except TimeoutError:
                        pass
                    await post(n, token, url, client_id, i)
                elif i % 7 == 0:
                    counts["concurrent duplicates"] += 1
                    await asyncio.gather(*(post(n, token, url, client_id, i) for _ in range(2)))
                else:
                    await post(n, token, url, client_id, i)
                    if i % 4 == 0:
                        counts["retries after an answer"] += 1
                        await post(n, token, url, client_id, i)

        started = time.monotonic()
        await asyncio.gather(*(client(n, t, conv) for n, (t, conv) in enumerate(clients)))
        elapsed = time.monotonic() - started
    return {
        "answers": answers,
        "statuses": statuses,
        "latencies": sorted(latencies),
        "elapsed": elapsed,
        "counts": counts,
    }


def main() -> bool:
    with Stack("burst") as stack:
        stack.django()
        from accounts.models import User
        from dialogs.models import Message, SenderKind
        from dialogs.services.conversations import conversation_create

        clients = []
        for n in range(CLIENTS):
            user_id, token = customer_token(f"faults-burst-{n}")
            conversation = conversation_create(customer=User.objects.get(pk=user_id))
            clients.append((token, conversation.pk))
        db_close()
        stack.start_server()
        say(f"stack up; {CLIENTS} clients x {PER_CLIENT} messages, with deliberate retries")
        result = asyncio.run(burst(stack, clients))

        latencies = result["latencies"]
        say(
            f"{len(latencies)} requests answered in {result['elapsed']:.1f}s "
            f"({len(latencies) / result['elapsed']:.0f} req/s, "
            f"{CLIENTS * PER_CLIENT / result['elapsed']:.0f} messages/s); statuses "
            f"{dict(result['statuses'])}; p50 {statistics.median(latencies) * 1000:.0f} ms, "
            f"p95 {latencies[int(len(latencies) * 0.95)] * 1000:.0f} ms"
        )
        say(f"deliberate retries: {dict(result['counts'])}")

        ok = set(result["statuses"]) <= {200, 201}
        if not ok:
            say("FAIL: answers other than 200/201")
        rows = list(
            Message.objects.filter(sender_kind=SenderKind.CUSTOMER)
            .order_by("pk")
            .values_list("conversation_id", "client_id", "pk")
        )
        total = len(rows)
        ids = [client_id for _conv, client_id, _pk in rows]
        say(
            f"stored customer messages: {total} (expected {CLIENTS * PER_CLIENT}), "
            f"distinct client_ids: {len(set(ids))}"
        )
        ok = ok and total == CLIENTS * PER_CLIENT == len(set(ids))
        out_of_order = 0
        for n, (_token, conversation) in enumerate(clients):
            got = [cid for conv, cid, _pk in rows if conv == conversation]
            if got != [f"b{n}-{i:02d}" for i in range(1, PER_CLIENT + 1)]:
                out_of_order += 1
        say(f"conversations not holding exactly their 20 messages in send order: {out_of_order}")
        ok = ok and out_of_order == 0
        stored = {cid: pk for _conv, cid, pk in rows}
        mismatched = [cid for cid, named in result["answers"].items() if named != {stored.get(cid)}]
        unanswered = set(stored) - set(result["answers"])
        say(
            f"answers naming another row than the stored one: {len(mismatched)}; "
            f"stored messages never acknowledged: {len(unanswered)}"
        )
        return ok and not mismatched and not unanswered


if __name__ == "__main__":
    run(main)
