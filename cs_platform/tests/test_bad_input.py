"""Bad input over HTTP and WebSocket: always a clear 4xx in the error envelope (or a close code),
never a 500, never a traceback, and the server keeps serving."""

import base64
import json
from datetime import timedelta

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken

from accounts.services import tokens_for_user
from cs_platform.asgi import application
from dialogs.consumers import CHAT_WS_BURST
from dialogs.models import Message
from tts.consumers import TTS_WS_BURST

pytestmark = pytest.mark.django_db

ORIGIN = [(b"origin", b"http://testserver")]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    # As in tts/tests/test_ws_tts.py: Channels would close the test transaction's connection.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def token(customer):
    return tokens_for_user(user=customer)["access"]


@pytest.fixture
def api(token):
    return Client(HTTP_AUTHORIZATION=f"Bearer {token}")


def _envelope(response, status: int, code: str | None = None) -> dict:
    body = response.content.decode()
    assert response.status_code == status, body
    assert "Traceback" not in body
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message", "fields"}
    if code is not None:
        assert error["code"] == code
    return error


def _endpoints(conversation) -> list[str]:
    return [
        "/api/auth/token/",
        f"/api/conversations/{conversation.pk}/messages/",
        "/api/tts/",
        "/api/auth/wechat/",
    ]


def test_invalid_json_is_a_400_parse_error(api, conversation):
    for url in _endpoints(conversation):
        for body in ('{"text": ', "[1, 2", "\xff\xfe", "NaN-ish"):
            response = api.post(url, body, content_type="application/json")
            _envelope(response, 400, "parse_error")


def test_json_that_is_not_an_object_is_a_400(api, conversation):
    for body in ("[]", '"text"', "42", "null"):
        response = api.post(
            f"/api/conversations/{conversation.pk}/messages/", body, content_type="application/json"
        )
        assert response.status_code == 400, (body, response.content)
        assert "Traceback" not in response.content.decode()


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",
        "application/xml",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
    ],
)
def test_a_wrong_content_type_is_a_415(api, conversation, content_type):
    for url in _endpoints(conversation):
        response = api.post(url, "text=hello", content_type=content_type)
        if content_type.startswith("multipart/") and url.endswith("/messages/"):
            # The message endpoint takes voice uploads as multipart: the form is read, then
            # refused for what it lacks.
            _envelope(response, 400)
            continue
        _envelope(response, 415, "unsupported_media_type")


def test_an_oversized_body_is_a_413_without_being_read(api, conversation, settings):
    too_big = json.dumps({"text": "字" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE // 3 + 10)})
    # The message endpoint also takes voice (base64 JSON), so its cap is the voice upload's.
    too_big_for_voice = json.dumps({"text": "字" * (settings.VOICE_UPLOAD_MAX_BODY // 3 + 10)})
    for url in _endpoints(conversation):
        body = too_big_for_voice if url.endswith("/messages/") else too_big
        response = api.post(url, body, content_type="application/json")
        _envelope(response, 413, "payload_too_large")
    assert not Message.objects.exists()


def test_an_oversized_console_post_is_a_413_too(conversation, settings, admin_user):
    client = Client()
    client.force_login(admin_user)
    body = "x" * (settings.DATA_UPLOAD_MAX_MEMORY_SIZE + 1)
    response = client.post(
        f"/console/c/{conversation.pk}/reply/", body, content_type="application/json"
    )
    assert response.status_code == 413


def test_unknown_fields_are_ignored(api, conversation, customer):
    response = api.post(
        f"/api/conversations/{conversation.pk}/messages/",
        {"text": "你好", "sender_kind": "agent", "author": 1, "is_staff": True, "x": [1]},
        content_type="application/json",
    )
    assert response.status_code == 201
    message = Message.objects.get(pk=response.json()["message"]["id"])
    assert message.author_id == customer.pk
    assert message.sender_kind == "customer"


@pytest.mark.parametrize(
    "payload, field",
    [
        ({"text": "您好", "speed": 100}, "speed"),
        ({"text": "您好", "speed": -1}, "speed"),
        ({"text": "您好", "pitch": 1e308}, "pitch"),
        ({"text": "您好", "speed": "fast"}, "speed"),
        ({"text": "您好", "format": "exe"}, "format"),
        ({"text": "您好", "emotion": {"$ne": 1}}, "emotion"),
        ({"text": "您好", "voice": ["a"]}, "voice"),
        ({"text": ["您好"]}, "text"),
        ({"text": "字" * 5000}, "text"),
    ],
)
def test_out_of_range_tts_controls_are_field_errors(api, payload, field):
    error = _envelope(api.post("/api/tts/", payload, content_type="application/json"), 400)
    assert field in error["fields"]


def test_nan_and_infinity_are_rejected(api):
    for raw in ('{"text": "您好", "speed": NaN}', '{"text": "您好", "pitch": Infinity}'):
        response = api.post("/api/tts/", raw, content_type="application/json")
        assert 400 <= response.status_code < 500, response.content
        assert "Traceback" not in response.content.decode()


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _bad_tokens(customer) -> dict[str, str]:
    good = tokens_for_user(user=customer)["access"]
    header, payload, signature = good.split(".")
    expired = AccessToken.for_user(customer)
    expired.set_exp(lifetime=-timedelta(minutes=1))
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return {
        "garbage": "not-a-jwt",
        "two_parts": f"{header}.{payload}",
        "bad_base64": f"{header}.%%%.{signature}",
        "expired": str(expired),
        "alg_none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{payload}.",
        "wrong_signature": f"{header}.{payload}.{signature[::-1]}",
        "forged_claims": f"{header}.{_b64({**claims, 'user_id': str(customer.pk + 999)})}.{signature}",
        "huge": "a" * 20000,
    }


def test_bad_jwts_are_401_in_the_envelope(customer, conversation):
    for name, bad in _bad_tokens(customer).items():
        client = Client(HTTP_AUTHORIZATION=f"Bearer {bad}")
        for url in ("/api/me/", f"/api/conversations/{conversation.pk}/messages/"):
            error = _envelope(client.get(url), 401)
            assert error["message"], name


def test_bad_jwts_do_not_open_a_websocket(customer, conversation):
    async def attempt(bad: str):
        comm = WebsocketCommunicator(
            application, f"/ws/chat/{conversation.pk}/?token={bad}", headers=ORIGIN
        )
        connected, _ = await comm.connect()
        code = await _closed_with(comm)
        await comm.disconnect()
        return connected, code

    for name, bad in _bad_tokens(customer).items():
        if name == "huge":
            continue
        connected, code = async_to_sync(attempt)(bad)
        assert connected and code == 4401, name  # accepted, then closed with the reason


def test_tampered_audio_urls_are_404(client):
    # A real token with one character changed is covered in tts/tests/test_api.py.
    for token in (
        "x",
        "not:a:signed:token",
        "eyJjIjoxfQ:1abcde:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "%00%ff",
        "a" * 5000,
    ):
        _envelope(client.get(f"/media/audio/{token}"), 404, "not_found")


@pytest.mark.parametrize(
    "path",
    [
        "/api/conversations/abc/",
        "/api/conversations/1.5/messages/",
        "/api/conversations/-1/messages/",
        "/api/conversations/99999999999999999999999/messages/",
        "/api/agent/conversations/%20/reply/",
        "/api/nope/",
    ],
)
def test_non_integer_or_unknown_ids_are_404_in_the_envelope(api, path):
    _envelope(api.get(path), 404, "not_found")


def test_huge_and_silly_page_sizes_are_clamped(api, conversation, customer):
    # More messages than the clamp, so "at most 200" is something that could fail.
    Message.objects.bulk_create(
        Message(conversation=conversation, sender_kind="customer", author=customer, text=f"第{i}条")
        for i in range(205)
    )
    url = f"/api/conversations/{conversation.pk}/messages/"
    for size in ("1000000000000", "201"):
        response = api.get(url, {"page_size": size})
        assert response.status_code == 200, (size, response.content)
        assert len(response.json()["results"]) == 200, size  # clamped, not ignored
    for size in ("-5", "abc", "", "1e9", "9" * 5000):  # the default page
        response = api.get(url, {"page_size": size})
        assert response.status_code == 200, (size, response.content)
        assert 0 < len(response.json()["results"]) <= 200
    error = _envelope(api.get(url, {"cursor": "garbage"}), 404)
    assert error["code"] == "not_found"


# --- the chat WebSocket ---------------------------------------------------------------------


def _chat(conversation, token) -> WebsocketCommunicator:
    return WebsocketCommunicator(
        application, f"/ws/chat/{conversation.pk}/?token={token}", headers=ORIGIN
    )


async def _closed_with(comm) -> int | None:
    message = await comm.receive_output(5)
    while message["type"] != "websocket.close":
        message = await comm.receive_output(5)
    return message.get("code")


async def _still_works(conversation, token) -> None:
    comm = _chat(conversation, token)
    connected, _ = await comm.connect()
    assert connected
    await comm.send_json_to({"type": "ping"})
    assert await comm.receive_json_from(5) == {"type": "pong"}
    await comm.disconnect()


@pytest.mark.parametrize(
    "frame, code",
    [
        ({"text_data": "not json"}, 4400),
        ({"text_data": "[1, 2, 3]"}, 4400),
        ({"text_data": '"ping"'}, 4400),
        ({"bytes_data": b"\x00\x01\x02"}, 4400),
        ({"text_data": json.dumps({"type": "ping", "pad": "x" * 8000})}, 1009),
    ],
)
def test_chat_socket_closes_on_bad_frames_and_the_server_carries_on(
    conversation, token, frame, code
):
    async def scenario():
        comm = _chat(conversation, token)
        connected, _ = await comm.connect()
        assert connected
        await comm.send_to(**frame)
        assert await _closed_with(comm) == code
        await _still_works(conversation, token)

    async_to_sync(scenario)()


def test_chat_socket_ignores_unknown_json_objects(conversation, token):
    async def scenario():
        comm = _chat(conversation, token)
        assert (await comm.connect())[0]
        await comm.send_json_to({"type": "send", "text": "hi"})
        await comm.send_json_to({"type": "ping"})
        assert await comm.receive_json_from(5) == {"type": "pong"}
        await comm.disconnect()

    async_to_sync(scenario)()


def test_chat_socket_flooding_is_cut_off_with_4429(conversation, token):
    async def scenario():
        comm = _chat(conversation, token)
        assert (await comm.connect())[0]
        for _ in range(100):
            await comm.send_json_to({"type": "ping"})
        pongs = 0
        while True:
            message = await comm.receive_output(5)
            if message["type"] == "websocket.close":
                code = message.get("code")
                break
            pongs += 1
        assert code == 4429
        # The burst of 20, plus what the bucket refilled (2/s) while the frames were sent.
        assert CHAT_WS_BURST <= pongs <= CHAT_WS_BURST + 2, pongs
        await _still_works(conversation, token)

    async_to_sync(scenario)()


def test_tts_socket_flooding_is_cut_off_with_4429(token):
    async def scenario():
        comm = WebsocketCommunicator(application, f"/ws/tts/?token={token}", headers=ORIGIN)
        assert (await comm.connect())[0]
        for _ in range(100):
            await comm.send_to(text_data=json.dumps({"text": ""}))  # invalid: an error frame each
        errors = 0
        while True:
            message = await comm.receive_output(10)
            if message["type"] == "websocket.close":
                code = message.get("code")
                break
            errors += 1
        assert code == 4429
        # The burst of 30 (each answered with an error frame), plus the refill (5/s) meanwhile.
        assert TTS_WS_BURST <= errors <= TTS_WS_BURST + 5, errors

    async_to_sync(scenario)()


def test_a_too_big_body_that_slipped_past_the_middleware_is_still_a_413():
    # A chunked body has no Content-Length for RequestLimitsMiddleware to check; Django raises
    # RequestDataTooBig only when the view reads it, inside DRF: the handler maps it to 413.
    from django.core.exceptions import RequestDataTooBig

    from common.errors import api_exception_handler

    response = api_exception_handler(RequestDataTooBig("too big"), {})
    assert response.status_code == 413
    assert response.data["error"]["code"] == "payload_too_large"


# --- deeply nested JSON (issue 13, item 7) ----------------------------------------------------

DEEP = "[" * 20000 + "]" * 20000  # ~40 KB, under the body cap; json.loads would recurse 20000x
DEEP_IN_FIELD = '{"text": ' + DEEP + ', "code": ' + DEEP + "}"
MODERATE = '{"text": ' + "[" * 200 + "]" * 200 + "}"  # parses, but no request of ours nests so


@pytest.mark.parametrize("body", [DEEP, DEEP_IN_FIELD, MODERATE])
def test_deeply_nested_json_is_a_400_on_every_endpoint(api, conversation, body):
    for path in _endpoints(conversation):
        _envelope(api.post(path, body, content_type="application/json"), 400, "parse_error")


def test_deeply_nested_json_to_the_console_reply_is_a_400(conversation, admin_user):
    console = Client()
    console.force_login(admin_user)
    for body in (DEEP, DEEP_IN_FIELD, MODERATE):
        response = console.post(
            reverse("console:reply", args=[conversation.pk]),
            body,
            content_type="application/json",
        )
        _envelope(response, 400)


def test_a_nested_websocket_frame_closes_with_4400_and_the_server_carries_on(conversation, token):
    frame = "[" * 2000 + "]" * 2000  # 4 KB: under the chat socket's frame size limit
    frame_in_object = '{"type": "ping", "x": ' + "[" * 1900 + "]" * 1900 + "}"

    async def scenario():
        for text in (frame, frame_in_object):
            comm = _chat(conversation, token)
            assert (await comm.connect())[0]
            await comm.send_to(text_data=text)
            assert await _closed_with(comm) == 4400
        comm = WebsocketCommunicator(application, f"/ws/tts/?token={token}", headers=ORIGIN)
        assert (await comm.connect())[0]
        await comm.send_to(text_data=frame)
        assert await _closed_with(comm) == 4400
        await _still_works(conversation, token)

    async_to_sync(scenario)()
