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
from dialogs.events import _send
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


def test_the_list_shows_unread_counts_until_the_agent_opens_it(
    client, agent, conversation, customer
):
    customer_message_create(conversation=conversation, author=customer, text="请问发货了吗")
    customer_message_create(conversation=conversation, author=customer, text="怎么还没到")
    client.force_login(agent)
    page = client.get(reverse("console:index")).content.decode()
    assert "进行中的会话" in page  # Chinese by default
    assert f'data-conversation="{conversation.pk}"' in page
    assert '<span class="badge unread">2</span>' in page
    client.get(reverse("console:conversation", args=[conversation.pk]))
    page = client.get(reverse("console:index")).content.decode()
    assert '<span class="badge unread">' not in page


def test_the_conversation_page_preselects_the_policy_emotion(client, agent, conversation, customer):
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    client.force_login(agent)
    page = client.get(reverse("console:conversation", args=[conversation.pk])).content.decode()
    assert '<option value="calm" selected>' in page
    assert '"suggestion": "calm"' in page
    assert json.dumps("太差了，我要投诉")[1:-1] in page  # in the json_script payload
    assert f"/ws/chat/{conversation.pk}/" in page


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


def test_socket_refuses_anonymous_and_other_customers(conversation):
    async def run():
        _, connected, code = await _connect(AnonymousUser(), conversation.pk)
        assert (connected, code) == (False, 4401)
        stranger = await _user(CustomerFactory)
        _, connected, code = await _connect(stranger, conversation.pk)
        assert (connected, code) == (False, 4403)

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
            await database_sync_to_async(_send)(conversation.pk, event)
            assert await communicator.receive_json_from(timeout=3) == event
            await communicator.disconnect()

    async_to_sync(run)()
