"""The agent console views and the chat WebSocket consumer."""

import json

import pytest
from asgiref.sync import async_to_sync
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from accounts.tests.factories import CustomerFactory
from dialogs.consumers import ChatConsumer
from dialogs.events import conversation_events_send_now
from dialogs.models import Message, SenderKind
from dialogs.services.messages import customer_message_create

pytestmark = pytest.mark.django_db


def test_anonymous_users_are_sent_to_the_admin_login(client):
    response = client.get(reverse("console:index"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("admin:login"))
    assert "next=/console/" in response["Location"]


def test_customers_get_403(client, customer):
    client.force_login(customer)
    assert client.get(reverse("console:index")).status_code == 403
    assert client.get(reverse("console:phrases")).status_code == 403


def test_the_console_page_is_a_shell_that_reads_no_conversations(
    client, agent, conversation, customer, django_assert_max_num_queries
):
    """The queue comes from the paginated API after load: the page itself must stay cheap
    however many conversations and messages there are (session, user, presets)."""
    customer_message_create(conversation=conversation, author=customer, text="请问发货了吗")
    client.force_login(agent)
    # Session, user, the agent's nickname (AgentProfile: shown instead of a username),
    # presets, a savepoint or two: a fixed handful.
    with django_assert_max_num_queries(6):
        page = client.get(reverse("console:index")).content.decode()
    assert "客服工作台" in page and "认领" in page and "快捷短语" in page  # Chinese by default
    assert '"conversationsUrl": "/api/agent/conversations/"' in page
    assert "接待：{name}" in page and "已等待 {t}" in page  # placeholders survive translation
    assert '"initialConversation": null' in page
    assert "onclick" not in page and "onsubmit" not in page  # no inline handlers (CSP)


def test_the_conversation_url_opens_the_console_on_that_conversation(client, agent, conversation):
    client.force_login(agent)
    page = client.get(reverse("console:conversation", args=[conversation.pk])).content.decode()
    assert f'"initialConversation": {conversation.pk}' in page
    assert '"chatWsTemplate": "/ws/chat/{id}/"' in page


def test_an_unknown_conversation_url_is_a_404(client, agent):
    client.force_login(agent)
    assert client.get(reverse("console:conversation", args=[999999])).status_code == 404


def test_opening_the_conversation_marks_it_read_and_gives_the_policy_suggestion(
    client, agent, conversation, customer
):
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    assert conversation.agent_read_at is None
    client.force_login(agent)
    data = client.get(reverse("console:messages", args=[conversation.pk])).json()
    assert data["suggestion"] == "calm"  # complaint -> calm
    assert data["messages"][0]["text"] == "太差了，我要投诉"
    conversation.refresh_from_db()
    assert conversation.agent_read_at is not None


def test_phrase_search_by_short_code_prefix(client, agent):
    client.force_login(agent)
    data = client.get(reverse("console:phrases"), {"q": "/ref"}).json()
    assert [p["short_code"] for p in data["phrases"]] == ["refund"]


def test_reply_requires_csrf_and_creates_an_agent_message(agent, conversation):
    client = Client(enforce_csrf_checks=True)
    client.force_login(agent)
    url = reverse("console:reply", args=[conversation.pk])
    body = json.dumps({"phrase_code": "sorry"})
    refused = client.post(url, body, content_type="application/json")
    assert refused.status_code == 403
    client.get(reverse("console:conversation", args=[conversation.pk]))  # sets the CSRF cookie
    token = client.cookies["csrftoken"].value
    response = client.post(url, body, content_type="application/json", HTTP_X_CSRFTOKEN=token)
    assert response.status_code == 201
    payload = response.json()["message"]
    assert payload["sender_kind"] == "agent"
    assert payload["text"].startswith("非常抱歉")
    assert payload["audio"]["status"] == "pending"
    assert Message.objects.filter(pk=payload["id"], author=agent).exists()


def test_reply_errors_use_the_error_envelope(client, agent, conversation, presets):
    client.force_login(agent)
    url = reverse("console:reply", args=[conversation.pk])
    response = client.post(
        url, json.dumps({"text": "{{order.id}} 已发货"}), content_type="application/json"
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid" and "{{order.id}}" in error["message"]
    response = client.post(
        url, json.dumps({"text": "好", "emotion": "furious"}), content_type="application/json"
    )
    assert response.status_code == 400
    response = client.post(
        url, json.dumps({"text": "好的", "emotion": "happy"}), content_type="application/json"
    )
    assert response.json()["message"]["audio"]["emotion"]["name"] == "happy"


def test_messages_endpoint_returns_messages_after_an_id(client, agent, conversation, customer):
    first = customer_message_create(conversation=conversation, author=customer, text="在吗")
    client.force_login(agent)
    data = client.get(
        reverse("console:messages", args=[conversation.pk]), {"after": first.pk}
    ).json()
    # The bot answered the greeting.
    assert [m["sender_kind"] for m in data["messages"]] == [SenderKind.BOT]
    assert data["suggestion"] == "warm"


# --- WebSocket -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _keep_the_test_transaction(monkeypatch):
    """channels' database_sync_to_async calls close_old_connections(), which closes a connection
    that is inside a transaction, i.e. the test's. Django's own test client disconnects the same
    hook for the same reason; doing that here avoids flushing the shared test database."""
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


async def _connect(user, conversation_id):
    communicator = WebsocketCommunicator(ChatConsumer.as_asgi(), f"/ws/chat/{conversation_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"conversation_id": conversation_id}}
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _close_code(communicator) -> int | None:
    message = await communicator.receive_output(5)
    return message.get("code") if message["type"] == "websocket.close" else None


def test_socket_refuses_anonymous_and_other_customers(conversation):
    # Refusals are accepted and then closed with the code (a close before the handshake is a
    # bare HTTP 403 to a browser, which loses the reason).
    async def run():
        comm, connected, _ = await _connect(AnonymousUser(), conversation.pk)
        assert connected and await _close_code(comm) == 4401
        stranger = await _user(CustomerFactory)
        comm, connected, _ = await _connect(stranger, conversation.pk)
        assert connected and await _close_code(comm) == 4403

    async_to_sync(run)()


async def _user(factory):
    from channels.db import database_sync_to_async

    return await database_sync_to_async(factory)()


def test_socket_forwards_conversation_events_to_staff_and_the_owner(conversation, agent, customer):
    async def run():
        for user in (agent, customer):
            communicator, connected, _ = await _connect(user, conversation.pk)
            assert connected
            await communicator.send_json_to({"type": "ping"})
            assert await communicator.receive_json_from() == {"type": "pong"}
            from channels.db import database_sync_to_async

            event = {"type": "message.created", "message": {"id": 1, "text": "你好"}}
            await database_sync_to_async(conversation_events_send_now)([(conversation.pk, event)])
            received = await communicator.receive_json_from(timeout=3)
            assert isinstance(received.pop("event_id"), int)  # every event is numbered
            assert received == event
            await communicator.disconnect()

    async_to_sync(run)()


def test_the_messages_endpoint_pages_a_long_conversation(
    client, agent, conversation, customer, django_assert_max_num_queries
):
    Message.objects.bulk_create(
        Message(conversation=conversation, sender_kind=SenderKind.CUSTOMER, text=f"第{n}条")
        for n in range(130)
    )
    ids = list(conversation.messages.order_by("pk").values_list("pk", flat=True))
    url = reverse("console:messages", args=[conversation.pk])
    client.force_login(agent)

    # One page, however long the conversation. Cold caches included: the rules snapshot (3) and
    # the business-hours schedule (2) are read once per process.
    with django_assert_max_num_queries(13):
        newest = client.get(url).json()
    assert [m["id"] for m in newest["messages"]] == ids[-50:]  # oldest first inside the page
    assert newest["has_more"] is True

    older = client.get(url, {"before": ids[-50]}).json()
    assert [m["id"] for m in older["messages"]] == ids[-100:-50]
    oldest = client.get(url, {"before": ids[-100]}).json()
    assert [m["id"] for m in oldest["messages"]] == ids[:30] and oldest["has_more"] is False

    caught_up = client.get(url, {"after": ids[9]}).json()
    assert [m["id"] for m in caught_up["messages"]] == ids[10:]
    assert caught_up["has_more"] is False
