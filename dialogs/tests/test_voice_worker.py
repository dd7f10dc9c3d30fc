"""Transcription through a real Celery worker on the real Redis broker, `asr` queue only."""

import time

import pytest

from dialogs.models import AudioStatus, Message, MessageKind
from dialogs.services.voice_messages import voice_message_create
from dialogs.tests.test_worker import celery_worker_process  # noqa: F401 (fixture)
from tts.asr.decoding import decode_audio
from tts.asr.encoding import encode_as

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

TIMEOUT_SECONDS = 240  # worker start, TTS + Whisper load and one transcription on 2 shared cores


@pytest.fixture
def worker_queues() -> str:
    return "asr"  # only the asr queue: the routing itself is under test


def test_a_real_worker_on_the_asr_queue_transcribes_a_voice_message(
    celery_worker_process,  # noqa: F811
    conversation,
    customer,
    spoken_request,
    settings,
):
    process, log = celery_worker_process
    samples, rate, _ = spoken_request
    decoded = decode_audio(encode_as(samples, rate, "silk"), declared="silk")

    message = voice_message_create(conversation=conversation, author=customer, decoded=decoded)

    message.refresh_from_db()
    assert message.kind == MessageKind.VOICE
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while message.transcript_status == AudioStatus.PENDING and time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"worker exited:\n{log.read_text()[-4000:]}")
        time.sleep(1)
        message.refresh_from_db()
    assert message.transcript_status == AudioStatus.READY, log.read_text()[-4000:]
    assert "退款" in message.text
    text = log.read_text()
    assert "message_transcribe_task" in text and "succeeded" in text
    assert Message.objects.filter(pk=message.pk, intent__name="refund").exists()
