"""Voice messages over the customer API: real speech from our engine in every format, the
transcript taking the typed-text path, and every bad upload refused with nothing stored."""

import base64
import struct
from pathlib import Path

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings

from accounts.services import tokens_for_user
from dialogs.events import conversation_group
from dialogs.models import AudioStatus, Message, MessageKind, SenderKind
from tts.asr.encoding import CLIENT_RATES, ROUND_TRIP_FORMATS, encode_as, wav_bytes
from tts.models import RecognitionRecord

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def messages_url(conversation_id: int) -> str:
    return f"/api/conversations/{conversation_id}/messages/"


@pytest.fixture
def as_customer(api_client, customer):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=customer)['access']}")
    return api_client


@pytest.fixture
def run_on_commit(django_capture_on_commit_callbacks):
    """Run on_commit hooks (the transcription task, events) as a real commit would."""

    def post(client, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(*args, **kwargs)

    return post


def _voice_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT) / "voice"
    return set(root.rglob("*.mp3")) if root.exists() else set()


def _post_base64(post, client, conversation, data: bytes, fmt: str, **extra):
    body = {"audio_base64": base64.b64encode(data).decode(), "format": fmt, **extra}
    return post(client, messages_url(conversation.pk), body, format="json")


@pytest.mark.parametrize("fmt", ROUND_TRIP_FORMATS)
def test_each_format_is_stored_transcribed_and_playable(
    as_customer, run_on_commit, conversation, spoken_request, recognizer, fmt
):
    samples, rate, _text = spoken_request
    data = encode_as(samples, rate, fmt)
    response = _post_base64(
        run_on_commit,
        as_customer,
        conversation,
        data,
        fmt,
        sample_rate=CLIENT_RATES[fmt],
        client_id=f"v-{fmt}",
    )
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["bot_reply"] is None  # the transcript answers later, not the upload
    message = Message.objects.get(pk=body["message"]["id"])
    assert message.kind == MessageKind.VOICE and message.sender_kind == SenderKind.CUSTOMER
    assert message.transcript_status == AudioStatus.READY
    assert "退款" in message.text
    assert message.voice_format == {"m4a": "aac"}.get(fmt, fmt)
    assert abs(message.voice_duration_ms - 1000 * samples.size / rate) < 150
    assert message.intent is not None and message.intent.name == "refund"

    listed = as_customer.get(messages_url(conversation.pk)).json()["results"]
    payload = next(m for m in listed if m["id"] == message.pk)
    assert payload["kind"] == "voice"
    assert payload["transcript"] == {"status": "ready", "text": message.text, "empty": False}
    audio = as_customer.get(payload["voice"]["url"])
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/mpeg"
    mp3 = b"".join(audio.streaming_content)
    # An ID3 tag, or straight into an MPEG audio frame (11 sync bits): the encoder may write either.
    assert mp3[:3] == b"ID3" or (mp3[0] == 0xFF and mp3[1] & 0xE0 == 0xE0), mp3[:4]


def test_multipart_upload_and_client_id_idempotency(
    as_customer, run_on_commit, conversation, spoken_request, recognizer
):
    from django.core.files.uploadedfile import SimpleUploadedFile

    samples, rate, _ = spoken_request
    webm = encode_as(samples, rate, "webm")

    def send():
        upload = SimpleUploadedFile("rec.bin", webm, content_type="audio/webm;codecs=opus")
        return run_on_commit(
            as_customer,
            messages_url(conversation.pk),
            {"audio": upload, "client_id": "hold-1"},
            format="multipart",
        )

    first = send()
    assert first.status_code == 201, first.json()
    again = send()
    assert again.status_code == 200
    assert again.json()["message"]["id"] == first.json()["message"]["id"]
    assert conversation.messages.filter(kind=MessageKind.VOICE).count() == 1
    assert RecognitionRecord.objects.filter(event="received").count() == 1
    assert RecognitionRecord.objects.filter(event="transcribed").count() == 1


def test_transcript_feeds_the_bot_reply_and_events_come_in_order(
    as_customer, run_on_commit, conversation, engine, recognizer, monkeypatch
):
    speech = engine.synthesize("请问退款多久能到账？")
    layer = get_channel_layer()
    published = []
    send = layer.group_send

    async def recording_group_send(group, message):
        # A spy: every event still goes out through the real layer.
        if group == conversation_group(conversation.pk):
            published.append(message["event"])
        await send(group, message)

    monkeypatch.setattr(layer, "group_send", recording_group_send)
    # Someone watches the conversation: events go only to groups that have a listener.
    listener = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(conversation_group(conversation.pk), listener)
    mp3 = encode_as(speech.samples, speech.sample_rate, "mp3")
    try:
        response = _post_base64(run_on_commit, as_customer, conversation, mp3, "mp3")
    finally:
        async_to_sync(layer.group_discard)(conversation_group(conversation.pk), listener)
    assert response.status_code == 201

    kinds = [(e["type"], e["message"]["sender_kind"]) for e in published if "message" in e]
    created = kinds.index(("message.created", "customer"))
    transcribed = kinds.index(("message.transcribed", "customer"))
    bot = kinds.index(("message.created", "bot"))
    assert created < transcribed < bot
    event = next(e for e in published if e["type"] == "message.transcribed")
    assert event["message"]["id"] == response.json()["message"]["id"]
    assert event["message"]["transcript"]["status"] == "ready"
    assert "退款" in event["message"]["transcript"]["text"]
    bot_reply = conversation.messages.get(sender_kind=SenderKind.BOT)
    assert bot_reply.canned_phrase.short_code == "refund"


def test_a_silent_recording_is_kept_with_an_empty_transcript_and_no_reply(
    as_customer, run_on_commit, conversation, recognizer
):
    silence = encode_as(np.zeros(16000 * 2, dtype=np.float32), 16000, "wav")
    response = _post_base64(run_on_commit, as_customer, conversation, silence, "wav")
    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["message"]["id"])
    assert message.transcript_status == AudioStatus.READY and message.text == ""
    payload = as_customer.get(messages_url(conversation.pk)).json()["results"][-1]
    assert payload["transcript"] == {"status": "ready", "text": "", "empty": True}
    assert not conversation.messages.filter(sender_kind=SenderKind.BOT).exists()


def _huge_header_wav() -> bytes:
    wav = bytearray(wav_bytes(np.zeros(1600, dtype="<i2"), 16000))
    struct.pack_into("<I", wav, 40, 0xFFFF0000)
    return bytes(wav)


def _adpcm_wav() -> bytes:
    import io

    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="wav") as box:
        stream = box.add_stream("adpcm_ms", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            box.mux(packet)
    return out.getvalue()


BAD_UPLOADS = {
    "corrupt": (lambda s: b"\x00\x13garbage" * 200, "mp3", 400, "audio_corrupt"),
    "zero_length": (lambda s: b"", "wav", 400, "audio_empty"),
    "wrong_declared": (lambda s: s["wav"], "mp3", 400, "audio_format_mismatch"),
    "unknown_format": (lambda s: s["wav"], "flac", 415, "audio_unsupported"),
    "unsupported_codec": (lambda s: _adpcm_wav(), "wav", 415, "audio_unsupported"),
    "huge_wav_header": (lambda s: _huge_header_wav(), "wav", 400, "audio_corrupt"),
    "too_long": (lambda s: s["long"], "ogg", 413, "audio_too_long"),
    "bomb": (lambda s: s["bomb"], "ogg", 413, "audio_too_long"),
    "pcm_without_rate": (lambda s: b"\x00\x01" * 8000, "pcm", 400, "audio_sample_rate"),
}


@pytest.fixture(scope="module")
def sources():
    rng = np.random.default_rng(7)
    return {
        "wav": wav_bytes(np.zeros(8000, dtype="<i2"), 16000),
        # 61 s of quiet noise: just over the 60 s limit.
        "long": encode_as(
            (rng.standard_normal(16000 * 61) * 0.01).astype(np.float32), 16000, "ogg"
        ),
        # ten minutes of silence: a few kB that would decode to 19 MB of samples.
        "bomb": encode_as(np.zeros(16000 * 600, dtype=np.float32), 16000, "ogg"),
    }


@pytest.mark.parametrize("case", sorted(BAD_UPLOADS))
def test_bad_uploads_are_refused_and_nothing_is_stored(
    as_customer, run_on_commit, conversation, sources, case
):
    make, fmt, status, code = BAD_UPLOADS[case]
    before_files = _voice_files()
    response = _post_base64(run_on_commit, as_customer, conversation, make(sources), fmt)
    assert response.status_code == status, response.json()
    assert response.json()["error"]["code"] == code
    assert not conversation.messages.exists()
    assert _voice_files() == before_files
    assert RecognitionRecord.objects.get(event="rejected").error == code


def test_base64_garbage_and_too_big_are_refused(as_customer, run_on_commit, conversation, settings):
    garbage = run_on_commit(
        as_customer,
        messages_url(conversation.pk),
        {"audio_base64": "not base64 at all!!", "format": "wav"},
        format="json",
    )
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == "audio_base64"

    settings.ASR_MAX_BYTES = 1000
    big = _post_base64(run_on_commit, as_customer, conversation, b"RIFF" + b"\x00" * 2000, "wav")
    assert big.status_code == 413 and big.json()["error"]["code"] == "audio_too_large"

    # Beyond the body cap the middleware answers before the body is read.
    settings.VOICE_UPLOAD_MAX_BODY = 4096
    huge = _post_base64(run_on_commit, as_customer, conversation, b"\x00" * 8000, "wav")
    assert huge.status_code == 413
    assert not conversation.messages.exists()


def test_only_the_owner_can_post_voice_and_links_expire(
    as_customer, run_on_commit, conversation, recognizer, settings
):
    from rest_framework.test import APIClient

    from accounts.tests.factories import CustomerFactory

    stranger = APIClient()
    token = tokens_for_user(user=CustomerFactory())["access"]
    stranger.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    wav = encode_as(np.zeros(16000, dtype=np.float32), 16000, "wav")
    assert _post_base64(run_on_commit, stranger, conversation, wav, "wav").status_code == 404

    settings.TTS_AUDIO_URL_TTL_SECONDS = -5  # already expired when issued
    response = _post_base64(run_on_commit, as_customer, conversation, wav, "wav")
    url = response.json()["message"]["voice"]["url"]
    assert as_customer.get(url).status_code == 404
    assert as_customer.get(url[:-3] + "abc").status_code == 404
