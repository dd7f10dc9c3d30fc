"""Message reads: a conversation's messages, the bot reply to a message, message payloads."""

from typing import Any

from django.db.models import BigIntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from ..models import AudioStatus, Conversation, Message, SenderKind
from .voice import message_display_text, message_transcript_payload, message_voice_payload

_NO_BOUND = 2**63 - 1  # larger than any message id (bigint)
# What a message payload reads: the author's display name comes from the customer profile.
PAYLOAD_RELATIONS = ("author__customer_profile", "intent", "emotion", "audio_clip")


def conversation_messages(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return (
        conversation.messages.filter(pk__gt=after_id)
        .select_related(*PAYLOAD_RELATIONS, "canned_phrase")
        .order_by("created_at", "pk")
    )


def message_with_client_id(*, conversation: Conversation, client_id: str) -> Message | None:
    return (
        conversation.messages.filter(client_id=client_id).select_related(*PAYLOAD_RELATIONS).first()
    )


def bot_reply_after(*, message: Message) -> Message | None:
    """The bot's auto-reply to `message`, if one fired.

    A bot reply is stored right after the customer message it answers, in the same
    transaction; the next customer message bounds the search. One query (the bound is a
    subquery), with the relations the payload reads.
    """
    later = Message.objects.filter(conversation_id=message.conversation_id, pk__gt=message.pk)
    next_customer = later.filter(sender_kind=SenderKind.CUSTOMER).order_by("pk").values("pk")[:1]
    return (
        later.filter(
            sender_kind=SenderKind.BOT,
            pk__lt=Coalesce(
                Subquery(next_customer), Value(_NO_BOUND, output_field=BigIntegerField())
            ),
        )
        .select_related(*PAYLOAD_RELATIONS)
        .order_by("pk")
        .first()
    )


def message_audio_url(message: Message) -> str:
    if message.audio_status != AudioStatus.READY or message.audio_clip is None:
        return ""
    from tts.selectors import clip_url

    return clip_url(message.audio_clip)


def message_payload(message: Message) -> dict[str, Any]:
    """The one JSON shape of a message: console, WebSocket events and API share it."""
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "sender_kind": message.sender_kind,
        "author": message.author.display_name if message.author_id else "",
        # Masked for display; the original stays in the database for supervisors (admin).
        "text": message_display_text(message),
        "kind": message.kind,
        "voice": message_voice_payload(message),
        "transcript": message_transcript_payload(message),
        "moderation": {
            "flagged": message.moderation_flagged,
            "masked": bool(message.masked_text),
        },
        "intent": message.intent.name if message.intent_id else None,
        "intent_label": message.intent.label if message.intent_id else None,
        "emotion": message.emotion.name if message.emotion_id else None,
        "emotion_label": message.emotion.label if message.emotion_id else None,
        "audio_status": message.audio_status,
        "audio_url": message_audio_url(message),
        # The detailed reason (paths, engine errors) is for staff in the admin; everyone who
        # receives this payload, customers included, gets a plain statement.
        "audio_error": str(_("Speech is unavailable for this message."))
        if message.audio_status == AudioStatus.FAILED
        else "",
        "created_at": timezone.localtime(message.created_at).isoformat(),
    }


def message_audio(message: Message) -> dict[str, Any]:
    clip = message.audio_clip if message.audio_status == AudioStatus.READY else None
    return {
        "status": message.audio_status,
        "url": message_audio_url(message) or None,
        "duration_ms": clip.duration_ms if clip is not None else None,
        "format": clip.format if clip is not None else None,
        "emotion": message.emotion.name if message.emotion_id else None,
    }


def message_api_payload(message: Message) -> dict[str, Any]:
    """The console/WebSocket shape (`message_payload`) plus the `audio` object and the
    client's idempotency key."""
    return {
        **message_payload(message),
        "client_id": message.client_id or None,
        "audio": message_audio(message),
    }
