"""Reads: intent classification, the emotion policy, phrase lookup, console lists, payloads."""

import re
from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.shortcuts import get_object_or_404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from tts.models import EmotionPreset

from .models import (
    AudioStatus,
    CannedPhrase,
    Conversation,
    ConversationStatus,
    EmotionRule,
    Intent,
    Message,
    SenderKind,
)


def user_is_staff(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or getattr(user, "is_agent_or_above", False))
    )


def intent_matches(*, intent: Intent, text: str) -> bool:
    folded = text.casefold()
    if any(keyword.casefold() in folded for keyword in intent.keyword_list):
        return True
    for pattern in intent.pattern_list:
        try:
            if re.search(pattern, text, flags=re.IGNORECASE):
                return True
        except re.error:
            # Validated on save; a bad row slipping in through raw SQL must not break chat.
            continue
    return False


def intent_classify(*, text: str) -> Intent | None:
    """The highest-priority active intent whose keywords or patterns match, else None."""
    for intent in Intent.objects.filter(is_active=True).order_by("-priority", "name"):
        if intent_matches(intent=intent, text=text):
            return intent
    return None


def emotion_for_intent(*, intent: Intent | None) -> EmotionPreset | None:
    """The policy: the best active rule for this intent, else the best active fallback rule."""
    rules = EmotionRule.objects.filter(is_active=True).select_related("preset")
    if intent is not None:
        rule = rules.filter(intent=intent).order_by("-priority", "pk").first()
        if rule is not None:
            return rule.preset
    rule = rules.filter(intent__isnull=True).order_by("-priority", "pk").first()
    return rule.preset if rule is not None else None


def conversation_latest_customer_message(*, conversation: Conversation) -> Message | None:
    return (
        conversation.messages.filter(sender_kind=SenderKind.CUSTOMER)
        .select_related("intent")
        .order_by("-created_at", "-pk")
        .first()
    )


def emotion_suggestion(*, conversation: Conversation) -> EmotionPreset | None:
    latest = conversation_latest_customer_message(conversation=conversation)
    return emotion_for_intent(intent=latest.intent if latest is not None else None)


def phrase_get_by_code(*, short_code: str) -> CannedPhrase | None:
    return CannedPhrase.objects.filter(short_code=short_code.lstrip("/"), is_active=True).first()


def phrase_match_for_text(*, text: str) -> CannedPhrase | None:
    """The active phrase whose longest matching trigger keyword is longest (most specific)."""
    folded = text.casefold()
    best: tuple[int, str] | None = None
    best_phrase = None
    for phrase in CannedPhrase.objects.filter(is_active=True).exclude(trigger_keywords=""):
        hits = [len(k) for k in phrase.trigger_list if k.casefold() in folded]
        if not hits:
            continue
        # Longer trigger first; the short code breaks ties so the choice is deterministic.
        score = (-max(hits), phrase.short_code)
        if best is None or score < best:
            best, best_phrase = score, phrase
    return best_phrase


def phrase_search(*, query: str, limit: int = 10) -> QuerySet[CannedPhrase]:
    query = query.strip().lstrip("/")
    phrases = CannedPhrase.objects.filter(is_active=True)
    if query:
        phrases = phrases.filter(
            Q(short_code__istartswith=query)
            | Q(title__icontains=query)
            | Q(text__icontains=query)
            | Q(category__icontains=query)
        )
    return phrases.order_by("short_code")[:limit]


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    """Permission-checked fetch: staff see every conversation, customers only their own."""
    conversation = get_object_or_404(
        Conversation.objects.select_related("customer", "assigned_agent"), pk=conversation_id
    )
    if not (user_is_staff(user) or conversation.customer_id == user.pk):
        raise PermissionDenied
    return conversation


def conversations_for_console() -> QuerySet[Conversation]:
    unread = Count(
        "messages",
        filter=Q(messages__sender_kind=SenderKind.CUSTOMER)
        & (Q(agent_read_at__isnull=True) | Q(messages__created_at__gt=F("agent_read_at"))),
    )
    return (
        Conversation.objects.filter(
            status__in=[ConversationStatus.OPEN, ConversationStatus.PENDING]
        )
        .select_related("customer__customer_profile", "assigned_agent", "last_message")
        .annotate(unread_count=unread)
        .order_by("-priority", F("last_message_at").desc(nulls_last=True), "-pk")
    )


def conversation_messages(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return (
        conversation.messages.filter(pk__gt=after_id)
        .select_related("author", "intent", "emotion", "audio_clip", "canned_phrase")
        .order_by("created_at", "pk")
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
        "text": message.text,
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


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "status": conversation.status,
        "priority": conversation.priority,
        "assigned_agent": conversation.assigned_agent.display_name
        if conversation.assigned_agent_id
        else None,
        "last_message_id": conversation.last_message_id,
        "last_message_at": timezone.localtime(conversation.last_message_at).isoformat()
        if conversation.last_message_at
        else None,
    }


def asr_prompt_current() -> str:
    """The speech-recognition domain prompt: active intents' keywords and phrase texts.

    Phrase texts with template variables are skipped ({{customer.nickname}} is no speech).
    """
    from tts.asr.prompt import prompt_build

    keywords = [
        keyword
        for intent in Intent.objects.filter(is_active=True).order_by("-priority", "name")
        for keyword in intent.keyword_list
    ]
    phrases = [
        text
        for text in CannedPhrase.objects.filter(is_active=True)
        .order_by("category", "short_code")
        .values_list("text", flat=True)
        if "{{" not in text
    ]
    return prompt_build(keywords=keywords, phrases=phrases)
