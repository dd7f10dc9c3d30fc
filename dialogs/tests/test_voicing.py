"""Voicing replies with the real engine: cache miss, cache hit, failures, retries, events."""

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from dialogs.models import AudioStatus
from dialogs.services.messages import agent_reply_create, customer_message_create
from dialogs.tasks import VOICE_MAX_RETRIES, message_voice_task
from tts.adapters import reset_engine
from tts.models import AudioClip, SynthesisRecord, SynthesisStatus

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

TEXT = "好的。"


def _reply(conversation, agent, capture, text=TEXT, **kwargs):
    with capture(execute=True):
        message = agent_reply_create(conversation=conversation, agent=agent, text=text, **kwargs)
    message.refresh_from_db()
    return message


def test_a_miss_synthesises_and_a_hit_reuses_the_clip(
    conversation, agent, django_capture_on_commit_callbacks
):
    first = _reply(conversation, agent, django_capture_on_commit_callbacks)
    assert first.audio_status == AudioStatus.READY
    assert first.audio_clip.emotion == "neutral"  # no customer message yet: fallback rule
    assert first.audio_clip.duration_ms > 100
    assert first.audio_clip.file.size == first.audio_clip.size_bytes > 0
    # The first reply may already hit a clip an earlier test rendered; the second must hit.
    second = _reply(conversation, agent, django_capture_on_commit_callbacks)
    assert second.audio_status == AudioStatus.READY
    assert second.audio_clip_id == first.audio_clip_id
    record = SynthesisRecord.objects.filter(clip=first.audio_clip, source="reply").latest("pk")
    assert record.cache_hit is True and record.user == agent


def test_the_policy_tone_reaches_the_clip(
    conversation, customer, agent, django_capture_on_commit_callbacks
):
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    calm = _reply(conversation, agent, django_capture_on_commit_callbacks)
    assert calm.audio_clip.emotion == "calm"
    assert calm.audio_clip.controls["speed"] == pytest.approx(0.9)


def test_the_task_is_idempotent(conversation, agent, django_capture_on_commit_callbacks):
    message = _reply(conversation, agent, django_capture_on_commit_callbacks)
    records = SynthesisRecord.objects.count()
    message_voice_task.delay(message.pk)  # e.g. an acks_late redelivery
    message.refresh_from_db()
    assert message.audio_status == AudioStatus.READY
    assert SynthesisRecord.objects.count() == records  # not even a cache lookup


def test_audio_ready_is_published(conversation, agent, django_capture_on_commit_callbacks):
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"conversation.{conversation.pk}", channel)
    try:
        message = _reply(conversation, agent, django_capture_on_commit_callbacks)
        events = async_to_sync(_receive_until)(layer, channel, "message.audio_ready")
    finally:
        async_to_sync(layer.group_discard)(f"conversation.{conversation.pk}", channel)
    payload = events[-1]["message"]
    assert payload["id"] == message.pk
    assert payload["audio"]["status"] == "ready"
    assert payload["audio"]["url"].startswith("/media/audio/")


async def _receive_until(layer, channel, event_type, limit=10):
    events = []
    for _ in range(limit):
        events.append((await layer.receive(channel))["event"])
        if events[-1]["type"] == event_type:
            return events
    raise AssertionError(f"no {event_type} in {events}")


@pytest.fixture
def broken_engine(settings, tmp_path):
    """The real engine pointed at an empty model folder: it cannot load (as after a bad deploy)."""
    settings.TTS_MODEL_DIR = tmp_path
    reset_engine()
    yield
    reset_engine()  # the next test loads the installed model again


def test_engine_failure_retries_then_marks_failed_and_keeps_the_text(
    conversation, agent, django_capture_on_commit_callbacks, broken_engine
):
    message = _reply(conversation, agent, django_capture_on_commit_callbacks, text="稍等一下。")
    assert message.text == "稍等一下。"  # delivered as text
    assert message.audio_status == AudioStatus.FAILED
    assert message.audio_clip is None
    assert "engine unavailable" in message.audio_error
    failed = SynthesisRecord.objects.filter(source="reply", status=SynthesisStatus.FAILED)
    assert failed.count() == 1 + VOICE_MAX_RETRIES  # first try plus bounded retries


def test_a_rejected_text_fails_at_once_without_retries(
    conversation, agent, django_capture_on_commit_callbacks
):
    message = _reply(conversation, agent, django_capture_on_commit_callbacks, text="👍👍")
    assert message.audio_status == AudioStatus.FAILED
    assert message.audio_error.startswith("no_speakable_text")
    assert SynthesisRecord.objects.filter(status=SynthesisStatus.REJECTED).count() == 1
    assert not AudioClip.objects.filter(text="👍👍").exists()
