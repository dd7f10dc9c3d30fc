"""Voices on remote engines through the real service, cache, audit, /readyz, /ws/tts/, admin
and commands, against loopback servers speaking each protocol (tts/tests/remote/fake_engines)."""

import json
import socket

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.core.management import CommandError, call_command

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory, SupervisorFactory
from cs_platform.asgi import application
from tts import engines
from tts.engine import audio
from tts.models import AudioClip, EmotionPreset, RemoteVoiceSettings, SynthesisRecord, Voice
from tts.remote import CircuitBreaker
from tts.services import (
    SpeechSynthesisFailed,
    SpeechTextRejected,
    clip_file_restore,
    speech_clip_get_or_create,
    speech_stream_controls,
    voice_remote_save,
)
from tts.tests.remote.fake_engines import FakeEngine, speech_like, wav_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_breaker(monkeypatch):
    monkeypatch.setattr(engines, "breaker", CircuitBreaker(threshold=3, cooldown=60))


@pytest.fixture
def fake():
    servers = []

    def make(kind, **kw):
        server = FakeEngine(kind, **kw)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


def _voice(server, engine=None, **kw) -> Voice:
    engine = engine or {"relay": "cosyvoice-relay"}.get(server.kind, server.kind)
    return voice_remote_save(
        slug=f"remote-{server.kind}", name="远程", engine=engine, url=server.url, **kw
    )


def test_remote_voice_gets_our_normalised_text_and_is_cached(fake):
    server = fake("openai", api_key="sk-1")
    voice = _voice(server, api_key="sk-1", speaker="nova")

    first = speech_clip_get_or_create(text="订单号1234，¥99/月", voice=voice, fmt="wav")
    second = speech_clip_get_or_create(text="订单号1234，¥99/月", voice=voice, fmt="wav")

    assert (first.cache_hit, second.cache_hit) == (False, True)
    assert len(server.requests) == 1
    assert server.requests[0]["input"] == "订单号幺二三四，九十九元每月"
    assert first.clip.engine == "openai"
    samples, rate = audio.decode(first.clip.file.open("rb").read(), "wav")
    assert rate == 24000 and abs(len(samples) - 24000) < 50  # resampled, loudness-normalised
    records = SynthesisRecord.objects.order_by("created_at")
    assert [r.engine for r in records] == ["openai", "openai"]
    cfg = RemoteVoiceSettings.objects.get(voice=voice)
    assert (cfg.calls, cfg.errors) == (1, 0) and cfg.last_latency_ms is not None


def test_cache_key_follows_the_endpoint_and_the_prompt(fake):
    a, b = fake("openai"), fake("openai")
    voice = _voice(a)
    speech_clip_get_or_create(text="您好", voice=voice, fmt="wav")
    voice = voice_remote_save(slug=voice.engine_voice_id, name="远程", engine="openai", url=b.url)
    result = speech_clip_get_or_create(text="您好", voice=voice, fmt="wav")
    assert not result.cache_hit and len(b.requests) == 1
    assert AudioClip.objects.count() == 2


def test_emotion_preset_becomes_a_cosyvoice_instruction(fake):
    server = fake("cosyvoice")
    prompt = wav_bytes(speech_like(4.0))
    voice = _voice(server, mode="instruct2", prompt_audio=prompt)
    calm = EmotionPreset.objects.get(name="calm")
    result = speech_clip_get_or_create(text="很抱歉", voice=voice, preset=calm, fmt="mp3")
    req = server.requests[0]
    assert req["path"] == "/inference_instruct2"
    assert req["instruct_text"] == "用平和、安抚的语气说"
    assert audio.decode(req["files"]["prompt_wav"], "wav")[1] == 16000
    assert result.clip.engine == "cosyvoice"
    # an edited mapping is a different sound: a different clip
    cfg = voice.remote
    cfg.emotion_map = {"calm": "用非常温柔的语气说"}
    cfg.save()
    voice = Voice.objects.get(pk=voice.pk)
    again = speech_clip_get_or_create(text="很抱歉", voice=voice, preset=calm, fmt="mp3")
    assert not again.cache_hit and server.requests[-1]["instruct_text"] == "用非常温柔的语气说"


def test_speed_the_engine_cannot_do_is_refused_not_dropped(fake):
    server = fake("cosyvoice")
    voice = _voice(server, speaker="中文女")
    controls = speech_stream_controls(preset=None, speed=1.3)
    with pytest.raises(SpeechTextRejected) as exc:
        speech_clip_get_or_create(text="您好", voice=voice, controls=controls)
    assert exc.value.code == "unsupported_control" and "speed" in exc.value.message
    assert not server.requests


def test_slow_engine_times_out_and_baker_speaks_then_remote_again(fake, engine):
    server = fake("indextts2")
    server.behaviour, server.slow_seconds = "slow", 2.0
    voice = _voice(server, speaker="0", timeout_s=0.5)

    fallback = speech_clip_get_or_create(text="您好", voice=voice, fmt="mp3")
    assert fallback.clip.engine == "baker"
    record = SynthesisRecord.objects.get()
    assert record.engine == "baker (fallback: timeout)"

    server.behaviour = "ok"
    recovered = speech_clip_get_or_create(text="您好", voice=voice, fmt="mp3")
    assert recovered.clip.engine == "indextts2" and not recovered.cache_hit


def test_500s_open_the_breaker_readyz_degrades_then_it_recovers(fake, engine, client, monkeypatch):
    server = fake("openai")
    server.behaviour = "error"
    voice = _voice(server)
    for _ in range(3):
        result = speech_clip_get_or_create(text="您好", voice=voice, fmt="mp3")
        assert result.clip.engine == "baker"
    assert [r.engine for r in SynthesisRecord.objects.order_by("created_at")] == [
        "baker (fallback: http_error)",
        "baker (fallback: http_error)",
        "baker (fallback: http_error)",
    ]
    assert server.hits == 3
    speech_clip_get_or_create(text="您好", voice=voice, fmt="mp3")
    assert server.hits == 3  # open: not even asked
    assert SynthesisRecord.objects.order_by("-created_at")[0].engine == (
        "baker (fallback: circuit_open)"
    )

    ready = client.get("/readyz")
    body = ready.json()
    assert ready.status_code == 200 and body["status"] == "degraded"
    assert body["checks"]["remote_engines"]["voices"][voice.engine_voice_id]["breaker"] == "open"

    engines.breaker.cooldown = 0  # time passes: the next call is the half-open probe
    server.behaviour = "ok"
    assert speech_clip_get_or_create(text="您好", voice=voice, fmt="mp3").clip.engine == "openai"
    assert client.get("/readyz").json()["status"] == "ready"


def test_garbage_audio_fails_clearly_and_nothing_is_cached(fake):
    server = fake("relay")
    server.behaviour = "garbage"
    voice = voice_remote_save(
        slug="relay",
        name="中转",
        engine="cosyvoice-relay",
        url=server.url,
        prompt_audio=wav_bytes(speech_like(4.0)),
        fallback_to_baker=False,
    )
    with pytest.raises(SpeechSynthesisFailed) as exc:
        speech_clip_get_or_create(text="您好", voice=voice)
    assert "bad_audio" in exc.value.reason
    assert not AudioClip.objects.exists()
    assert SynthesisRecord.objects.get().status == "failed"
    assert RemoteVoiceSettings.objects.get(voice=voice).errors == 1


def test_cosyvoice_stream_is_relayed_chunk_by_chunk_on_ws_tts(fake, monkeypatch):
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)
    server = fake("cosyvoice", chunk_seconds=0.2)
    voice = _voice(server, speaker="中文女")
    token = tokens_for_user(user=CustomerFactory())["access"]

    async def scenario():
        comm = WebsocketCommunicator(
            application,
            f"/ws/tts/?token={token}",
            headers=[(b"origin", b"http://testserver")],
        )
        assert (await comm.connect(timeout=10))[0]
        await comm.send_to(
            text_data=json.dumps({"text": "您好", "voice": voice.engine_voice_id, "format": "pcm"})
        )
        frames = []
        while True:
            message = await comm.receive_output(30)
            if message.get("bytes") is not None:
                frames.append(message["bytes"])
            elif json.loads(message["text"])["type"] in {"end", "error"}:
                break
        await comm.disconnect()
        return frames

    chunks = async_to_sync(scenario)()
    assert len(chunks) >= 4  # CosyVoice's chunks, not one buffered reply
    assert abs(sum(len(c) for c in chunks) / 2 - 24000) < 50
    assert SynthesisRecord.objects.get().engine == "cosyvoice"


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_voice_add_command_checks_the_engine_before_saving(fake, tmp_path):
    with pytest.raises(CommandError, match="unreachable"):
        call_command(
            "tts_voice_add", "--slug", "gone", "--name", "X", "--engine", "openai",
            "--url", f"http://127.0.0.1:{_closed_port()}", "--timeout", "2",
        )  # fmt: skip
    assert not Voice.objects.filter(engine_voice_id="gone").exists()

    server = fake("openai", api_key="sk-right")
    with pytest.raises(CommandError, match="auth"):
        call_command(
            "tts_voice_add", "--slug", "oa", "--name", "X", "--engine", "openai",
            "--url", server.url, "--api-key", "sk-wrong",
        )  # fmt: skip
    assert not Voice.objects.filter(engine_voice_id="oa").exists()

    cosy = fake("cosyvoice")
    short, corrupt = tmp_path / "short.wav", tmp_path / "corrupt.wav"
    short.write_bytes(wav_bytes(speech_like(1.0)))
    corrupt.write_bytes(b"RIFF" + b"\x00" * 500)
    for path, message in ((short, "at least 3 s"), (corrupt, "cannot be decoded")):
        with pytest.raises(CommandError, match=message):
            call_command(
                "tts_voice_add", "--slug", "clone", "--name", "克隆", "--engine", "cosyvoice",
                "--url", cosy.url, "--mode", "zero_shot", "--prompt-wav", str(path),
                "--prompt-text", "你好",
            )  # fmt: skip

    good = tmp_path / "good.mp3"
    good.write_bytes(audio.encode(speech_like(5.0), sample_rate=24000, fmt="mp3"))
    call_command(
        "tts_voice_add", "--slug", "clone", "--name", "克隆", "--engine", "cosyvoice",
        "--url", cosy.url, "--mode", "zero_shot", "--prompt-wav", str(good),
        "--prompt-text", "你好", "--sample-rate", "24000",
    )  # fmt: skip
    cfg = RemoteVoiceSettings.objects.get(voice__engine_voice_id="clone")
    wav, rate = audio.decode(bytes(cfg.prompt_audio), "wav")
    assert rate == 16000 and abs(len(wav) / rate - 5.0) < 0.1 and len(cfg.prompt_sha256) == 64

    out = tmp_path / "say.wav"
    call_command("tts_say", "订单号1234", "--voice", "clone", "-o", str(out))
    assert audio.decode(out.read_bytes(), "wav")[1] == 24000
    assert cosy.requests[-1]["tts_text"] == "订单号幺二三四"
    assert SynthesisRecord.objects.filter(source="cli").get().engine == "cosyvoice"


def test_admin_hides_the_secret_validates_the_prompt_and_listens(fake, client):
    server = fake("openai", api_key="sk-secret-value")
    voice = _voice(server, api_key="sk-secret-value")
    client.force_login(SupervisorFactory(is_superuser=True, is_staff=True))
    page = client.get(f"/admin/tts/voice/{voice.pk}/change/").content.decode()
    assert "sk-secret-value" not in page and "sk-…ue" in page

    listened = client.get(f"/admin/tts/voice/{voice.pk}/test/", follow=True)
    text = listened.content.decode()
    assert "试听成功" in text and "ms" in text.replace("毫秒", "ms")
    audio_url = f"/admin/tts/voice/{voice.pk}/test/?play=1"
    played = client.get(audio_url)
    assert played["Content-Type"] == "audio/wav" and int(played["X-Latency-Ms"]) >= 0

    server.behaviour = "error"
    failed = client.get(f"/admin/tts/voice/{voice.pk}/test/", follow=True).content.decode()
    assert "试听失败" in failed and "http_error" in failed
    listing = client.get("/admin/tts/voice/").content.decode()
    assert "1 / 3" in listing  # errors / calls per voice
    assert RemoteVoiceSettings.objects.get(voice=voice).api_key == "sk-secret-value"


def test_lost_remote_clip_is_restored_by_its_engine_never_by_the_local_voice(fake):
    server = fake("openai")
    voice = _voice(server, speaker="nova")
    clip = speech_clip_get_or_create(text="您好", voice=voice, fmt="wav").clip
    clip.file.storage.delete(clip.file.name)

    restored = clip_file_restore(clip_id=clip.pk)

    assert len(server.requests) == 2 and server.requests[1]["input"] == "您好"
    assert restored.file.storage.exists(restored.file.name)
    assert restored.file.name == clip.file.name
    # The voice moved to the local engine: the remote clip's name must not get Baker's sound.
    voice_remote_save(slug=voice.engine_voice_id, name="远程", engine="baker")
    clip.file.storage.delete(clip.file.name)
    with pytest.raises(SpeechSynthesisFailed):
        clip_file_restore(clip_id=clip.pk)
    assert not clip.file.storage.exists(clip.file.name)
