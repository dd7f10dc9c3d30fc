"""Output serializers of the chat API, generated from the payload definitions.

`dialogs.payloads` defines each shape once (a TypedDict plus its builder); these classes are
that definition as DRF sees it: drf-spectacular renders their fields as the OpenAPI
components, and `to_representation` is the builder. Input serializers live in their views.
"""

from rest_framework import serializers

from common.schema import payload_serializer

from .payloads import ConversationPayload, MessagePayload, conversation_payload, message_payload

MessageOutputSerializer = payload_serializer(MessagePayload, build=message_payload, name="Message")
ConversationOutputSerializer = payload_serializer(
    ConversationPayload, build=conversation_payload, name="Conversation"
)


class MessagePostOutputSerializer(serializers.Serializer):
    message = MessageOutputSerializer()
    bot_reply = MessageOutputSerializer(allow_null=True)


class ConversationPageOutputSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Cursor URL of the next page")
    previous = serializers.URLField(allow_null=True)
    results = ConversationOutputSerializer(many=True)


class MessagePageOutputSerializer(serializers.Serializer):
    next = serializers.URLField(allow_null=True, help_text="Cursor URL of the next page")
    previous = serializers.URLField(allow_null=True)
    results = MessageOutputSerializer(many=True)
