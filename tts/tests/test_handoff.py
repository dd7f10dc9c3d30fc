"""Speech not cached yet is rendered by a `tts` worker and handed back through Redis
(tts/handoff.py), so web processes never load the engine.

Here Celery is eager, so the task runs inside the request, but every outcome still travels
through the real Redis list the web side waits on. A real worker process does the same in
test_handoff_worker.py.
"""

import shutil

import pytest
from celery.signals import task_prerun

from accounts.services import tokens_for_user
from tts import adapters, handoff, services
from tts.engine import audio
from tts.models import AudioClip, SynthesisRecord, SynthesisSource, SynthesisStatus

pytestmark = pytest.mark.django_db

TEXT = "您好，这是一条经由后台渲染的语音。"
THREE_SENTENCES = "您好，欢迎致电客服中心。请问有什么可以帮您？我们会尽快为您处理。"


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    # As in test_ws_tts.py: Channels must not close the test transaction's connection.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def on_worker(settings):
    settings.TTS_RENDER_ON_WORKER = True
    settings.TTS_RENDER_WAIT_SECONDS = 30


@pytest.fixture
def tasks_run():
    """Names of the Celery tasks that ran during the test (eager runs send the signals too)."""
    names: list[str] = []

    def seen(sender=None, task=None, **kwargs):
        names.append(task.name)

    task_prerun.connect(seen, weak=False)
    yield names
    task_prerun.disconnect(seen)


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens_for_user(user=user)['access']}"}


def _leftover_channels() -> list[bytes]:
    return [key for key in handoff._redis().scan_iter(handoff.KEY_PREFIX + "*")]


def test_a_miss_is_rendered_by_the_render_task_and_the_next_request_is_a_hit(
    api_client, agent, engine, on_worker, tasks_run
):
    before = set(_leftover_channels())
    first = api_client.post("/api/tts/", {"text": TEXT}, format="json", **_bearer(agent))
    second = api_client.post("/api/tts/", {"text": TEXT}, format="json", **_bearer(agent))

    assert first.status_code == second.status_code == 200
    assert (first["X-Cache"], second["X-Cache"]) == ("miss", "hit")
    assert tasks_run == ["tts.tasks.speech_render_task"]  # the hit never queued anything
    assert first.content == second.content
    samples, rate = audio.decode(first.content, "mp3")
    assert rate == 24000 and len(samples) > rate  # over a second of speech
    records = list(SynthesisRecord.objects.order_by("created_at"))
    assert [(r.cache_hit, r.status, r.engine) for r in records] == [
        (False, SynthesisStatus.OK, "baker"),
        (True, SynthesisStatus.OK, "baker"),
    ]
    assert AudioClip.objects.count() == 1
    assert not set(_leftover_channels()) - before  # the outcome was taken off its list


def test_a_text_the_engine_cannot_speak_is_refused_by_the_worker_as_a_400(
    api_client, agent, engine, on_worker, tasks_run
):
    # Only emoji: the web side's checks pass, the engine's frontend finds nothing to say.
    response = api_client.post("/api/tts/", {"text": "🙂🙂🙂"}, format="json", **_bearer(agent))

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["text"]
    assert tasks_run == ["tts.tasks.speech_render_task"]
    record = SynthesisRecord.objects.get()
    assert (record.status, record.error) == (SynthesisStatus.REJECTED, "no_speakable_text")
    assert not AudioClip.objects.exists()


def test_an_engine_that_fails_on_the_worker_is_a_503_and_recorded(
    api_client, agent, settings, tmp_path, monkeypatch, engine, on_worker
):
    from tts.installer import voice_dir

    # The model files are readable (the web side only reads its version) but the weights are
    # not a checkpoint: loading fails where the render runs.
    broken = tmp_path / "baker"
    shutil.copytree(voice_dir(settings.TTS_MODEL_DIR), broken)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")
    settings.TTS_MODEL_DIR = tmp_path
    monkeypatch.setattr(adapters, "_engine", None)  # restored afterwards: the suite's engine

    response = api_client.post("/api/tts/", {"text": TEXT}, format="json", **_bearer(agent))

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "tts_unavailable"
    assert response["Retry-After"]
    record = SynthesisRecord.objects.get()
    assert record.status == SynthesisStatus.FAILED and "engine unavailable" in record.error
    assert not AudioClip.objects.exists()


def test_no_worker_answers_within_the_wait_so_503_and_the_job_is_not_started_late(
    api_client, agent, settings, on_worker, tasks_run
):
    from cs_platform.celery import app

    settings.TTS_RENDER_WAIT_SECONDS = 0.5
    eager = app.conf.task_always_eager  # before the setting changes (see test_worker.py)
    settings.CELERY_TASK_ALWAYS_EAGER = False
    app.conf.task_always_eager = False
    try:
        # Published to the real broker; no worker consumes the `tts` queue in this test.
        response = api_client.post("/api/tts/", {"text": TEXT}, format="json", **_bearer(agent))
    finally:
        app.conf.task_always_eager = eager

    assert response.status_code == 503 and response.json()["error"]["code"] == "tts_unavailable"
    assert tasks_run == []
    record = SynthesisRecord.objects.get()
    assert record.status == SynthesisStatus.FAILED
    assert record.error == "no worker rendered the clip in time"


def test_a_worker_that_gets_a_job_after_its_deadline_or_cancelled_does_nothing(
    settings, engine, agent
):
    settings.TTS_RENDER_WAIT_SECONDS = 30
    voice = services.voice_default()
    fields = {"text": TEXT, "voice": voice.pk, "preset": None, "fmt": "mp3", "scope": ""}
    fields["controls"] = services.Controls().as_dict()
    late = {**handoff.job_new(**fields), "deadline": 0}
    cancelled = handoff.job_new(**fields)
    handoff.cancel(cancelled["channel"])

    services.speech_job_render(job=late)
    services.speech_job_stream(job=cancelled)

    for job in (late, cancelled):
        with pytest.raises(handoff.HandoffTimeout):
            handoff.receive(job["channel"], timeout=0.1)
    assert not AudioClip.objects.exists()


# Through the service, in the test's thread: eager, the job would otherwise run in the socket
# consumer's worker thread, on a pooled connection that thread never gives back (the socket
# path itself is driven by a real worker in dialogs/tests/test_worker_tts_handoff.py).
def test_a_stream_is_relayed_chunk_by_chunk_and_equals_the_whole_synthesis(
    engine, agent, on_worker, tasks_run
):
    stream = services.speech_stream_open(
        text=THREE_SENTENCES, fmt="pcm", user=agent, render_on_worker=True
    )
    chunks = list(stream.chunks())

    assert tasks_run == ["tts.tasks.speech_stream_task"]
    assert len(chunks) >= 3  # one per sentence, as rendered
    whole = audio.encode(engine.synthesize(THREE_SENTENCES).samples, sample_rate=24000, fmt="pcm")
    assert b"".join(chunks) == whole
    assert stream.chunk_count == len(chunks) and stream.engine == "baker"
    assert (stream.sample_rate, stream.duration_ms) == (24000, len(whole) * 1000 // 48000)
    assert stream.first_chunk_ms is not None
    record = services.speech_stream_record(stream=stream, status=SynthesisStatus.OK)
    assert (record.source, record.engine, record.latency_ms) == (
        SynthesisSource.STREAM,
        "baker",
        stream.first_chunk_ms,
    )


def test_a_relayed_stream_the_listener_leaves_is_cancelled_for_the_worker(engine, agent, on_worker):
    before = set(_leftover_channels())
    stream = services.speech_stream_open(
        text=THREE_SENTENCES, fmt="pcm", user=agent, render_on_worker=True
    )
    chunks = stream.chunks()
    assert next(chunks)  # the first chunk arrived (eager: the rest are waiting in Redis)
    chunks.close()  # the socket closed

    leftovers = set(_leftover_channels()) - before
    cancel_flags = [key for key in leftovers if key.endswith(b":cancel")]
    assert len(cancel_flags) == 1
    channel = cancel_flags[0].decode().removeprefix(handoff.KEY_PREFIX).removesuffix(":cancel")
    assert handoff.cancelled(channel)
    assert handoff.KEY_PREFIX.encode() + channel.encode() not in leftovers  # chunks dropped


def test_a_relayed_stream_with_a_text_the_engine_refuses_raises_the_refusal(
    engine, agent, on_worker, tasks_run
):
    stream = services.speech_stream_open(text="🙂🙂🙂", fmt="pcm", render_on_worker=True)

    with pytest.raises(services.SpeechTextRejected) as refused:
        list(stream.chunks())

    assert refused.value.code == "no_speakable_text" and refused.value.message
    assert tasks_run == ["tts.tasks.speech_stream_task"] and stream.chunk_count == 0


def test_the_admin_listens_to_the_local_voice_through_the_worker(
    client, engine, on_worker, tasks_run
):
    from accounts.tests.factories import SupervisorFactory

    voice = services.voice_default()
    client.force_login(SupervisorFactory(is_superuser=True, is_staff=True))

    listened = client.get(f"/admin/tts/voice/{voice.pk}/test/", follow=True).content.decode()
    played = client.get(f"/admin/tts/voice/{voice.pk}/test/?play=1")

    assert "试听成功" in listened
    assert tasks_run == ["tts.tasks.speech_stream_task"] * 2
    assert played["Content-Type"] == "audio/wav"
    samples, rate = audio.decode(played.content, "wav")
    assert rate == 24000 and len(samples) > rate  # over a second of the sample sentence
