"""Remote engine clients against loopback servers that speak each protocol (no Django)."""

import socket
import time

import numpy as np
import pytest

from tts.engine import audio
from tts.remote import (
    CircuitBreaker,
    CircuitOpen,
    PromptError,
    RemoteEngineError,
    RemoteVoice,
    prepare_prompt,
    stream,
    synthesize,
    validate_instruction,
)
from tts.tests.remote.fake_engines import FakeEngine, speech_like, wav_bytes


@pytest.fixture
def fake(request):
    engines = []

    def make(kind, **kw):
        engine = FakeEngine(kind, **kw)
        engines.append(engine)
        return engine

    yield make
    for engine in engines:
        engine.close()


def _prompt() -> bytes:
    return prepare_prompt(wav_bytes(speech_like(4.0, 44100), 44100))[0]


def test_indextts2_json_fields_and_base64_audio(fake):
    server = fake("indextts2")
    voice = RemoteVoice("indextts2", server.url, speaker="1")
    out = synthesize(voice, "您好", speed=0.95, pitch=2.0, emotion="happy")
    assert out.sample_rate == 24000 and abs(len(out.samples) - 24000) < 10
    (req,) = server.requests
    assert req == {
        "text": "您好",
        "speaker_id": 1,
        "speed": 0.95,
        "emotion": "happy",
        "pitch": 2.0,
        "output_type": "base64",
    }


@pytest.mark.parametrize("mode", ["sft", "zero_shot", "instruct2"])
def test_cosyvoice_form_fields_and_streamed_pcm(fake, mode):
    server = fake("cosyvoice")
    prompt = _prompt() if mode != "sft" else b""
    voice = RemoteVoice(
        "cosyvoice",
        server.url,
        speaker="中文女",
        mode=mode,
        prompt_wav=prompt,
        prompt_text="你好呀",
    )
    chunks = list(stream(voice, "您好", instruction="用温柔的语气说"))
    assert len(chunks) >= 4  # relayed chunk by chunk, not buffered
    samples = np.concatenate(chunks)
    assert np.allclose(samples, speech_like(), atol=1e-4)
    req = server.requests[0]
    assert req["path"] == f"/inference_{mode}" and req["tts_text"] == "您好"
    if mode == "sft":
        assert req["spk_id"] == "中文女" and not req["files"]
    if mode == "zero_shot":
        assert req["prompt_text"] == "你好呀" and req["files"]["prompt_wav"] == prompt
    if mode == "instruct2":
        assert req["instruct_text"] == "用温柔的语气说" and req["files"]["prompt_wav"] == prompt


def test_cosyvoice_first_chunk_arrives_before_the_whole_answer(fake):
    server = fake("cosyvoice", chunk_seconds=0.1)
    voice = RemoteVoice("cosyvoice", server.url, speaker="中文女")
    start = time.perf_counter()
    it = stream(voice, "您好")
    next(it)
    first = time.perf_counter() - start
    list(it)
    total = time.perf_counter() - start
    assert first < total / 2


def test_relay_then_fetches_audio_url(fake):
    server = fake("relay")
    voice = RemoteVoice("cosyvoice-relay", server.url, prompt_wav=_prompt())
    out = synthesize(voice, "您好", instruction="用平和、安抚的语气说")
    assert len(out.samples) > 20000
    (req,) = server.requests
    assert req["mode"] == "instruct" and req["instruct"] == "用平和、安抚的语气说"
    assert audio.decode(__import__("base64").b64decode(req["prompt_audio"]), "wav")[1] == 16000


def test_openai_compatible_with_bearer_key(fake):
    server = fake("openai", api_key="sk-test")
    voice = RemoteVoice("openai", server.url, api_key="sk-test", speaker="nova", model="tts-1")
    out = synthesize(voice, "您好", speed=1.25)
    assert len(out.samples) > 20000
    (req,) = server.requests
    assert req["voice"] == "nova" and req["speed"] == 1.25 and req["response_format"] == "wav"
    assert req["accept"] == "application/octet-stream"


def test_wrong_secret_is_auth(fake):
    server = fake("openai", api_key="sk-right")
    with pytest.raises(RemoteEngineError) as exc:
        synthesize(RemoteVoice("openai", server.url, api_key="sk-wrong"), "您好")
    assert exc.value.code == "auth"


def test_unreachable_url():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(RemoteEngineError) as exc:
        synthesize(RemoteVoice("indextts2", f"http://127.0.0.1:{port}", timeout=2), "您好")
    assert exc.value.code == "unreachable"


@pytest.mark.parametrize("kind", ["indextts2", "cosyvoice", "relay", "openai"])
def test_slow_server_times_out(fake, kind):
    server = fake(kind)
    server.behaviour, server.slow_seconds = "slow", 2.0
    engine = {"relay": "cosyvoice-relay"}.get(kind, kind)
    with pytest.raises(RemoteEngineError) as exc:
        synthesize(RemoteVoice(engine, server.url, timeout=0.5, speaker="1"), "您好")
    assert exc.value.code == "timeout"


@pytest.mark.parametrize("kind", ["indextts2", "cosyvoice", "relay", "openai"])
@pytest.mark.parametrize("behaviour", ["garbage", "html"])
def test_garbage_audio_is_a_clear_failure(fake, kind, behaviour):
    server = fake(kind)
    server.behaviour = behaviour
    engine = {"relay": "cosyvoice-relay"}.get(kind, kind)
    with pytest.raises(RemoteEngineError) as exc:
        synthesize(RemoteVoice(engine, server.url, speaker="1"), "您好")
    assert exc.value.code in {"bad_audio", "bad_response"}


def test_500s_open_the_breaker_then_a_probe_closes_it(fake):
    server = fake("indextts2")
    server.behaviour = "error"
    now = [0.0]
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=lambda: now[0])
    voice = RemoteVoice("indextts2", server.url, speaker="0")

    def call():
        breaker.before_call("v")
        try:
            out = synthesize(voice, "您好")
        except RemoteEngineError:
            breaker.failure("v")
            raise
        breaker.success("v")
        return out

    for _ in range(3):
        with pytest.raises(RemoteEngineError, match="http_error"):
            call()
    assert breaker.state("v") == "open"
    with pytest.raises(CircuitOpen):
        call()
    assert server.hits == 3  # the open circuit sent nothing
    now[0] = 11
    assert breaker.state("v") == "half-open"
    server.behaviour = "ok"
    assert len(call().samples) > 0
    assert breaker.state("v") == "closed"


def test_failed_probe_reopens(fake):
    now = [0.0]
    breaker = CircuitBreaker(threshold=1, cooldown=5, clock=lambda: now[0])
    breaker.failure("v")
    now[0] = 6
    breaker.before_call("v")  # the probe
    with pytest.raises(CircuitOpen):
        breaker.before_call("v")  # only one probe at a time
    breaker.failure("v")
    assert breaker.state("v") == "open"


def test_prompt_is_resampled_to_16k_mono_and_validated():
    stereo_44k = wav_bytes(speech_like(5.0, 44100), 44100)
    wav, digest, seconds = prepare_prompt(stereo_44k)
    samples, rate = audio.decode(wav, "wav")
    assert rate == 16000 and abs(seconds - 5.0) < 0.01 and abs(len(samples) - 80000) < 5
    assert len(digest) == 64
    mp3 = audio.encode(speech_like(4.0), sample_rate=24000, fmt="mp3")
    assert prepare_prompt(mp3)[2] > 3.9
    for data, code in [
        (wav_bytes(speech_like(2.0)), "prompt_too_short"),
        (wav_bytes(speech_like(31.0)), "prompt_too_long"),
        (b"RIFF\x00\x00garbage" * 10, "prompt_corrupt"),
        (b"", "prompt_corrupt"),
        (wav_bytes(np.zeros(24000 * 4, np.float32)), "prompt_silent"),
    ]:
        with pytest.raises(PromptError) as exc:
            prepare_prompt(data)
        assert exc.value.code == code


def test_instruction_length_is_limited():
    assert validate_instruction(" 用温柔的语气说 ") == "用温柔的语气说"
    with pytest.raises(PromptError) as exc:
        validate_instruction("说" * 101)
    assert exc.value.code == "instruction_too_long"


def test_identity_changes_with_what_changes_the_sound():
    a = RemoteVoice("cosyvoice", "http://gpu:50000", speaker="中文女")
    assert (
        a.identity() == RemoteVoice("cosyvoice", "http://gpu:50000/", speaker="中文女").identity()
    )
    assert (
        a.identity() != RemoteVoice("cosyvoice", "http://gpu2:50000", speaker="中文女").identity()
    )
    assert a.identity() != RemoteVoice("cosyvoice", "http://gpu:50000", speaker="中文男").identity()
    b = RemoteVoice("cosyvoice", "http://gpu:50000", mode="zero_shot", prompt_wav=b"x")
    c = RemoteVoice("cosyvoice", "http://gpu:50000", mode="zero_shot", prompt_wav=b"y")
    assert b.identity() != c.identity()
    assert "secret" not in repr(RemoteVoice("openai", "http://x", api_key="secret"))
