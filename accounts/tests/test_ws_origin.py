"""Which WebSocket handshakes the Origin check lets through.

The mini-program's wx.connectSocket sends no Origin of ours, so sockets that carry a JWT are not
held to the check; sockets that ride the session cookie (the agent console) still are.
"""

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.sessions.backends.db import SessionStore

from accounts.services import tokens_for_user
from accounts.tests.factories import AgentFactory, CustomerFactory
from cs_platform.asgi import application
from dialogs.services.conversations import conversation_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_connection(monkeypatch):
    # Channels would close the test transaction's connection (see tts/tests/test_ws_tts.py).
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


@async_to_sync
async def _handshake(path: str, headers: list[tuple[bytes, bytes]]):
    """(stayed open, close code). A refusal is accepted and then closed with its code (4401,
    4403 ...): a close before the handshake would reach a browser as a bare HTTP 403."""
    communicator = WebsocketCommunicator(application, path, headers=headers)
    connected, code = await communicator.connect()
    if connected and not await communicator.receive_nothing(0.3):
        message = await communicator.receive_output(1)
        if message["type"] == "websocket.close":
            connected, code = False, message.get("code")
    await communicator.disconnect()
    return connected, code


def _agent_cookie() -> bytes:
    agent = AgentFactory()
    session = SessionStore()
    session["_auth_user_id"] = str(agent.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = agent.get_session_auth_hash()
    session.create()
    return f"sessionid={session.session_key}".encode()


@pytest.fixture
def chat():
    customer = CustomerFactory()
    conversation = conversation_create(customer=customer)
    return f"/ws/chat/{conversation.pk}/", tokens_for_user(user=customer)["access"]


@pytest.mark.parametrize(
    "origin",
    [None, b"https://servicewechat.com", b"weapp://wechat-game-runtime", b"http://testserver"],
)
def test_a_socket_with_a_jwt_is_accepted_whatever_its_origin(chat, origin):
    path, token = chat
    headers = [(b"origin", origin)] if origin else []
    connected, _ = _handshake(f"{path}?token={token}", headers)
    assert connected


def test_a_cookie_socket_still_needs_our_origin(chat):
    path, _ = chat
    cookie = _agent_cookie()
    assert _handshake(path, [(b"origin", b"http://testserver"), (b"cookie", cookie)])[0]
    assert _handshake(path, [(b"origin", b"https://evil.example"), (b"cookie", cookie)]) == (
        False,
        4403,
    )
    assert _handshake(path, [(b"cookie", cookie)]) == (False, 4403)


def test_a_garbage_token_does_not_smuggle_the_cookie_past_the_check(chat):
    path, _ = chat
    cookie = _agent_cookie()
    connected, code = _handshake(
        f"{path}?token=garbage", [(b"origin", b"https://evil.example"), (b"cookie", cookie)]
    )
    assert not connected
    assert code == 4401  # anonymous: the session was not used
