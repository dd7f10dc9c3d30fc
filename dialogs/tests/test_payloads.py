"""The message and conversation payloads: one shape, as declared, everywhere it is sent."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse

from common.schema import payload_mismatches
from dialogs.models import AudioStatus, Message
from dialogs.payloads import ConversationPayload, MessagePayload, message_payload
from dialogs.services.messages import agent_reply_create, customer_message_create
from dialogs.services.voicing import message_voice
from dialogs.services.workflow import conversation_assign
from tts import selectors as tts_selectors

pytestmark = pytest.mark.django_db


async def _receive_all(layer, channel: str) -> list[dict]:
    # One event loop for all receives: channels_redis buffers per loop.
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
        except TimeoutError:
            return received


def _published(conversation_id: int, capture, write) -> list[dict]:
    """The events `write()` publishes on the conversation's group once it commits."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    group = f"conversation.{conversation_id}"
    async_to_sync(layer.group_add)(group, channel)
    try:
        with capture(execute=False) as callbacks:
            write()
        for callback in callbacks:
            callback()
        return [r["event"] for r in async_to_sync(_receive_all)(layer, channel)]
    finally:
        async_to_sync(layer.group_discard)(group, channel)


def test_rest_console_and_events_send_the_same_declared_message_shape(
    api_client, client, customer, agent, conversation, django_capture_on_commit_callbacks
):
    reply = agent_reply_create(conversation=conversation, agent=agent, text="抱歉，马上处理")
    events = _published(
        conversation.pk,
        django_capture_on_commit_callbacks,
        lambda: customer_message_create(conversation=conversation, author=customer, text="太差了"),
    )
    created = next(e["message"] for e in events if e["type"] == "message.created")

    api_client.force_authenticate(customer)
    listed = api_client.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"]
    client.force_login(agent)
    console = client.get(reverse("console:messages", args=[conversation.pk])).json()["messages"]

    for payload in (*listed, *console, created):
        assert payload_mismatches(payload, MessagePayload) == []
    assert listed == console  # one shape for customers and staff
    assert next(m for m in listed if m["id"] == created["id"]) == created
    rest_reply = next(m for m in listed if m["id"] == reply.pk)
    assert rest_reply["audio"]["status"] == AudioStatus.PENDING
    assert rest_reply["audio"]["emotion"] is not None
    assert set(created["intent"]) == {"name", "label"}


def test_a_ready_clip_is_signed_once_and_the_url_plays(
    api_client, customer, agent, conversation, engine, monkeypatch
):
    reply = agent_reply_create(conversation=conversation, agent=agent, text="您好。")
    message_voice(message_id=reply.pk)
    signed = []
    real = tts_selectors.clip_url
    monkeypatch.setattr(tts_selectors, "clip_url", lambda clip: signed.append(clip) or real(clip))
    message = Message.objects.select_related(
        "author__customer_profile", "intent", "emotion", "audio_clip"
    ).get(pk=reply.pk)

    payload = message_payload(message)

    assert len(signed) == 1
    assert payload["audio"]["status"] == AudioStatus.READY
    assert payload["audio"]["format"] == "mp3" and payload["audio"]["duration_ms"] > 0
    api_client.force_authenticate(customer)
    assert api_client.get(payload["audio"]["url"]).status_code == 200
    assert not {"audio_status", "audio_url", "audio_error", "emotion", "emotion_label"} & set(
        payload
    )


def test_the_conversation_payload_names_people_not_accounts(
    api_client, customer, agent, conversation
):
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    api_client.force_authenticate(customer)

    body = api_client.get(f"/api/conversations/{conversation.pk}/").json()

    assert payload_mismatches(body, ConversationPayload) == []
    assert body["customer"] == {"id": customer.pk, "display_name": "王先生"}
    assert body["assigned_agent"] == {"id": agent.pk, "display_name": agent.display_name}


def test_the_schema_components_are_generated_from_the_payload_types(api_client):
    schema = api_client.get(reverse("schema"), {"format": "json"}).json()
    components = schema["components"]["schemas"]

    assert set(components["Message"]["properties"]) == set(MessagePayload.__annotations__)
    assert set(components["Conversation"]["properties"]) == set(ConversationPayload.__annotations__)
    audio = components["MessageAudio"]["properties"]
    assert audio["url"]["nullable"] is True and "emotion" in audio


def test_a_payload_that_drifts_from_its_type_is_caught(customer, conversation):
    message = customer_message_create(conversation=conversation, author=customer, text="你好")
    payload = message_payload(message)
    payload["audio_status"] = "none"  # the old duplicated key
    payload["audio"]["status"] = "unknown"

    problems = payload_mismatches(payload, MessagePayload)

    assert "$: unexpected key 'audio_status'" in problems
    assert any(p.startswith("$.audio.status") for p in problems)
