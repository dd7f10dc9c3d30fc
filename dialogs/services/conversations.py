"""Conversation writes: start or resume, read marks. Assignment, transfer and resolution are
workflow moves (audited): `services.workflow`."""

from django.db import transaction
from django.utils import timezone

from accounts.models import User

from ..models import Conversation, ConversationPriority
from ..selectors.conversations import conversation_active_for_customer
from .workflow import conversation_changed


def conversation_updated_publish(*, conversation: Conversation) -> None:
    """The conversation changed: its socket and the consoles' queue hear about it."""
    conversation_changed(conversation)


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


def conversation_mark_read(*, conversation: Conversation) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(agent_read_at=timezone.now())
