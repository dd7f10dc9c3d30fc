"""Output serializers of the chat API, generated from the payload definitions.

`dialogs.payloads` defines each shape once (a TypedDict plus its builder); these classes are
that definition as DRF sees it: drf-spectacular renders their fields as the OpenAPI
components, and `to_representation` is the builder. Input serializers live in their views.
"""

from rest_framework import serializers

from common.schema import payload_serializer

from .models import ConversationStatus, Presence
from .payloads import (
    ConversationPayload,
    Csat,
    MessagePayload,
    conversation_payload,
    message_payload,
)

MessageOutputSerializer = payload_serializer(MessagePayload, build=message_payload, name="Message")
ConversationOutputSerializer = payload_serializer(
    ConversationPayload, build=conversation_payload, name="Conversation"
)


CsatOutputSerializer = payload_serializer(Csat)  # the same component as the nested `csat`


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
    results = ConversationOutputSerializer(many=True)


class MessagePageOutputSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Cursor URL of the next page")
    previous = serializers.URLField(allow_null=True)
    has_more = serializers.BooleanField(
        help_text="More messages in the direction read (newer pages; older with `before`)"
    )
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
