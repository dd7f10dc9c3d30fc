"""The sockets of the workflow: the staff console (presence heartbeat, queue events) and typing
indicators on the chat socket."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator

from dialogs.consumers import ChatConsumer, ConsoleConsumer
from dialogs.models import Presence
from dialogs.selectors import workflow as reads
from dialogs.services import workflow

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _keep_the_test_transaction(monkeypatch):
    # As in test_console.py: channels would close the test's connection mid-transaction.
    monkeypatch.setattr("channels.db.close_old_connections", lambda: None)


async def _console(user):
    communicator = WebsocketCommunicator(ConsoleConsumer.as_asgi(), "/ws/console/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _chat(user, conversation_id):
    communicator = WebsocketCommunicator(ChatConsumer.as_asgi(), f"/ws/chat/{conversation_id}/")
    communicator.scope["user"] = user
    communicator.scope["url_route"] = {"kwargs": {"conversation_id": conversation_id}}
    connected, _code = await communicator.connect()
    assert connected
    return communicator


@database_sync_to_async
def _presence(user) -> str:
    return reads.agent_presence(workflow.agent_profile_get(user=user))


def test_the_console_socket_is_staff_only(customer):
    async def run():
        _, connected, code = await _console(customer)
        assert not connected and code == 4403

    async_to_sync(run)()


def test_a_console_socket_is_the_agents_presence(agent):
    async def run():
        assert await _presence(agent) == Presence.OFFLINE
        communicator, connected, _ = await _console(agent)
        assert connected
        assert await _presence(agent) == Presence.ONLINE  # connecting is a heartbeat
        await communicator.send_json_to({"type": "ping"})
        assert await communicator.receive_json_from(timeout=3) == {"type": "pong"}
        await communicator.disconnect()
        assert await _presence(agent) == Presence.OFFLINE  # a closed tab, at once

    async_to_sync(run)()


def test_the_console_hears_the_queue_and_its_own_assignments(
    agent, customer, conversation, django_capture_on_commit_callbacks
):
    def hand_off():
        with django_capture_on_commit_callbacks(execute=True):
            workflow.conversation_handoff(conversation=conversation, reason="requested")

    async def run():
        communicator, connected, _ = await _console(agent)
        assert connected
        await database_sync_to_async(hand_off)()
        seen = {}
        # The agent is online (the socket), so the handoff is followed by an assignment.
        while "conversation.assigned" not in seen:
            event = await communicator.receive_json_from(timeout=5)
            assert isinstance(event.get("event_id"), int)
            seen.setdefault(event["type"], event)
        assert seen["queue.updated"]["conversation"]["id"] == conversation.pk
        assigned = seen["conversation.assigned"]["conversation"]
        assert assigned["assigned_agent"]["id"] == agent.pk
        await communicator.disconnect()

    async_to_sync(run)()


def test_typing_is_forwarded_throttled_with_the_display_name(agent, customer, conversation):
    workflow.agent_profile_update(user=agent, display_name="客服小李")

    async def run():
        customer_socket = await _chat(customer, conversation.pk)
        agent_socket = await _chat(agent, conversation.pk)
        for _ in range(5):  # a burst of keystrokes
            await agent_socket.send_json_to({"type": "typing"})
        event = await customer_socket.receive_json_from(timeout=3)
        assert event == {"type": "typing", "sender_kind": "agent", "display_name": "客服小李"}
        assert await customer_socket.receive_nothing(timeout=0.5)  # one per interval
        await customer_socket.send_json_to({"type": "typing"})
        heard = await agent_socket.receive_json_from(timeout=3)
        while heard["sender_kind"] == "agent":  # its own echo
            heard = await agent_socket.receive_json_from(timeout=3)
        assert heard == {"type": "typing", "sender_kind": "customer", "display_name": "王先生"}
        await customer_socket.disconnect()
        await agent_socket.disconnect()

    async_to_sync(run)()
