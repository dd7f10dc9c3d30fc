"""Reads behind the HTTP chat API: customer and agent lists, the API's message shape."""

from typing import Any

from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone

from accounts.models import User

from . import selectors
from .models import AudioStatus, Conversation, Message


def conversations_for_customer(*, customer: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(customer=customer).select_related(
        "assigned_agent", "last_message"
    )


def conversation_get_for_customer(*, user: User, conversation_id: int) -> Conversation:
    """Like `selectors.conversation_get_for_user`, but someone else's conversation is a 404:
    a customer must not learn which conversation ids exist."""
    try:
        return selectors.conversation_get_for_user(user=user, conversation_id=conversation_id)
    except PermissionDenied as exc:
        raise Http404 from exc


def conversation_messages_for_api(
    *, conversation: Conversation, after_id: int = 0
) -> QuerySet[Message]:
    """`selectors.conversation_messages` plus the authors' customer profiles: the payload's
    `author` is `display_name`, which reads the profile, one query per message otherwise."""
    return selectors.conversation_messages(
        conversation=conversation, after_id=after_id
    ).select_related("author__customer_profile")


def conversations_for_agents(
    *,
    user: User,
    status: str | None = None,
    assigned: str | None = None,
    priority: int | None = None,
) -> QuerySet[Conversation]:
    """Every conversation, filtered; open and pending ones when no status is given.

    `assigned`: "me" (assigned to `user`), "none" (unassigned), else no filter.
    """
    conversations = Conversation.objects.select_related(
        "customer__customer_profile", "assigned_agent", "last_message"
    )
    if status:
        conversations = conversations.filter(status=status)
    else:
        conversations = conversations.exclude(status="resolved")
    if assigned == "me":
        conversations = conversations.filter(assigned_agent=user)
    elif assigned == "none":
        conversations = conversations.filter(assigned_agent__isnull=True)
    if priority is not None:
        conversations = conversations.filter(priority=priority)
    return conversations


def message_audio(message: Message) -> dict[str, Any]:
    clip = message.audio_clip if message.audio_status == AudioStatus.READY else None
    return {
        "status": message.audio_status,
        "url": selectors.message_audio_url(message) or None,
        "duration_ms": clip.duration_ms if clip is not None else None,
        "format": clip.format if clip is not None else None,
        "emotion": message.emotion.name if message.emotion_id else None,
    }


def message_api_payload(message: Message) -> dict[str, Any]:
    """The console/WebSocket shape (`selectors.message_payload`) plus the `audio` object and
    the client's idempotency key."""
    return {
        **selectors.message_payload(message),
        "client_id": message.client_id or None,
        "audio": message_audio(message),
    }


def conversation_api_payload(conversation: Conversation) -> dict[str, Any]:
    payload = selectors.conversation_payload(conversation)
    payload["created_at"] = timezone.localtime(conversation.created_at).isoformat()
    payload["customer"] = conversation.customer.display_name
    return payload
