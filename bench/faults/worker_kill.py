"""Fault drill 3: a Celery worker SIGKILLed in the middle of a synthesis.

Starts a private stack (PostgreSQL, Redis, a Celery worker with CELERY_VISIBILITY_TIMEOUT=10 s;
acks_late and reject_on_worker_lost are the project settings). An agent reply with a long text
(several seconds of synthesis) is queued; once the worker has taken it:
  A. the pool process doing the synthesis is SIGKILLed (an OOM kill): the worker's main
     process sees the loss and puts the task back at once (reject_on_worker_lost);
  B. the whole worker (main process and pool) is SIGKILLed (host lost): nothing can put the
     task back, it stays unacknowledged in Redis; a new worker is started and the task is
     delivered again after the visibility timeout.
Verifies, for each: the message was still `pending` when killed, it ends `ready`, and exactly
one AudioClip exists for its text (the clip cache key is unique).

    .venv/bin/python bench/faults/worker_kill.py
"""

import os
import signal
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from stack import Stack, run, say, wait_for

VISIBILITY_TIMEOUT = 10
SENTENCE = "您好，关于您反映的订单问题，我们已经联系了仓库和快递公司，正在核实物流信息。"


def long_text() -> str:
    # Unique (a cache hit would not synthesise) and long enough to be killed mid-way.
    return f"工单{uuid.uuid4().int % 10**6:06d}。" + SENTENCE * 4


def received_count(stack: Stack, worker) -> int:
    return stack.worker_log(worker).count("dialogs.tasks.message_voice_task[")


def drill(stack: Stack, worker, *, kill_whole_worker: bool) -> tuple[bool, object]:
    from accounts.models import Role
    from accounts.services import customer_get_or_create, staff_user_set_role
    from accounts.tests.factories import AgentFactory
    from dialogs.models import AudioStatus, Message
    from dialogs.services.conversations import conversation_create
    from dialogs.services.messages import agent_reply_create
    from tts.models import AudioClip, SynthesisRecord

    customer = customer_get_or_create(openid=f"faults-kill-{uuid.uuid4().hex[:6]}")
    agent = staff_user_set_role(user=AgentFactory(), role=Role.AGENT)
    conversation = conversation_create(customer=customer)
    seen = received_count(stack, worker)
    message = agent_reply_create(conversation=conversation, agent=agent, text=long_text())
    wait_for(lambda: received_count(stack, worker) > seen, timeout=30, what="the task received")
    time.sleep(2.0)  # well into the synthesis (model load + several seconds of audio)
    message.refresh_from_db()
    clips_before = AudioClip.objects.filter(messages=message).count()
    killed_at = time.monotonic()
    if kill_whole_worker:
        say(f"message {message.pk}: SIGKILL the whole worker (pid {worker.pid} and its pool)")
        stack.kill_worker(worker)
        say("starting a new worker")
        worker = stack.start_worker()
    else:
        children = stack.worker_children(worker)
        say(f"message {message.pk}: SIGKILL the pool process {children} mid-synthesis")
        for pid in children:
            os.kill(pid, signal.SIGKILL)
    ok = message.audio_status == AudioStatus.PENDING and clips_before == 0
    say(f"  at the kill: audio {message.audio_status}, clips {clips_before}")
    wait_for(
        lambda: Message.objects.get(pk=message.pk).audio_status != AudioStatus.PENDING,
        timeout=VISIBILITY_TIMEOUT + 90,
        interval=0.5,
        what="the message voiced after the kill",
    )
    message.refresh_from_db()
    recovery = time.monotonic() - killed_at
    clip_text = message.audio_clip.text if message.audio_clip else None
    clips = AudioClip.objects.filter(text=clip_text).count() if clip_text else 0
    attempts = SynthesisRecord.objects.filter(text_excerpt__startswith=message.text[:8]).count()
    say(
        f"  after: audio {message.audio_status} {recovery:.1f}s after the kill, clips for the "
        f"text: {clips}, synthesis records: {attempts}"
    )
    ok = ok and message.audio_status == AudioStatus.READY and clips == 1
    return ok, worker


def main() -> bool:
    env = {"CELERY_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT)}
    with Stack("kill", env=env) as stack:
        stack.django()
        worker = stack.start_worker()
        say(f"stack up: one worker, visibility timeout {VISIBILITY_TIMEOUT}s")
        ok_a, worker = drill(stack, worker, kill_whole_worker=False)
        say(f"A. pool process killed: {'PASS' if ok_a else 'FAIL'}")
        ok_b, worker = drill(stack, worker, kill_whole_worker=True)
        say(f"B. whole worker killed: {'PASS' if ok_b else 'FAIL'}")
        log = "".join(p.read_text(errors="replace") for p in stack.dir.glob("worker-*.log"))
        lost = [line for line in log.splitlines() if "WorkerLostError(" in line]
        say(f"worker logs: {len(lost)} line(s) reporting WorkerLostError")
        for line in lost[:2]:
            say("  " + line.strip()[:160])
        return ok_a and ok_b


if __name__ == "__main__":
    run(main)
