"""Voicing through a real Celery worker process on the real Redis broker (not eager).

The worker is a separate process, so it only sees committed rows: the test is transactional
and points the worker at pytest-django's test database.
"""

import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
from django.db import connection
from django.utils import timezone

from dialogs.models import AudioStatus, Message
from dialogs.services.messages import agent_reply_create
from tts.installer import voice_dir
from tts.models import AudioClip, SynthesisRecord

pytestmark = [
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]

REPO = Path(__file__).resolve().parents[2]
READY_TIMEOUT_SECONDS = 90  # worker start + model load + one synthesis on a 2-core CPU
STOP_TIMEOUT_SECONDS = 15


def test_database_url() -> str:
    db = connection.settings_dict
    auth = quote(db["USER"] or "", safe="")
    if db["PASSWORD"]:
        auth += ":" + quote(db["PASSWORD"], safe="")
    host = db["HOST"] or "127.0.0.1"
    port = db["PORT"] or 5432
    return f"postgres://{auth}@{host}:{port}/{db['NAME']}"


test_database_url.__test__ = False  # a helper, not a test


@pytest.fixture
def worker_queues() -> str:
    return "tts,default"


@pytest.fixture
def celery_worker_process(settings, worker_queues):
    """`celery worker -Q <worker_queues>` on the test database; the test process stops being
    eager. Override `worker_queues` to run another queue (the `asr` test does)."""
    from cs_platform.celery import app

    if not (voice_dir(settings.TTS_MODEL_DIR) / "config.json").exists():
        pytest.skip("TTS model not installed: run `python manage.py tts_install_model`")

    # Read before the setting changes: Celery reads Django's settings lazily, so reading it
    # after would "restore" False and leave every later test in the run publishing to the
    # broker instead of running its tasks.
    was_eager = app.conf.task_always_eager
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cs_platform.settings_test",
        "DATABASE_URL": test_database_url(),
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
    }
    log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log", delete=False)
    command = [sys.executable, "-m", "celery", "-A", "cs_platform", "worker"]
    command += ["-Q", worker_queues, "--concurrency", "1", "--pool", "prefork", "-l", "info"]
    # Possibly one node among several test runs: a unique name and no cluster chatter.
    command += ["-n", f"test-{uuid.uuid4().hex[:8]}@%h"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        yield process, Path(log.name)
    finally:
        app.conf.task_always_eager = was_eager
        process.terminate()  # warm shutdown: the child finishes its task (acks_late)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)


def _wait_for_audio(message: Message, process, log: Path) -> Message:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        message.refresh_from_db()
        if message.audio_status in (AudioStatus.READY, AudioStatus.FAILED):
            return message
        if process.poll() is not None:
            pytest.fail(f"the worker exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        time.sleep(0.5)
    pytest.fail(f"no audio after {READY_TIMEOUT_SECONDS}s; worker log:\n{log.read_text()[-4000:]}")


def test_a_real_worker_voices_an_agent_reply(celery_worker_process, conversation, agent):
    process, log = celery_worker_process
    started = timezone.now()
    # A fresh text, so the worker must synthesise (a cache hit would prove less).
    text = f"您的工单号是{uuid.uuid4().int % 10**6:06d}，我们正在处理。"

    message = agent_reply_create(conversation=conversation, agent=agent, text=text)

    # Autocommit: the task was published at once, and nothing ran in this process.
    message.refresh_from_db()
    assert message.audio_status == AudioStatus.PENDING
    message = _wait_for_audio(message, process, log)
    assert message.audio_status == AudioStatus.READY, message.audio_error
    assert message.audio_clip.duration_ms > 500
    assert message.audio_clip.file.size == message.audio_clip.size_bytes > 0
    new_clips = AudioClip.objects.filter(created_at__gte=started, messages=message)
    assert new_clips.count() == 1
    record = SynthesisRecord.objects.get(clip=message.audio_clip, source="reply")
    assert record.cache_hit is False
    assert "message_voice_task" in log.read_text()  # it was the worker, not this process


# --- issue 13, item 12: redelivery after a killed worker, in the suite (was bench/faults only) ---
# The pool process doing the synthesis is SIGKILLed (an OOM kill): acks_late +
# reject_on_worker_lost put the task back, it is delivered again, and the reply ends `ready` with
# exactly one clip for its text.

SENTENCE = "您好，关于您反映的订单问题，我们已经联系了仓库和快递公司，正在核实物流信息。"


def _pool_children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in out.split()]


def test_a_task_whose_worker_process_is_killed_is_delivered_again(
    celery_worker_process, conversation, agent
):
    process, log = celery_worker_process
    # Warm the pool up (model loaded) so the kill below lands in the synthesis itself.
    warm = agent_reply_create(conversation=conversation, agent=agent, text="您好。")
    assert _wait_for_audio(warm, process, log).audio_status == AudioStatus.READY
    received = log.read_text().count("message_voice_task[")

    text = f"工单{uuid.uuid4().int % 10**6:06d}。" + SENTENCE * 4  # seconds of synthesis
    message = agent_reply_create(conversation=conversation, agent=agent, text=text)
    deadline = time.monotonic() + 30
    while log.read_text().count("message_voice_task[") <= received:
        assert time.monotonic() < deadline, "the worker never received the task"
        time.sleep(0.2)
    time.sleep(1.0)  # into the synthesis
    message.refresh_from_db()
    assert message.audio_status == AudioStatus.PENDING  # killed before it finished
    children = _pool_children(process.pid)
    assert children, "no pool process to kill"
    for pid in children:
        os.kill(pid, signal.SIGKILL)

    message = _wait_for_audio(message, process, log)

    assert message.audio_status == AudioStatus.READY, message.audio_error
    assert AudioClip.objects.filter(text=message.audio_clip.text).count() == 1
    assert "WorkerLostError" in log.read_text()  # the loss was seen, and survived
