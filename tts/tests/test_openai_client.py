"""/v1/ with the official `openai` Python package against a live server (real HTTP, real
engine): every response_format decoded back, plain and streaming, OpenAI's error shape, and
model/voice discovery."""

import httpx
import numpy as np
import openai
import pytest

from accounts.services import api_key_create
from tts.engine import audio

pytestmark = pytest.mark.django_db(transaction=True)
TEXT = "您好，您的订单已经发货。"


@pytest.fixture
def raw_key(settings):
    settings.TTS_RATE_LIMIT = "1000/m"
    _, raw = api_key_create(
        name="openai-sdk", scopes=["tts"], allowed_ips="", rate_limit="1000/m", created_by=None
    )
    return raw


@pytest.fixture
def client(live_server, raw_key):
    return openai.OpenAI(base_url=f"{live_server.url}/v1", api_key=raw_key, max_retries=0)


def _speech_seconds(data: bytes, fmt: str) -> float:
    samples, rate = audio.decode(data, fmt)
    assert samples.dtype == np.float32 and rate in (24000, 48000)
    # real speech, not silence or noise bursts
    assert float(np.sqrt(np.mean(samples**2))) > 0.01
    return len(samples) / rate


@pytest.mark.parametrize("fmt", ["mp3", "opus", "aac", "flac", "wav", "pcm"])
def test_every_format_plain_and_streaming_decodes_back(client, engine, fmt):
    plain = client.audio.speech.create(model="tts-1", voice="nova", input=TEXT, response_format=fmt)
    with client.audio.speech.with_streaming_response.create(
        model="tts-1", voice="alloy", input=TEXT, response_format=fmt
    ) as streamed:
        assert streamed.status_code == 200
        chunks = list(streamed.iter_bytes(chunk_size=1024))
    assert len(chunks) > 1
    assert b"".join(chunks) == plain.content  # same text, voice and format: the cached clip
    reference = _speech_seconds(
        client.audio.speech.create(
            model="tts-1", voice="baker", input=TEXT, response_format="wav"
        ).content,
        "wav",
    )
    # lossy codecs add priming/padding; the speech itself is the same length
    assert abs(_speech_seconds(plain.content, fmt) - reference) < 0.1


def test_accept_headers_of_real_clients_are_not_refused(live_server, raw_key, engine):
    for accept in ("application/octet-stream", "audio/mpeg", "audio/*", "*/*", "text/html"):
        response = httpx.post(
            f"{live_server.url}/v1/audio/speech",
            json={"model": "tts-1", "input": TEXT, "voice": "nova", "response_format": "mp3"},
            headers={"Authorization": f"Bearer {raw_key}", "Accept": accept},
            timeout=60,
        )
        assert response.status_code == 200, accept
        assert response.headers["content-type"] == "audio/mpeg"


def test_errors_reach_the_client_in_openai_shape(client, live_server):
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(model="tts-1", voice="nova", input=TEXT, response_format="ogg")
    assert (bad.value.code, bad.value.param, bad.value.type) == (
        "invalid",
        "response_format",
        "invalid_request_error",
    )
    with pytest.raises(openai.BadRequestError) as bad:
        client.audio.speech.create(
            model="tts-1", voice="nova", input=TEXT, instructions="Speak like a pirate."
        )
    assert bad.value.param == "instructions"

    wrong = openai.OpenAI(base_url=f"{live_server.url}/v1", api_key="csk_wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as denied:
        wrong.audio.speech.create(model="tts-1", voice="nova", input=TEXT)
    assert denied.value.code == "invalid_key" and denied.value.type == "invalid_request_error"

    with pytest.raises(openai.NotFoundError) as missing:
        client.models.retrieve("gpt-9")
    assert missing.value.code == "model_not_found"
    unknown = httpx.get(f"{live_server.url}/v1/chat/completions")
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "invalid_request_error"


def test_models_and_voices_are_discoverable(client):
    ids = [m.id for m in client.models.list()]
    assert {"tts-1", "tts-1-hd", "gpt-4o-mini-tts", "baker"} <= set(ids)
    assert client.models.retrieve("tts-1").owned_by == "cs-platform"
    voices = client.get("/audio/voices", cast_to=object)["voices"]
    by_id = {v["id"]: v for v in voices}
    assert by_id["baker"]["default"] is True
    assert by_id["nova"]["alias_of"] == "baker"


def test_instructions_naming_a_preset_change_the_speech(client, engine):
    plain = client.audio.speech.create(
        model="gpt-4o-mini-tts", voice="baker", input=TEXT, response_format="pcm"
    )
    calm = client.audio.speech.create(
        model="gpt-4o-mini-tts",
        voice="baker",
        input=TEXT,
        response_format="pcm",
        instructions="calm",
    )
    assert plain.content != calm.content
