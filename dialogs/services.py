"""Writes: conversations, customer messages, replies (agent and bot), voicing, precompute."""

import logging
from collections.abc import Callable

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from tts import services as tts_services
from tts.models import EmotionPreset, PronunciationEntry, SynthesisSource

from . import selectors
from .events import conversation_event_publish
from .models import (
    VARIABLE_RE,
    AudioStatus,
    CannedPhrase,
    Conversation,
    ConversationPriority,
    ConversationStatus,
    EmotionRule,
    Intent,
    Message,
    SenderKind,
)

logger = logging.getLogger(__name__)

BOT_NAME = "智能客服"
AUDIO_ERROR_MAX = 300


# --- variables --------------------------------------------------------------------------------


def _variables_for(*, customer: User, agent: User | None) -> dict[str, str]:
    profile = getattr(customer, "customer_profile", None)
    nickname = (profile.nickname if profile is not None else "") or customer.display_name
    agent_name = agent.display_name if agent is not None else BOT_NAME
    return {
        "customer.nickname": nickname,
        "customer.name": nickname,
        "agent.name": agent_name,
    }


def phrase_text_render(*, text: str, customer: User, agent: User | None) -> str:
    """Fill `{{customer.nickname}}`-style variables; an unknown variable is a validation error."""
    values = _variables_for(customer=customer, agent=agent)
    unknown = sorted({name for name in VARIABLE_RE.findall(text) if name not in values})
    if unknown:
        raise ValidationError(
            {
                "text": _("Unknown variable(s): %(unknown)s. Known: %(known)s.")
                % {
                    "unknown": ", ".join(f"{{{{{name}}}}}" for name in unknown),
                    "known": ", ".join(f"{{{{{name}}}}}" for name in sorted(values)),
                }
            },
            code="unknown_variable",
        )
    return VARIABLE_RE.sub(lambda match: values[match.group(1)], text)


# --- conversations ----------------------------------------------------------------------------


def _conversation_updated(conversation: Conversation) -> None:
    conversation_event_publish(
        conversation_id=conversation.pk,
        event={
            "type": "conversation.updated",
            "conversation": selectors.conversation_payload(conversation),
        },
    )


@transaction.atomic
def conversation_create(
    *, customer: User, priority: int = ConversationPriority.NORMAL
) -> Conversation:
    conversation = Conversation(customer=customer, priority=priority)
    conversation.full_clean()
    conversation.save()
    return conversation


@transaction.atomic
def conversation_update(
    *,
    conversation: Conversation,
    status: str | None = None,
    priority: int | None = None,
    assigned_agent: User | None = None,
) -> Conversation:
    if status is not None:
        conversation.status = status
    if priority is not None:
        conversation.priority = priority
    if assigned_agent is not None:
        conversation.assigned_agent = assigned_agent
    conversation.full_clean()
    conversation.save()
    _conversation_updated(conversation)
    return conversation


def conversation_mark_read(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(agent_read_at=timezone.now())


def _message_store(
    *,
    conversation: Conversation,
    sender_kind: str,
    text: str,
    author: User | None = None,
    intent: Intent | None = None,
    emotion: EmotionPreset | None = None,
    emotion_overridden: bool = False,
    canned_phrase: CannedPhrase | None = None,
    voiced: bool = False,
) -> Message:
    message = Message(
        conversation=conversation,
        sender_kind=sender_kind,
        author=author,
        text=text,
        intent=intent,
        emotion=emotion,
        emotion_overridden=emotion_overridden,
        canned_phrase=canned_phrase,
        audio_status=AudioStatus.PENDING if voiced else AudioStatus.NONE,
    )
    message.full_clean()
    message.save()
    conversation.last_message = message
    conversation.last_message_at = message.created_at
    conversation.save(
        update_fields=["last_message", "last_message_at", "status", "assigned_agent", "updated_at"]
    )
    conversation_event_publish(
        conversation_id=conversation.pk,
        event={"type": "message.created", "message": selectors.message_payload(message)},
    )
    _conversation_updated(conversation)
    if voiced:
        message_voice_queue(message=message)
    return message


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("The message is empty.")}, code="empty")
    return text


@transaction.atomic
def customer_message_create(*, conversation: Conversation, author: User, text: str) -> Message:
    """Store the customer's message, classify it, and let a matching canned phrase answer it."""
    text = _clean_text(text)
    if conversation.status == ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.OPEN  # the customer came back
    elif conversation.status == ConversationStatus.PENDING:
        conversation.status = ConversationStatus.OPEN  # the ball is in our court again
    intent = selectors.intent_classify(text=text)
    message = _message_store(
        conversation=conversation,
        sender_kind=SenderKind.CUSTOMER,
        author=author,
        text=text,
        intent=intent,
    )
    phrase = selectors.phrase_match_for_text(text=text)
    if phrase is not None:
        bot_reply_create(conversation=conversation, phrase=phrase, intent=intent)
    return message


@transaction.atomic
def bot_reply_create(
    *, conversation: Conversation, phrase: CannedPhrase, intent: Intent | None
) -> Message:
    text = phrase_text_render(
        text=phrase.text, customer=conversation.customer, agent=conversation.assigned_agent
    )
    return _message_store(
        conversation=conversation,
        sender_kind=SenderKind.BOT,
        text=text,
        emotion=selectors.emotion_for_intent(intent=intent),
        canned_phrase=phrase,
        voiced=True,
    )


@transaction.atomic
def agent_reply_create(
    *,
    conversation: Conversation,
    agent: User,
    text: str = "",
    phrase_code: str = "",
    emotion: EmotionPreset | None = None,
) -> Message:
    """An agent's reply: free text or a canned phrase (`phrase_code`), voiced after commit.

    The tone follows the policy for the latest customer message unless `emotion` overrides it.
    """
    phrase = None
    if phrase_code:
        phrase = selectors.phrase_get_by_code(short_code=phrase_code)
        if phrase is None:
            raise ValidationError(
                {"phrase_code": _("No active canned phrase /%(code)s.") % {"code": phrase_code}},
                code="unknown_phrase",
            )
        text = phrase.text
    text = phrase_text_render(text=_clean_text(text), customer=conversation.customer, agent=agent)
    overridden = emotion is not None
    if emotion is None:
        emotion = selectors.emotion_suggestion(conversation=conversation)
    if conversation.assigned_agent_id is None:
        conversation.assigned_agent = agent
    if conversation.status == ConversationStatus.OPEN:
        conversation.status = ConversationStatus.PENDING  # waiting for the customer now
    return _message_store(
        conversation=conversation,
        sender_kind=SenderKind.AGENT,
        author=agent,
        text=text,
        emotion=emotion,
        emotion_overridden=overridden,
        canned_phrase=phrase,
        voiced=True,
    )


# --- voicing ----------------------------------------------------------------------------------


def task_enqueue(task, *args) -> bool:
    """Publish a Celery task; a broker outage is logged, never raised (returns False).

    Called from `on_commit` hooks: the row is already committed, so an exception here would
    only turn a stored message into a 500. Whatever was not queued stays `pending` and the
    recovery sweep (`dialogs.recovery.messages_pending_requeue`) queues it again later.
    """
    try:
        task.delay(*args)
    except Exception as exc:
        logger.error("queueing %s%s failed (%s): left for the sweep", task.name, args, exc)
        return False
    return True


def message_voice_queue(*, message: Message) -> None:
    from .tasks import message_voice_task

    message_id = message.pk
    transaction.on_commit(lambda: task_enqueue(message_voice_task, message_id))


def _audio_event(message: Message) -> None:
    conversation_event_publish(
        conversation_id=message.conversation_id,
        event={"type": "message.audio_ready", "message": selectors.message_payload(message)},
    )


def message_voice(*, message_id: int) -> Message:
    """Attach a clip to the message (cache hit or fresh synthesis). Idempotent.

    Raises SpeechSynthesisFailed (engine trouble) so the task can retry; a rejected text is
    final and marks the audio failed at once.
    """
    message = Message.objects.select_related("emotion", "author").get(pk=message_id)
    if message.audio_status == AudioStatus.READY and message.audio_clip_id:
        return message  # acks_late redelivery: already done
    try:
        result = tts_services.speech_clip_get_or_create(
            text=message.text,
            preset=message.emotion,
            source=SynthesisSource.REPLY,
            user=message.author,
        )
    except tts_services.SpeechTextRejected as exc:
        return message_audio_mark_failed(message_id=message_id, reason=f"{exc.code}: {exc.message}")
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.audio_clip = result.clip
        message.audio_status = AudioStatus.READY
        message.audio_error = ""
        message.audio_updated_at = timezone.now()
        message.save(
            update_fields=["audio_clip", "audio_status", "audio_error", "audio_updated_at"]
        )
        _audio_event(message)
    return message


@transaction.atomic
def message_audio_mark_failed(*, message_id: int, reason: str) -> Message:
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.audio_status == AudioStatus.READY:
        return message  # another delivery succeeded meanwhile: keep the audio
    message.audio_status = AudioStatus.FAILED
    message.audio_error = (reason or _("synthesis failed"))[:AUDIO_ERROR_MAX]
    message.audio_updated_at = timezone.now()
    message.save(update_fields=["audio_status", "audio_error", "audio_updated_at"])
    _audio_event(message)  # the client stops waiting and shows text only
    return message


# --- phrases: precompute and staleness --------------------------------------------------------


def phrase_precompute_items(*, phrase: CannedPhrase) -> list[tuple[str, EmotionPreset]]:
    # Phrases with variables are rendered at send time (then cached by their final text).
    if not phrase.is_active or phrase.has_variables:
        return []
    return [(phrase.text, preset) for preset in phrase.emotions.order_by("name")]


def phrase_precompute(
    *, phrase_id: int, progress: Callable[[int, int], None] | None = None
) -> list:
    phrase = CannedPhrase.objects.filter(pk=phrase_id).first()
    if phrase is None:
        return []
    items = phrase_precompute_items(phrase=phrase)
    if not items:
        return []
    return tts_services.speech_clips_precompute(items=items, progress=progress)


def phrases_precompute_all(
    *, batch_size: int = 16, progress: Callable[[int, int], None] | None = None
) -> int:
    """Render every active phrase in every emotion it lists; returns how many clips exist now."""
    items: list[tuple[str, EmotionPreset]] = []
    for phrase in CannedPhrase.objects.filter(is_active=True).prefetch_related("emotions"):
        items.extend(phrase_precompute_items(phrase=phrase))
    total = len(items)
    done = 0
    for start in range(0, total, batch_size):
        batch = items[start : start + batch_size]
        tts_services.speech_clips_precompute(items=batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return total


def phrase_precompute_queue(*, phrase_ids: list[int]) -> None:
    from .tasks import phrase_precompute_task

    for phrase_id in phrase_ids:
        transaction.on_commit(lambda pk=phrase_id: task_enqueue(phrase_precompute_task, pk))


def phrases_for_preset(*, preset: EmotionPreset) -> list[int]:
    return list(
        CannedPhrase.objects.filter(is_active=True, emotions=preset).values_list("pk", flat=True)
    )


def phrases_for_lexicon_words(*, words: list[str]) -> list[int]:
    query = Q()
    for word in filter(None, words):
        query |= Q(text__contains=word)
    if not query:
        return []
    return list(CannedPhrase.objects.filter(query, is_active=True).values_list("pk", flat=True))


def preset_changed(*, preset: EmotionPreset) -> list[int]:
    """A preset's controls changed: its clips are stale (new cache key), so re-render."""
    phrase_ids = phrases_for_preset(preset=preset)
    phrase_precompute_queue(phrase_ids=phrase_ids)
    return phrase_ids


def lexicon_entry_changed(*, entry: PronunciationEntry, old_word: str = "") -> list[int]:
    phrase_ids = phrases_for_lexicon_words(words=[entry.word, old_word])
    phrase_precompute_queue(phrase_ids=phrase_ids)
    return phrase_ids


# --- audit retention --------------------------------------------------------------------------


@transaction.atomic
def audit_prune(*, before) -> dict[str, int]:
    """Delete audit rows older than `before`: synthesis records and every change history."""
    from tts.models import SynthesisRecord, Voice

    deleted = {
        "synthesis records": SynthesisRecord.objects.filter(created_at__lt=before).delete()[0]
    }
    for model in (CannedPhrase, Intent, EmotionRule, EmotionPreset, PronunciationEntry, Voice):
        history = model.history.model
        deleted[str(history._meta.verbose_name_plural)] = history.objects.filter(
            history_date__lt=before
        ).delete()[0]
    return deleted
