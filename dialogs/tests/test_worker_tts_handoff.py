"""A cache miss and a stream rendered by a real `tts` worker process (not eager), while the
test process, in the web process's place, never loads the engine. (Here, beside the worker
fixture: tts tests may not import dialogs.)"""

import uuid

import pytest

from accounts.services import tokens_for_user
from dialogs.tests.test_worker import (  # noqa: F401 (fixtures)
    celery_worker_process,
    worker_queues,
)
from tts import adapters
from tts.engine import audio
from tts.models import SynthesisRecord, SynthesisStatus
from tts.tests.test_ws_tts import _audio, _json, _speak

pytestmark = [
    pytest.mark.worker,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),
]


def test_a_real_worker_renders_misses_and_streams_for_a_process_without_the_engine(
    celery_worker_process,  # noqa: F811
    api_client,
    agent,
    settings,
    monkeypatch,
):
    settings.TTS_RENDER_ON_WORKER = True
    settings.TTS_RENDER_WAIT_SECONDS = 90  # the worker's start and model load come first
    monkeypatch.setattr(adapters, "_engine", None)  # this process has no engine (restored after)
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    text = f"您的工单号是{uuid.uuid4().int % 10**6:06d}，请留意短信通知。"
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {tokens_for_user(user=agent)['access']}"}

    response = api_client.post("/api/tts/", {"text": text}, format="json", **bearer)
    [(_, frames), (_, refused)] = _speak(
        tokens_for_user(user=agent)["access"],
        {"text": "您好。请稍等，马上为您查询。", "format": "pcm"},
        {"text": "🙂🙂🙂", "format": "pcm"},  # only the engine's frontend refuses it
    )

    assert response.status_code == 200, response.content[:300]
    assert response["X-Cache"] == "miss"
    samples, rate = audio.decode(response.content, "mp3")
    assert rate == 24000 and len(samples) > 2 * rate
    start, end = _json(frames)
    assert start["type"] == "start" and end["type"] == "end", end
    assert len(_audio(frames)) == end["chunks"] >= 2 and end["duration_ms"] > 1000
    assert _json(refused)[-1]["code"] == "no_speakable_text" and not _audio(refused)
    records = SynthesisRecord.objects.order_by("created_at")
    assert [(r.source, r.status) for r in records] == [
        ("api", SynthesisStatus.OK),
        ("stream", SynthesisStatus.OK),
        ("stream", SynthesisStatus.REJECTED),
    ]
    assert adapters._engine is None  # everything above was rendered by the worker
