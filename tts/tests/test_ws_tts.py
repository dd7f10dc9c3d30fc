"""/ws/tts/ through the real ASGI application (JWT middleware, origin check, routing).

Tests are sync and drive the socket with async_to_sync, so Channels' (thread-sensitive) database
calls run in the test's own thread, on its connection, inside its transaction. No transactional
DB: flushing would wipe the seeded voice and presets for every later test.
"""

import json
import time

import numpy as np
import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory
from cs_platform.asgi import application
from tts.engine import audio
from tts.models import SynthesisRecord, SynthesisSource

pytestmark = pytest.mark.django_db

THREE_SENTENCES = "您好，欢迎致电客服中心。请问有什么可以帮您？我们会尽快为您处理。"
SIX_SENTENCES = (
    "您好，欢迎致电客服中心。您的订单已经发货。预计明天下午送达。"
    "如需修改地址请回复一。退换货请在七天内申请。感谢您的耐心等待。"
)
ORIGIN = [(b"origin", b"http://testserver")]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    # Channels recycles connections around every database_sync_to_async call (as Django does
    # per request); inside the test's transaction that would close it. Django's test client
    # disconnects its per-request recycling for the same reason.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def token(db):
    return tokens_for_user(user=CustomerFactory())["access"]


def _socket(token: str | None) -> WebsocketCommunicator:
    path = f"/ws/tts/?token={token}" if token else "/ws/tts/"
    return WebsocketCommunicator(application, path, headers=ORIGIN)


async def _reply(comm: WebsocketCommunicator, timeout: float = 60) -> list[tuple]:
    """Frames of one reply, each (arrival time, kind, payload), up to end/error/close."""
    frames = []
    while True:
        message = await comm.receive_output(timeout)
        now = time.perf_counter()
        if message["type"] == "websocket.close":
            frames.append((now, "close", message.get("code")))
            return frames
        if message.get("bytes") is not None:
            frames.append((now, "bytes", message["bytes"]))
            continue
        content = json.loads(message["text"])
        frames.append((now, "json", content))
        if content["type"] in {"end", "error"}:
            return frames


def _speak(token: str, *requests: dict | str) -> list[list[tuple]]:
    """Send each request on one socket and collect its reply; (sent time, frames) per request."""

    async def scenario():
        comm = _socket(token)
        connected, _ = await comm.connect(timeout=10)
        assert connected
        replies = []
        for request in requests:
            sent = time.perf_counter()
            text = request if isinstance(request, str) else json.dumps(request)
            await comm.send_to(text_data=text)
            replies.append((sent, await _reply(comm)))
        await comm.disconnect()
        return replies

    return async_to_sync(scenario)()


def _audio(frames) -> list[bytes]:
    return [payload for _, kind, payload in frames if kind == "bytes"]


def _json(frames) -> list[dict]:
    return [payload for _, kind, payload in frames if kind == "json"]


def test_it_closes_4401_without_a_valid_token():
    async def scenario(token):
        comm = _socket(token)
        connected, _ = await comm.connect(timeout=10)
        # Accepted, then closed with the code: a close before the handshake would reach a
        # browser as a bare HTTP 403 without it.
        closed = await comm.receive_output(5)
        return connected, closed["type"], closed.get("code")

    assert async_to_sync(scenario)(None) == (True, "websocket.close", 4401)
    assert async_to_sync(scenario)("not-a-jwt") == (True, "websocket.close", 4401)


def test_it_streams_one_chunk_per_sentence_then_the_end_frame(token, engine):
    [(_, frames)] = _speak(token, {"text": THREE_SENTENCES, "format": "pcm"})

    kinds = [kind for _, kind, _ in frames]
    assert kinds[0] == "json" and kinds[-1] == "json"
    assert kinds[1:-1] == ["bytes"] * (len(kinds) - 2)
    start, end = _json(frames)
    chunks = _audio(frames)
    assert start["type"] == "start" and start["format"] == "pcm" and start["sample_rate"] == 24000
    assert len(chunks) >= 3
    assert end == {
        "type": "end",
        "chunks": len(chunks),
        "duration_ms": round(sum(len(c) for c in chunks) / 2 * 1000 / 24000),
    }
    record = SynthesisRecord.objects.get()
    assert record.source == SynthesisSource.STREAM and record.status == "ok"
    assert record.user is not None and record.latency_ms > 0


def test_streamed_pcm_equals_the_whole_synthesis(token, engine):
    [(_, frames)] = _speak(token, {"text": THREE_SENTENCES, "format": "pcm"})

    streamed = b"".join(_audio(frames))
    whole = audio.encode(engine.synthesize(THREE_SENTENCES).samples, sample_rate=24000, fmt="pcm")
    assert len(streamed) == len(whole)
    assert streamed == whole


def test_streamed_mp3_is_one_decodable_file(token, engine):
    [(_, frames)] = _speak(token, {"text": THREE_SENTENCES, "emotion": "calm"})

    samples, rate = audio.decode(b"".join(_audio(frames)), "mp3")
    end = _json(frames)[-1]
    assert rate == 24000
    # MP3 pads the last frame: decoded length is the real length plus less than one frame.
    expected = end["duration_ms"] * 24
    assert expected - 24 <= len(samples) < expected + audio.MP3_FRAME_SAMPLES + 24
    assert float(np.abs(samples).max()) > 0.05


def test_the_first_chunk_arrives_long_before_the_reply_is_done(token, engine):
    engine.synthesize("预热。")  # first-call costs (allocations, caches) are not streaming's
    [(sent, frames)] = _speak(token, {"text": SIX_SENTENCES, "format": "pcm"})

    first_chunk = next(at for at, kind, _ in frames if kind == "bytes")
    done = frames[-1][0]
    assert len(_audio(frames)) >= 6
    # Six sentences of similar length: the first is ready after roughly a sixth of the work.
    assert first_chunk - sent < 0.5 * (done - sent)


def test_a_bad_request_gets_an_error_frame_and_the_socket_stays_usable(token, engine):
    replies = _speak(
        token,
        {"text": "您好。", "speed": 5},
        {"text": "您好。", "emotion": "furious"},
        {"text": ""},
        {"text": "您好。", "format": "wav"},
        {"text": "您好。", "format": "pcm"},
    )

    errors = [_json(frames)[-1] for _, frames in replies[:4]]
    assert all(e["type"] == "error" and e["code"] == "invalid" for e in errors)
    assert [sorted(e["fields"]) for e in errors] == [["speed"], ["emotion"], ["text"], ["format"]]
    last = replies[-1][1]
    assert _json(last)[-1]["type"] == "end" and _audio(last)
    assert SynthesisRecord.objects.count() == 1


@pytest.mark.parametrize(
    ("frame", "code"),
    [("this is not json", 4400), ("[1, 2]", 4400), (json.dumps({"text": "长" * 9000}), 1009)],
)
def test_a_garbage_frame_closes_the_socket(token, frame, code):
    [(_, frames)] = _speak(token, frame)
    assert frames == [(frames[0][0], "close", code)]


def test_a_binary_frame_closes_the_socket(token):
    async def scenario():
        comm = _socket(token)
        assert (await comm.connect(timeout=10))[0]
        await comm.send_to(bytes_data=b"\x00\x01")
        return await comm.receive_output(10)

    assert async_to_sync(scenario)() == {"type": "websocket.close", "code": 4400}


def test_the_rate_limit_is_shared_with_the_http_api(token, engine, settings, api_client):
    from rest_framework_simplejwt.tokens import AccessToken

    from conftest import ratelimit_headroom

    settings.TTS_RATE_LIMIT = "2/m"
    ratelimit_headroom(str(AccessToken(token)["user_id"]))

    replies = _speak(token, *[{"text": "您好。", "format": "pcm"}] * 3)

    assert [_json(frames)[-1]["type"] for _, frames in replies] == ["end", "end", "error"]
    refusal = _json(replies[2][1])[-1]
    assert refusal["code"] == "rate_limited" and 0 < refusal["retry_after"] <= 60
    http = api_client.post(
        "/api/tts/", {"text": "您好。"}, format="json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert http.status_code == 429
    assert SynthesisRecord.objects.filter(source=SynthesisSource.STREAM).count() == 2
