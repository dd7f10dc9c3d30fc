"""The reply flow without audio: storage, auto-reply, variables, policy and override, events."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.exceptions import ValidationError

from dialogs.models import (
    AudioStatus,
    CannedPhrase,
    ConversationStatus,
    Message,
    SenderKind,
)
from dialogs.services.messages import agent_reply_create, customer_message_create
from dialogs.services.phrases import phrase_text_render

pytestmark = pytest.mark.django_db


def test_customer_message_is_stored_and_classified(conversation, customer):
    message = customer_message_create(conversation=conversation, author=customer, text="我想退款")
    message.refresh_from_db()
    conversation.refresh_from_db()
    assert message.intent.name == "refund"
    assert message.sender_kind == SenderKind.CUSTOMER
    assert message.audio_status == AudioStatus.NONE  # customer text is not voiced
    # No phrase answers it, so a human will: the last message is the voiced acknowledgement.
    assert conversation.messages.get(sender_kind=SenderKind.CUSTOMER) == message
    assert conversation.last_message.canned_phrase.short_code == "handoff"


def test_no_intent_when_nothing_matches(conversation, customer):
    message = customer_message_create(conversation=conversation, author=customer, text="天气晴")
    assert message.intent is None
    # Nothing answers it: handed to a human (acknowledged), not answered by a random phrase.
    bot = conversation.messages.get(sender_kind=SenderKind.BOT)
    assert bot.canned_phrase.short_code == "handoff"


def test_a_trigger_keyword_makes_the_bot_answer(conversation, customer):
    customer_message_create(conversation=conversation, author=customer, text="你好，在吗")
    bot = conversation.messages.get(sender_kind=SenderKind.BOT)
    assert bot.canned_phrase.short_code == "hello"
    assert bot.text == CannedPhrase.objects.get(short_code="hello").text
    assert bot.emotion.name == "warm"  # greeting -> warm
    assert bot.audio_status == AudioStatus.PENDING  # voiced like any reply, after commit


def test_inactive_phrases_do_not_auto_reply(conversation, customer):
    CannedPhrase.objects.filter(short_code="hello").update(is_active=False)
    customer_message_create(conversation=conversation, author=customer, text="你好")
    assert not conversation.messages.filter(canned_phrase__short_code="hello").exists()


def test_agent_reply_uses_the_policy_for_the_latest_customer_message(conversation, customer, agent):
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    reply = agent_reply_create(conversation=conversation, agent=agent, text="非常抱歉")
    assert reply.emotion.name == "calm"
    assert reply.emotion_overridden is False
    assert reply.audio_status == AudioStatus.PENDING
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent
    assert conversation.status == ConversationStatus.PENDING


def test_agent_can_override_the_emotion(conversation, customer, agent, presets):
    customer_message_create(conversation=conversation, author=customer, text="太差了")
    reply = agent_reply_create(
        conversation=conversation, agent=agent, text="好的", emotion=presets["happy"]
    )
    assert reply.emotion.name == "happy"
    assert reply.emotion_overridden is True


def test_canned_phrase_by_short_code_fills_variables(conversation, agent):
    reply = agent_reply_create(conversation=conversation, agent=agent, short_code="/greet")
    assert reply.text == "王先生您好，我是客服小李，请问有什么可以帮您？"
    assert reply.canned_phrase.short_code == "greet"


def test_unknown_variables_are_a_clear_validation_error(customer, agent):
    with pytest.raises(ValidationError) as excinfo:
        phrase_text_render(text="{{order.id}} 已发货", customer=customer, agent=agent)
    message = str(excinfo.value.message_dict["text"])
    assert "{{order.id}}" in message and "{{customer.nickname}}" in message


def test_unknown_phrase_code_and_empty_text_are_rejected(conversation, agent):
    with pytest.raises(ValidationError, match="nope"):
        agent_reply_create(conversation=conversation, agent=agent, short_code="nope")
    with pytest.raises(ValidationError):
        agent_reply_create(conversation=conversation, agent=agent, text="   ")
    assert not Message.objects.filter(conversation=conversation).exists()


def test_a_customer_message_reopens_a_resolved_conversation(conversation, customer):
    conversation.status = ConversationStatus.RESOLVED
    conversation.save()
    customer_message_create(conversation=conversation, author=customer, text="还有个问题")
    conversation.refresh_from_db()
    # Back, and nobody serves it: queued for a human.
    assert conversation.status == ConversationStatus.WAITING


async def _receive_all(layer, channel: str) -> list[dict]:
    # One event loop for all receives: channels_redis buffers per loop.
    received = []
    while True:
        try:
            received.append(await asyncio.wait_for(layer.receive(channel), timeout=0.5))
        except TimeoutError:
            return received


def test_events_are_published_only_after_commit(
    conversation, customer, agent, django_capture_on_commit_callbacks
):
    # Served by an agent: the message goes to them (console events), the bot stays quiet.
    conversation.assigned_agent = agent
    conversation.save()
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(f"conversation.{conversation.pk}", channel)
    try:
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            message = customer_message_create(
                conversation=conversation, author=customer, text="请问几点发货"
            )
        assert callbacks, "nothing was deferred to commit"
        for callback in callbacks:
            callback()
        received = async_to_sync(_receive_all)(layer, channel)
    finally:
        async_to_sync(layer.group_discard)(f"conversation.{conversation.pk}", channel)
    # Redis orders same-instant messages arbitrarily: compare by type.
    assert {r["type"] for r in received} == {"conversation.event"}
    events = {r["event"]["type"]: r["event"] for r in received}
    assert set(events) == {"message.created", "conversation.updated"}
    assert events["message.created"]["message"]["id"] == message.pk
    assert events["message.created"]["message"]["intent"]["name"] == "inquiry"
    assert events["conversation.updated"]["conversation"]["last_message_id"] == message.pk


def test_an_agent_reply_longer_than_speech_allows_is_refused_at_send(conversation, agent, settings):
    # Issue 13, item 11: it used to be stored, and its audio failed every time.
    from django.test import Client
    from django.urls import reverse

    from dialogs.models import Message

    settings.TTS_MAX_TEXT_CHARS = 50
    console = Client()
    console.force_login(agent)
    too_long = "您好" * 26  # 52 characters

    api = console.post(
        reverse("agent-conversation-reply", args=[conversation.pk]),
        {"text": too_long},
        content_type="application/json",
    )
    form = console.post(
        reverse("console:reply", args=[conversation.pk]),
        {"text": too_long},
        content_type="application/json",
    )

    assert api.status_code == 400, api.content
    assert api.json()["error"]["fields"]["text"]
    assert form.status_code == 400, form.content
    assert not Message.objects.filter(conversation=conversation, sender_kind="agent").exists()
    ok = console.post(
        reverse("agent-conversation-reply", args=[conversation.pk]),
        {"text": "您好" * 25},
        content_type="application/json",
    )
    assert ok.status_code == 201, ok.content
