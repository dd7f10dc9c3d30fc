"""Conversation writes: start or resume, status/priority/assignment, resolve, read marks."""

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User

from ..events import conversation_event_publish
from ..models import Conversation, ConversationPriority, ConversationStatus
from ..payloads import conversation_payload
from ..selectors.conversations import conversation_active_for_customer


def conversation_updated_publish(*, conversation: Conversation) -> None:
    conversation_event_publish(
        conversation_id=conversation.pk,
        event={"type": "conversation.updated", "conversation": conversation_payload(conversation)},
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
def conversation_resume_or_create(*, customer: User) -> tuple[Conversation, bool]:
    """The customer's newest open/pending conversation, else a new one; (conversation, created).

    The customer row is locked so two taps on "contact us" cannot open two conversations.
    """
    User.objects.select_for_update().filter(pk=customer.pk).first()
    conversation = conversation_active_for_customer(customer=customer)
    if conversation is not None:
        return conversation, False
    return conversation_create(customer=customer), True


def _check_assignable(agent: User) -> None:
    if not agent.is_active or not getattr(agent, "is_agent_or_above", False):
        raise ValidationError(
            {"agent_id": _("Only an active agent can be assigned.")}, code="not_agent"
        )


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
        _check_assignable(assigned_agent)
        conversation.assigned_agent = assigned_agent
    conversation.full_clean()
    conversation.save()
    conversation_updated_publish(conversation=conversation)
    return conversation


def conversation_assign(*, conversation: Conversation, agent: User) -> Conversation:
    return conversation_update(conversation=conversation, assigned_agent=agent)


def conversation_resolve(*, conversation: Conversation) -> Conversation:
    return conversation_update(conversation=conversation, status=ConversationStatus.RESOLVED)


def conversation_mark_read(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(agent_read_at=timezone.now())
