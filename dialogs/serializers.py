"""Output shapes shared by several chat API views (input serializers live in their views).

The payload itself is built by the selectors (one shape for API, console and WebSocket); the
declared fields are what the OpenAPI schema shows, so keep them in step with
`selectors.messages.message_api_payload` / `selectors.workflow.conversation_payload` (a test checks that).
"""

from rest_framework import serializers

from .models import (
    AudioStatus,
    ConversationPriority,
    ConversationStatus,
    HandoffReason,
    Presence,
    SenderKind,
)
from .selectors.messages import message_api_payload
from .selectors.workflow import conversation_payload as workflow_conversation_payload


class MessageAudioOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AudioStatus.choices)
    url = serializers.CharField(
        allow_null=True, help_text="Signed, expiring clip URL; null until the audio is ready."
    )
    duration_ms = serializers.IntegerField(allow_null=True)
    format = serializers.CharField(allow_null=True, help_text='e.g. "mp3"')
    emotion = serializers.CharField(allow_null=True, help_text="Emotion preset name")


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    sender_kind = serializers.ChoiceField(choices=SenderKind.choices)
    author = serializers.CharField()
    text = serializers.CharField()
    intent = serializers.CharField(allow_null=True)
    intent_label = serializers.CharField(allow_null=True)
    emotion = serializers.CharField(allow_null=True)
    emotion_label = serializers.CharField(allow_null=True)
    audio_status = serializers.ChoiceField(choices=AudioStatus.choices)
    audio_url = serializers.CharField(allow_blank=True)
    audio_error = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()
    client_id = serializers.CharField(allow_null=True)
    audio = MessageAudioOutputSerializer()

    def to_representation(self, instance):
        return message_api_payload(instance)


class AgentRefOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField(help_text="e.g. 客服小李 (never a username)")


class SlaOutputSerializer(serializers.Serializer):
    first_response_due_at = serializers.DateTimeField(allow_null=True)
    next_response_due_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.BooleanField()


class CsatOutputSerializer(serializers.Serializer):
    rating = serializers.IntegerField(min_value=1, max_value=5)
    comment = serializers.CharField(allow_blank=True)
    created_at = serializers.DateTimeField()


class ServiceHoursOutputSerializer(serializers.Serializer):
    open_now = serializers.BooleanField(help_text="Inside business hours now")
    next_open_at = serializers.DateTimeField(
        allow_null=True, help_text="When agents are next available (now when open)"
    )


class ConversationOutputSerializer(serializers.Serializer):
    """A conversation as its customer sees it (mini-program, chat page, chat socket events)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConversationStatus.choices)
    priority = serializers.ChoiceField(choices=ConversationPriority.choices)
    assigned_agent = AgentRefOutputSerializer(allow_null=True, help_text="Who serves me")
    customer = serializers.CharField()
    last_message_id = serializers.IntegerField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    queue_position = serializers.IntegerField(
        allow_null=True, help_text="1 = next in line; null unless waiting"
    )
    waiting_since = serializers.DateTimeField(allow_null=True)
    handoff_reason = serializers.ChoiceField(choices=HandoffReason.choices, allow_null=True)
    sla = SlaOutputSerializer()
    csat = CsatOutputSerializer(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    service = ServiceHoursOutputSerializer()

    def to_representation(self, instance):
        return workflow_conversation_payload(instance, for_customer=True)


class AgentConversationOutputSerializer(serializers.Serializer):
    """A conversation as staff see it (console queue, agent API)."""

    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConversationStatus.choices)
    priority = serializers.ChoiceField(choices=ConversationPriority.choices)
    assigned_agent = AgentRefOutputSerializer(allow_null=True)
    customer = serializers.CharField()
    last_message_id = serializers.IntegerField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    last_message_text = serializers.CharField(allow_null=True, help_text="At most 60 characters")
    created_at = serializers.DateTimeField()
    queue_position = serializers.IntegerField(allow_null=True)
    waiting_since = serializers.DateTimeField(allow_null=True)
    handoff_reason = serializers.ChoiceField(choices=HandoffReason.choices, allow_null=True)
    sla = SlaOutputSerializer()
    csat = CsatOutputSerializer(allow_null=True)
    resolved_at = serializers.DateTimeField(allow_null=True)
    unread_count = serializers.IntegerField(help_text="Customer messages not read by staff")

    def to_representation(self, instance):
        return workflow_conversation_payload(instance)


class MessagePostOutputSerializer(serializers.Serializer):
    message = MessageOutputSerializer()
    bot_reply = MessageOutputSerializer(allow_null=True)


class ConversationPageOutputSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Cursor URL of the next page")
    previous = serializers.URLField(allow_null=True)
    results = ConversationOutputSerializer(many=True)


class AgentConversationPageOutputSerializer(serializers.Serializer):
    count = serializers.IntegerField()
    next = serializers.URLField(allow_null=True)
    previous = serializers.URLField(allow_null=True)
    results = AgentConversationOutputSerializer(many=True)


class MessagePageOutputSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Cursor URL of the next page")
    previous = serializers.URLField(allow_null=True)
    results = MessageOutputSerializer(many=True)


class AgentPresenceOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    display_name = serializers.CharField()
    presence = serializers.ChoiceField(
        choices=Presence.choices, help_text="Effective: offline without heartbeats"
    )
    status = serializers.ChoiceField(choices=Presence.choices, help_text="As chosen by the agent")
    load = serializers.IntegerField(help_text="Open and pending conversations served")
    capacity = serializers.IntegerField()


class AgentPresenceListOutputSerializer(serializers.Serializer):
    results = AgentPresenceOutputSerializer(many=True)


class PhraseOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    short_code = serializers.CharField()
    title = serializers.CharField()
    text = serializers.CharField()
    category = serializers.CharField(allow_blank=True)
    preview_url = serializers.CharField(help_text="GET it (add ?emotion=<name>) for the audio")


class PhraseListOutputSerializer(serializers.Serializer):
    results = PhraseOutputSerializer(many=True)


class _CustomerProfileOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    nickname = serializers.CharField()
    customer_since = serializers.DateTimeField(allow_null=True)
    conversations = serializers.IntegerField()


class _EarlierConversationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConversationStatus.choices)
    created_at = serializers.DateTimeField()
    last_message_at = serializers.DateTimeField(allow_null=True)
    assigned_agent = serializers.CharField(allow_null=True)
    csat_rating = serializers.IntegerField(allow_null=True)


class _IntentSeenOutputSerializer(serializers.Serializer):
    name = serializers.CharField()
    label = serializers.CharField()
    count = serializers.IntegerField()


class _CsatGivenOutputSerializer(serializers.Serializer):
    conversation_id = serializers.IntegerField()
    rating = serializers.IntegerField()
    comment = serializers.CharField(allow_blank=True)
    agent = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()


class CustomerPanelOutputSerializer(serializers.Serializer):
    profile = _CustomerProfileOutputSerializer()
    earlier_conversations = _EarlierConversationOutputSerializer(many=True)
    intents_seen = _IntentSeenOutputSerializer(many=True)
    csat_given = _CsatGivenOutputSerializer(many=True)
