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


def test_the_message_list_rows_build_the_same_payloads_as_model_instances(
    api_client,
    customer,
    agent,
    supervisor,
    conversation,
    django_assert_max_num_queries,
    monkeypatch,
):
    """The REST list builds payloads from `.values()` rows (`MessageRow`), everything else from
    model instances: every kind of message must come out identical, in a fixed number of
    queries (an agent's nickname included: no query per agent message)."""
    from types import SimpleNamespace

    from dialogs.models import AgentProfile, MessageKind, SenderKind
    from dialogs.selectors import voice as voice_selectors
    from dialogs.selectors.messages import conversation_messages
    from tts.models import AudioClip, EmotionPreset, Voice

    # Signed URLs carry an expiry: one clock for both builds, so a second boundary between
    # them cannot make the tokens differ.
    clock = SimpleNamespace(time=lambda: 1_800_000_000.0)
    monkeypatch.setattr(voice_selectors, "time", clock)
    monkeypatch.setattr(tts_selectors, "time", clock)

    AgentProfile.objects.update_or_create(user=agent, defaults={"display_name": "客服小李"})
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    agent_reply_create(conversation=conversation, agent=agent, text="抱歉，马上处理")
    agent_reply_create(conversation=conversation, agent=supervisor, text="我来处理")
    voice = Voice.objects.first() or Voice.objects.create(engine_voice_id="baker")
    clip = AudioClip.objects.create(
        cache_key="f" * 64,
        text="您好",
        voice=voice,
        engine_version="v",
        file="clips/x.mp3",
        format="mp3",
        duration_ms=1234,
        size_bytes=10,
    )
    Message.objects.create(
        conversation=conversation,
        sender_kind=SenderKind.BOT,
        text="您好",
        emotion=EmotionPreset.objects.order_by("pk").first(),
        audio_status=AudioStatus.READY,
        audio_clip=clip,
    )
    Message.objects.create(
        conversation=conversation,
        sender_kind=SenderKind.CUSTOMER,
        author=customer,
        text="你好",
        masked_text="**",
        moderation_flagged=True,
        kind=MessageKind.VOICE,
        voice_file="voice/2026/12/x.mp3",
        voice_format="mp3",
        voice_duration_ms=900,
        transcript_status=AudioStatus.READY,
        client_id="c-1",
    )
    Message.objects.create(
        conversation=conversation, sender_kind=SenderKind.BOT, text="失败", audio_status="failed"
    )
    expected = [message_payload(m) for m in conversation_messages(conversation=conversation)]

    api_client.force_authenticate(customer)
    with django_assert_max_num_queries(3):  # user, permission check, the page
        listed = api_client.get(f"/api/conversations/{conversation.pk}/messages/").json()
    assert len(listed["results"]) == len(expected) >= 6
    assert listed["results"] == expected
    by_text = {m["text"]: m for m in listed["results"]}
    assert by_text["您好"]["audio"]["url"] and by_text["**"]["voice"]["url"]
    authors = {m["author"] for m in listed["results"]}
    assert {"王先生", "客服小李"} <= authors
    before = listed["results"][-1]["id"]
    scrolled = api_client.get(
        f"/api/conversations/{conversation.pk}/messages/?before={before}&page_size=2"
    ).json()
    assert scrolled["results"] == listed["results"][-3:-1]
