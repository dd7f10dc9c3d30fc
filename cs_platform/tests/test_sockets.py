"""WebSocket refusals (issue 13, items 11 and 12): readable close codes instead of a bare HTTP
403, an Origin check that includes the port (the only guard of the session-authenticated
sockets against cross-site hijacking), and a cap on open sockets per user."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.test import Client

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory
from cs_platform.asgi import application
from dialogs.services.conversations import conversation_create

pytestmark = pytest.mark.django_db

SAME = [(b"origin", b"http://testserver"), (b"host", b"testserver")]


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@pytest.fixture
def customer(db):
    return CustomerFactory()


@pytest.fixture
def conversation(customer):
    return conversation_create(customer=customer)


@pytest.fixture
def token(customer):
    return tokens_for_user(user=customer)["access"]


async def _outcome(path: str, headers) -> int | str:
    """ "open" when the socket answers a ping, else the close code it got."""
    comm = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await comm.connect(timeout=5)
    if not connected:
        return f"http-refused ({code})"  # what a browser sees: no close code at all
    await comm.send_json_to({"type": "ping"})
    message = await comm.receive_output(5)
    if message["type"] == "websocket.close":
        return message.get("code")
    await comm.disconnect()
    return "open"


def _run(path, headers=SAME):
    return async_to_sync(_outcome)(path, headers)


def test_refused_sockets_get_the_documented_close_codes(conversation, token):
    other = tokens_for_user(user=CustomerFactory())["access"]

    assert _run(f"/ws/chat/{conversation.pk}/") == 4401  # no token
    assert _run(f"/ws/chat/{conversation.pk}/?token=garbage") == 4401
    assert _run("/ws/tts/") == 4401
    assert _run(f"/ws/chat/{conversation.pk}/?token={other}") == 4403  # someone else's
    assert _run(f"/ws/chat/{conversation.pk + 10**6}/?token={token}") == 4404  # no such one
    assert _run(f"/ws/chat/{conversation.pk}/?token={token}") == "open"


def _session_headers(user, origin: bytes, host: bytes = b"testserver"):
    client = Client()
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    return [(b"origin", origin), (b"host", host), (b"cookie", cookie)]


def test_the_session_authenticated_chat_socket_refuses_foreign_origins(conversation, admin_user):
    path = f"/ws/chat/{conversation.pk}/"

    # The agent's own console page: same scheme, host and port.
    assert _run(path, _session_headers(admin_user, b"http://testserver")) == "open"
    assert (
        _run(path, _session_headers(admin_user, b"http://testserver:8000", b"testserver:8000"))
        == "open"
    )
    # Another site, riding on the agent's session cookie.
    assert _run(path, _session_headers(admin_user, b"https://evil.example")) == 4403
    # Same host name, another port (another app on the box): not the same origin.
    assert _run(path, _session_headers(admin_user, b"http://testserver:8080")) == 4403
    assert (
        _run(path, _session_headers(admin_user, b"http://testserver:8080", b"testserver:8000"))
        == 4403
    )
    # No Origin, a "null" one, a host that is not allowed.
    headers = _session_headers(admin_user, b"null")
    assert _run(path, headers) == 4403
    assert _run(path, [h for h in headers if h[0] != b"origin"]) == 4403
    assert _run(path, _session_headers(admin_user, b"http://evil.example", b"evil.example")) == 4403


def test_trusted_origins_are_allowed_exactly(conversation, admin_user, settings):
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example.com"]
    path = f"/ws/chat/{conversation.pk}/"

    trusted = _session_headers(admin_user, b"https://console.example.com")
    other_port = _session_headers(admin_user, b"https://console.example.com:444")
    assert _run(path, trusted) == "open"
    assert _run(path, other_port) == 4403


def test_token_sockets_are_not_held_to_the_origin(conversation, token):
    # The mini-program's wx.connectSocket sends no Origin of ours; another site cannot forge a
    # socket that carries its own JWT.
    path = f"/ws/chat/{conversation.pk}/?token={token}"
    assert _run(path, [(b"origin", b"https://servicewechat.com")]) == "open"
    assert _run(path, []) == "open"


def test_one_user_cannot_hold_more_sockets_than_the_cap(conversation, token, settings):
    settings.WS_MAX_SOCKETS_PER_USER = 3
    path = f"/ws/chat/{conversation.pk}/?token={token}"

    async def scenario():
        held = []
        for _ in range(3):
            comm = WebsocketCommunicator(application, path, headers=SAME)
            assert (await comm.connect())[0]
            held.append(comm)
        assert await _outcome(path, SAME) == 4429
        assert await _outcome(f"/ws/tts/?token={token}", SAME) == 4429  # all sockets count
        await held.pop().disconnect()
        assert await _outcome(path, SAME) == "open"  # a slot came back
        for comm in held:
            await comm.disconnect()

    async_to_sync(scenario)()
    other = tokens_for_user(user=CustomerFactory())["access"]
    assert _run(f"/ws/tts/?token={other}") == "open"  # other users are not affected


def test_the_redis_layer_outlives_an_idle_wait_and_stops_when_cancelled(settings):
    # redis-py 8 gives up a read after 5 s; a quiet socket must not (common/channel_layer.py),
    # and cancelling a waiting receive must end it at once, or an event loop never closes.
    from channels.layers import get_channel_layer

    assert settings.CHANNEL_LAYERS["default"]["BACKEND"].endswith("ShortWaitRedisChannelLayer")

    async def scenario():
        layer = get_channel_layer()
        channel = await layer.new_channel()
        with pytest.raises(asyncio.TimeoutError):  # nothing came; no redis read timeout either
            await asyncio.wait_for(layer.receive(channel), 7)
        waiting = asyncio.ensure_future(layer.receive(channel))
        await asyncio.sleep(0.5)
        waiting.cancel()
        done, _ = await asyncio.wait([waiting], timeout=4)
        assert waiting in done and waiting.cancelled()

    async_to_sync(scenario)()
