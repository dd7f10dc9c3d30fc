"""Conversation reads: permission-checked fetches, the lists of each audience."""

from django.core.exceptions import PermissionDenied
from django.db.models import Count, F, Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from accounts.models import User

from ..models import Conversation, ConversationStatus, SenderKind
from ..payloads import CONVERSATION_PAYLOAD_RELATIONS

ACTIVE_STATUSES = (ConversationStatus.OPEN, ConversationStatus.WAITING, ConversationStatus.PENDING)


def user_is_staff(user) -> bool:
    return bool(
        user is not None
        and user.is_authenticated
        and user.is_active
        and (user.is_superuser or getattr(user, "is_agent_or_above", False))
    )


def conversation_get_for_user(*, user: User, conversation_id: int) -> Conversation:
    """Permission-checked fetch: staff see every conversation, customers only their own."""
    conversation = get_object_or_404(
        Conversation.objects.select_related(*CONVERSATION_PAYLOAD_RELATIONS), pk=conversation_id
    )
    if not (user_is_staff(user) or conversation.customer_id == user.pk):
        raise PermissionDenied
    return conversation


def conversation_get_for_customer(*, user: User, conversation_id: int) -> Conversation:
    """Like `conversation_get_for_user`, but someone else's conversation is a 404:
    a customer must not learn which conversation ids exist."""
    try:
        return conversation_get_for_user(user=user, conversation_id=conversation_id)
    except PermissionDenied as exc:
        raise Http404 from exc


def conversation_check_for_customer(*, user: User, conversation_id: int) -> None:
    """The permission check of `conversation_get_for_customer` (404 when missing or not the
    caller's; staff see every conversation) without loading the conversation: one column."""
    customer_id = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("customer_id", flat=True)
        .first()
    )
    if customer_id is None or not (user_is_staff(user) or customer_id == user.pk):
        raise Http404


def conversation_active_for_customer(*, customer: User) -> Conversation | None:
    """The customer's newest open/pending conversation."""
    return (
        Conversation.objects.filter(customer=customer, status__in=ACTIVE_STATUSES)
        .order_by("-pk")
        .first()
    )


def conversations_for_console() -> QuerySet[Conversation]:
    unread = Count(
        "messages",
        filter=Q(messages__sender_kind=SenderKind.CUSTOMER)
        & (Q(agent_read_at__isnull=True) | Q(messages__created_at__gt=F("agent_read_at"))),
    )
    return (
        Conversation.objects.filter(status__in=ACTIVE_STATUSES)
        .select_related(*CONVERSATION_PAYLOAD_RELATIONS, "last_message")
        .annotate(unread_count=unread)
        .order_by("-priority", F("last_message_at").desc(nulls_last=True), "-pk")
    )


def conversations_for_customer(*, customer: User) -> QuerySet[Conversation]:
    return Conversation.objects.filter(customer=customer).select_related(
        *CONVERSATION_PAYLOAD_RELATIONS
    )


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
    conversations = Conversation.objects.select_related(*CONVERSATION_PAYLOAD_RELATIONS)
    if status:
        conversations = conversations.filter(status=status)
    else:
        conversations = conversations.exclude(status=ConversationStatus.RESOLVED)
    if assigned == "me":
        conversations = conversations.filter(assigned_agent=user)
    elif assigned == "none":
        conversations = conversations.filter(assigned_agent__isnull=True)
    if priority is not None:
        conversations = conversations.filter(priority=priority)
    return conversations
