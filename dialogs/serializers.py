"""Output shapes shared by several chat API views (input serializers live in their views).

The payload itself is built by the selectors (one shape for API, console and WebSocket); the
declared fields are what the OpenAPI schema shows, so keep them in step with
`selectors.messages.message_api_payload` / `selectors.conversations.conversation_api_payload` (a test checks that).
"""

from rest_framework import serializers

from .models import (
    AudioStatus,
    ConversationPriority,
    ConversationStatus,
    MessageKind,
    SenderKind,
)
from .selectors.conversations import conversation_api_payload
from .selectors.messages import message_api_payload


class MessageAudioOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AudioStatus.choices)
    url = serializers.CharField(
        allow_null=True, help_text="Signed, expiring clip URL; null until the audio is ready."
    )
    duration_ms = serializers.IntegerField(allow_null=True)
    format = serializers.CharField(allow_null=True, help_text='e.g. "mp3"')
    emotion = serializers.CharField(allow_null=True, help_text="Emotion preset name")


class MessageVoiceOutputSerializer(serializers.Serializer):
    url = serializers.CharField(help_text="Signed, expiring URL of the voice audio (MP3).")
    duration_ms = serializers.IntegerField(allow_null=True)
    format = serializers.CharField(help_text="The uploaded format (wav, mp3, aac, silk, ...).")


class MessageTranscriptOutputSerializer(serializers.Serializer):
    status = serializers.ChoiceField(choices=AudioStatus.choices)
    text = serializers.CharField(allow_blank=True, help_text="Masked where the word filter masks.")
    empty = serializers.BooleanField(help_text="Ready, but nothing was said (silence).")


class MessageModerationOutputSerializer(serializers.Serializer):
    flagged = serializers.BooleanField()
    masked = serializers.BooleanField(help_text="`text` is shown with sensitive words masked.")


class MessageOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    conversation_id = serializers.IntegerField()
    sender_kind = serializers.ChoiceField(choices=SenderKind.choices)
    author = serializers.CharField()
    text = serializers.CharField(allow_blank=True)
    kind = serializers.ChoiceField(choices=MessageKind.choices)
    voice = MessageVoiceOutputSerializer(allow_null=True)
    transcript = MessageTranscriptOutputSerializer(allow_null=True)
    moderation = MessageModerationOutputSerializer()
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


class ConversationOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    status = serializers.ChoiceField(choices=ConversationStatus.choices)
    priority = serializers.ChoiceField(choices=ConversationPriority.choices)
    assigned_agent = serializers.CharField(allow_null=True)
    customer = serializers.CharField()
    last_message_id = serializers.IntegerField(allow_null=True)
    last_message_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()

    def to_representation(self, instance):
        return conversation_api_payload(instance)


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
