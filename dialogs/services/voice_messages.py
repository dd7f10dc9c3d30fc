"""Voice messages: a customer's recording is stored (as 16 kHz MP3, playable everywhere) and
transcribed on the `asr` queue; the transcript then takes the same path as typed text (intent,
emotion policy, bot reply), and the word filter flags or masks it like typed text.

Transcript status is monotonic: pending -> ready | failed, never back. Silence (or nothing
recognised) is `ready` with an empty text: the message stays, nobody answers it.
"""

import time
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from accounts.models import User
from common.tasks import task_enqueue
from tts import services as tts_services
from tts.asr.decoding import TARGET_RATE, AudioLimits, AudioRejected, DecodedAudio, decode_audio

from ..events import conversation_event_publish
from ..models import AudioStatus, Conversation, ConversationStatus, Message, MessageKind, SenderKind
from ..payloads import message_payload
from ..selectors.messages import message_with_client_id
from ..selectors.policy import intent_classify
from ..selectors.voice import asr_prompt_current
from .messages import (
    CLIENT_ID_MAX,
    CustomerPostResult,
    _message_store,
    customer_text_answer,
)
from .moderation import moderation_apply

TRANSCRIPT_ERROR_MAX = 300


class TranscriptionFailed(Exception):
    """The recogniser could not run (model missing, crash): worth retrying, then `failed`."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def _clean_client_id(client_id: str) -> str:
    from django.core.exceptions import ValidationError
    from django.utils.translation import gettext as _

    client_id = (client_id or "").strip()
    if len(client_id) > CLIENT_ID_MAX:
        raise ValidationError(
            {"client_id": _("At most %(limit)d characters.") % {"limit": CLIENT_ID_MAX}},
            code="max_length",
        )
    return client_id


@transaction.atomic
def voice_message_create(
    *, conversation: Conversation, author: User, decoded: DecodedAudio, client_id: str = ""
) -> Message:
    """Store a customer's voice message (an upload already decoded and checked) and queue its
    transcription after commit."""
    if conversation.status in (ConversationStatus.RESOLVED, ConversationStatus.PENDING):
        conversation.status = ConversationStatus.OPEN
    # Imported here: the encoders pull in scipy and pyloudnorm, which a web process that never
    # receives a voice message should not carry (#14: web RSS after the text bench).
    from tts.engine import audio

    mp3 = audio.encode(decoded.samples, sample_rate=TARGET_RATE, fmt="mp3")
    holder = Message(kind=MessageKind.VOICE)
    # Written before the row; a rollback after this leaves an orphan file, never a row
    # pointing at nothing (tts_prune_clips-style cleanup can sweep voice/ later).
    holder.voice_file.save(f"{uuid.uuid4().hex}.mp3", ContentFile(mp3), save=False)
    message = _message_store(
        conversation=conversation,
        sender_kind=SenderKind.CUSTOMER,
        author=author,
        text="",
        client_id=client_id,
        kind=MessageKind.VOICE,
        voice_file=holder.voice_file.name,
        voice_format=decoded.format,
        voice_duration_ms=decoded.duration_ms,
        transcript_status=AudioStatus.PENDING,
    )
    message_transcribe_queue(message=message)
    return message


@transaction.atomic
def customer_voice_post(
    *, conversation: Conversation, author: User, decoded: DecodedAudio, client_id: str = ""
) -> CustomerPostResult:
    """`voice_message_create` at most once per `client_id` (the conversation row is locked,
    as for typed messages). The bot never answers at once: the transcript does, later."""
    client_id = _clean_client_id(client_id)
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer__customer_profile", "assigned_agent")
        .get(pk=conversation.pk)
    )
    if client_id:
        existing = message_with_client_id(conversation=conversation, client_id=client_id)
        if existing is not None:
            return CustomerPostResult(existing, None, created=False)
    message = voice_message_create(
        conversation=conversation, author=author, decoded=decoded, client_id=client_id
    )
    return CustomerPostResult(message, None, created=True)


def message_transcribe_queue(*, message: Message) -> None:
    from ..tasks import message_transcribe_task

    message_id = message.pk
    transaction.on_commit(lambda: task_enqueue(message_transcribe_task, message_id))


def _transcribed_event(message: Message) -> None:
    conversation_event_publish(
        conversation_id=message.conversation_id,
        event={"type": "message.transcribed", "message": message_payload(message)},
    )


def message_transcribe(*, message_id: int) -> Message:
    """Transcribe a voice message and answer it like typed text. Idempotent and monotonic: a
    transcript that is ready or failed is never redone. Raises TranscriptionFailed when the
    recogniser cannot run (the task retries, then marks it failed)."""
    from tts.adapters import asr_recognizer
    from tts.asr.recognizer import RecognizerUnavailable

    message = Message.objects.get(pk=message_id)
    if message.transcript_status != AudioStatus.PENDING:
        return message
    started = time.perf_counter()
    try:
        with message.voice_file.open("rb") as handle:
            data = handle.read()
        # Our own MP3, checked at upload; the limits only guard against a swapped file.
        decoded = decode_audio(data, declared="mp3", limits=AudioLimits(max_bytes=16 << 20))
    except (OSError, AudioRejected) as exc:
        return message_transcript_mark_failed(
            message_id=message_id, reason=f"stored audio unreadable: {type(exc).__name__}"
        )
    try:
        transcript = asr_recognizer().transcribe(decoded.samples, prompt=asr_prompt_current())
    except RecognizerUnavailable as exc:
        raise TranscriptionFailed(str(exc)) from exc
    except Exception as exc:  # a crash inside CTranslate2/ONNX: retried, then failed
        raise TranscriptionFailed(f"recogniser error: {type(exc).__name__}") from exc

    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update(of=("self",))
            .select_related("customer__customer_profile", "assigned_agent")
            .get(pk=message.conversation_id)
        )
        message = Message.objects.select_for_update().get(pk=message_id)
        if message.transcript_status != AudioStatus.PENDING:
            return message  # a concurrent delivery finished first
        text = transcript.text.strip()
        intent = intent_classify(text=text) if text else None
        message.text = text
        message.intent = intent
        message.transcript_status = AudioStatus.READY
        message.transcript_error = ""
        message.transcript_updated_at = timezone.now()
        moderation = tts_services.text_moderate(text=text)
        moderation_apply(message=message, conversation=conversation, result=moderation)
        message.save(
            update_fields=[
                "text",
                "intent",
                "transcript_status",
                "transcript_error",
                "transcript_updated_at",
                "moderation_flagged",
                "masked_text",
                "moderation_hits",
            ]
        )
        if moderation.flagged:
            conversation.save(update_fields=["moderation_flagged", "updated_at"])
        tts_services.recognition_record(
            event="transcribed",
            user=message.author,
            message_id=message.pk,
            conversation_id=conversation.pk,
            audio_format=message.voice_format,
            duration_ms=message.voice_duration_ms or 0,
            latency_ms=int((time.perf_counter() - started) * 1000),
            transcript_length=len(text),
            flagged=moderation.flagged,
        )
        _transcribed_event(message)
        if text:  # silence or nothing recognised: the message stays, nobody answers it
            customer_text_answer(
                conversation=conversation, message=message, text=text, intent=intent
            )
    return message


@transaction.atomic
def message_transcript_mark_failed(*, message_id: int, reason: str) -> Message:
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.transcript_status != AudioStatus.PENDING:
        return message  # monotonic: ready stays ready
    message.transcript_status = AudioStatus.FAILED
    message.transcript_error = (reason or "transcription failed")[:TRANSCRIPT_ERROR_MAX]
    message.transcript_updated_at = timezone.now()
    message.save(update_fields=["transcript_status", "transcript_error", "transcript_updated_at"])
    tts_services.recognition_record(
        event="failed",
        user=message.author,
        message_id=message.pk,
        conversation_id=message.conversation_id,
        audio_format=message.voice_format,
        duration_ms=message.voice_duration_ms or 0,
        error=message.transcript_error,
    )
    _transcribed_event(message)
    return message
