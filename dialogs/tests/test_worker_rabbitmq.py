"""The broker is configurable: RabbitMQ (the seed design's broker) instead of Redis.

Two real processes configured only through the environment, as in production: a Celery worker
(`-Q tts`) and a `manage.py shell` that creates an agent reply through the service (which
publishes the voicing task after commit), both with CELERY_BROKER_URL=amqp://... Redis stays
the cache and channel layer. RabbitMQ: RABBITMQ_URL, default amqp://guest:guest@127.0.0.1:5672//
(.ci/run installs and starts Debian's rabbitmq-server). Without it the test is skipped saying
how to get it, except in CI (CI=true), where it fails.
"""

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from dialogs.models import AudioStatus, Message
from dialogs.tests.test_worker import READY_TIMEOUT_SECONDS, REPO, STOP_TIMEOUT_SECONDS
from dialogs.tests.test_worker import test_database_url as worker_database_url
from tts.installer import voice_dir

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

RABBITMQ_URL = os.environ.get("RABBITMQ_URL", "amqp://guest:guest@127.0.0.1:5672//")
HOW = "apt-get install rabbitmq-server && rabbitmq-server -detached (or set RABBITMQ_URL)"


def _rabbitmq_reachable() -> bool:
    parts = urlsplit(RABBITMQ_URL)
    try:
        with socket.create_connection((parts.hostname, parts.port or 5672), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture
def rabbitmq():
    if not _rabbitmq_reachable():
        message = f"RabbitMQ is not reachable at {urlsplit(RABBITMQ_URL).netloc}: {HOW}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return RABBITMQ_URL


def _env(broker: str) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "cs_platform.settings_test",
        "DATABASE_URL": worker_database_url(),
        "CELERY_BROKER_URL": broker,
        "CELERY_TASK_ALWAYS_EAGER": "0",
        "PYTHONUNBUFFERED": "1",
    }


def test_a_worker_on_rabbitmq_voices_an_agent_reply(rabbitmq, settings, conversation, agent):
    if not (voice_dir(settings.TTS_MODEL_DIR) / "config.json").exists():
        pytest.fail("TTS model not installed: run `python manage.py tts_install_model`")
    env = _env(rabbitmq)
    # The same startup check every production process runs: the broker answers.
    check = subprocess.run(
        [sys.executable, "manage.py", "startup_check", "broker"],
        cwd=REPO, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert check.returncode == 0, check.stderr
    text = f"您的快递单号是{uuid.uuid4().int % 10**6:06d}。"
    log = tempfile.NamedTemporaryFile(prefix="celery-rabbit-", suffix=".log", delete=False)
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "cs_platform", "worker", "-Q", "tts",
         "--concurrency", "1", "-l", "info", "-n", f"rabbit-{uuid.uuid4().hex[:8]}@%h",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        create = (
            "from accounts.models import User; from dialogs.models import Conversation;"
            "from dialogs.services.messages import agent_reply_create;"
            f"m = agent_reply_create(conversation=Conversation.objects.get(pk={conversation.pk}),"
            f" agent=User.objects.get(pk={agent.pk}), text={text!r}); print(m.pk)"
        )
        created = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", create],
            cwd=REPO, env=env, capture_output=True, text=True, check=False, timeout=60,
        )  # fmt: skip
        assert created.returncode == 0, created.stderr
        message = Message.objects.get(pk=int(created.stdout.strip().splitlines()[-1]))
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while message.audio_status == AudioStatus.PENDING and time.monotonic() < deadline:
            assert worker.poll() is None, Path(log.name).read_text()[-3000:]
            time.sleep(0.5)
            message.refresh_from_db()
        worker_log = Path(log.name).read_text()
        assert message.audio_status == AudioStatus.READY, worker_log[-3000:]
        assert message.audio_clip.duration_ms > 500
        # It came through RabbitMQ: the worker says so, and it ran the task.
        assert "Connected to amqp://" in worker_log and "message_voice_task" in worker_log
    finally:
        worker.terminate()
        try:
            worker.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
        os.unlink(log.name)
