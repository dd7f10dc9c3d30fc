"""The JSON shapes of messages and conversations, defined once.

The TypedDicts are the definition: the builders below are annotated with them, the REST API's
OpenAPI components are generated from them (`common.schema.payload_serializer`), and the same
dicts go to the agent console and out on every WebSocket event. To add a key (workflow, voice
messages), add it to the TypedDict and to the builder; `dialogs/tests/test_payloads.py` checks
that what is built has exactly the declared shape.
"""

from typing import Annotated, TypedDict

from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from common.schema import IsoDateTime

from .models import (
    AudioStatus,
    Conversation,
    ConversationPriority,
    ConversationStatus,
    HandoffReason,
    Message,
    MessageKind,
    SenderKind,
)
from .selectors import workflow
from .selectors.voice import (
    message_display_text,
    message_transcript_payload,
    message_voice_payload,
)

# What `message_payload` reads, for select_related: the author's display name comes from the
# customer profile; the clip is read only when the audio is ready.
MESSAGE_PAYLOAD_RELATIONS = ("author__customer_profile", "intent", "emotion", "audio_clip")
CONVERSATION_PAYLOAD_RELATIONS = (
    "customer__customer_profile",
    "assigned_agent__agent_profile",
    "last_message",
)


LAST_MESSAGE_PREVIEW = 60


class NameLabel(TypedDict):
    name: Annotated[str, "Stable identifier (e.g. `calm`)"]
    label: Annotated[str, "Human-readable name in the request's language"]


class Person(TypedDict):
    id: int
    display_name: str


class MessageAudio(TypedDict):
    status: Annotated[str, AudioStatus, "`none` for text that is not voiced (customer messages)"]
    url: Annotated[str | None, "Signed, expiring clip URL; only when `status` is `ready`"]
    duration_ms: Annotated[int | None, "Only when ready"]
    format: Annotated[str | None, 'Clip format, e.g. "mp3"; only when ready']
    emotion: Annotated[NameLabel | None, "The emotion preset the reply is spoken in"]
    error: Annotated[str | None, "A plain statement for the reader; only when `status` is `failed`"]


class MessageVoice(TypedDict):
    url: Annotated[str, "Signed, expiring URL of the recording (MP3, playable everywhere)"]
    duration_ms: int | None
    format: Annotated[str, "The uploaded format: wav, mp3, aac, pcm, silk, webm or ogg"]


class MessageTranscript(TypedDict):
    status: Annotated[str, AudioStatus, "pending -> ready | failed, never back"]
    text: Annotated[str, "Masked where the word filter masks; empty until ready"]
    empty: Annotated[bool, "Ready but nothing was said (silence): no bot reply follows"]


class MessageModeration(TypedDict):
    flagged: Annotated[bool, "The sensitive-word filter matched (staff review)"]
    masked: Annotated[bool, "`text` is shown with sensitive words masked"]


class MessagePayload(TypedDict):
    id: int
    conversation_id: int
    client_id: Annotated[str | None, "The sender's idempotency key, if one was given"]
    sender_kind: Annotated[str, SenderKind]
    author: Annotated[str, 'Display name of the customer or agent; "" for the bot']
    text: Annotated[
        str, "Masked for display where the word filter masks; a voice message's transcript"
    ]
    kind: Annotated[str, MessageKind]
    voice: Annotated[MessageVoice | None, "Voice messages only"]
    transcript: Annotated[MessageTranscript | None, "Voice messages only"]
    moderation: MessageModeration
    intent: Annotated[NameLabel | None, "What the customer's message was classified as"]
    created_at: IsoDateTime
    audio: MessageAudio


class Sla(TypedDict):
    first_response_due_at: Annotated[IsoDateTime | None, "While no agent has answered yet"]
    next_response_due_at: Annotated[IsoDateTime | None, "While a customer message is unanswered"]
    overdue: Annotated[bool, "A due time has passed (the queue flags it)"]


class Csat(TypedDict):
    rating: Annotated[int, "1-5 stars"]
    comment: str
    created_at: IsoDateTime


class ServiceHours(TypedDict):
    open_now: Annotated[bool, "Inside business hours (weekly schedule, holidays), Asia/Shanghai"]
    next_open_at: Annotated[IsoDateTime | None, "When agents are next available (now when open)"]


class ConversationPayload(TypedDict):
    id: int
    status: Annotated[str, ConversationStatus]
    priority: Annotated[int, ConversationPriority]
    customer: Person
    assigned_agent: Annotated[Person | None, "Who serves it: a display name, never a username"]
    last_message_id: int | None
    last_message_at: IsoDateTime | None
    last_message_text: Annotated[str | None, "The latest message, at most 60 characters"]
    created_at: IsoDateTime
    queue_position: Annotated[int | None, "1 = next in line; only while waiting"]
    waiting_since: Annotated[IsoDateTime | None, "When it entered the queue"]
    handoff_reason: Annotated[str, HandoffReason, "Why it went to a human"] | None
    sla: Sla
    unread_count: Annotated[int, "Customer messages staff have not read"]
    csat: Annotated[Csat | None, "The customer's rating, once given"]
    resolved_at: IsoDateTime | None
    service: ServiceHours


def _iso(value) -> str | None:
    return timezone.localtime(value).isoformat() if value is not None else None


def _person(user: User | None) -> Person | None:
    return {"id": user.pk, "display_name": user.display_name} if user is not None else None


def message_audio(message: Message) -> MessageAudio:
    emotion = message.emotion if message.emotion_id else None
    status = message.audio_status
    clip = message.audio_clip if status == AudioStatus.READY and message.audio_clip_id else None
    if clip is not None:
        from tts.selectors import clip_url

        url = clip_url(clip)  # signed once per payload: signing is the costly part
    else:
        url = None
    return {
        "status": status,
        "url": url,
        "duration_ms": clip.duration_ms if clip is not None else None,
        "format": clip.format if clip is not None else None,
        "emotion": {"name": emotion.name, "label": emotion.label} if emotion is not None else None,
        # The detailed reason (paths, engine errors) is for staff in the admin; everyone who
        # receives this payload, customers included, gets a plain statement.
        "error": str(_("Speech is unavailable for this message."))
        if status == AudioStatus.FAILED
        else None,
    }


def message_payload(message: Message) -> MessagePayload:
    intent = message.intent if message.intent_id else None
    return {
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "client_id": message.client_id or None,
        "sender_kind": message.sender_kind,
        "author": message.author.display_name if message.author_id else "",
        # Masked for display; the original stays in the database for supervisors (admin).
        "text": message_display_text(message),
        "kind": message.kind,
        "voice": message_voice_payload(message),
        "transcript": message_transcript_payload(message),
        "moderation": {"flagged": message.moderation_flagged, "masked": bool(message.masked_text)},
        "intent": {"name": intent.name, "label": intent.label} if intent is not None else None,
        "created_at": timezone.localtime(message.created_at).isoformat(),
        "audio": message_audio(message),
    }


def conversation_payload(conversation: Conversation) -> ConversationPayload:
    queue_position, unread_count = workflow.conversation_queue_position_and_unread(conversation)
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "priority": conversation.priority,
        "customer": _person(conversation.customer),
        "assigned_agent": _person(conversation.assigned_agent)
        if conversation.assigned_agent_id
        else None,
        "last_message_id": conversation.last_message_id,
        "last_message_at": _iso(conversation.last_message_at),
        "last_message_text": conversation.last_message.text[:LAST_MESSAGE_PREVIEW]
        if conversation.last_message_id
        else None,
        "created_at": _iso(conversation.created_at),
        "queue_position": queue_position,
        "waiting_since": _iso(conversation.waiting_since),
        "handoff_reason": conversation.handoff_reason or None,
        "sla": workflow.conversation_sla(conversation),
        "unread_count": unread_count,
        "csat": workflow.conversation_csat(conversation),
        "resolved_at": _iso(conversation.resolved_at),
        "service": workflow.service_hours(),
    }
