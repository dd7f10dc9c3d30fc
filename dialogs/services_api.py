"""Writes behind the HTTP chat API (mini-program and agent integrations).

Thin orchestration over `dialogs.services`: resuming a conversation, idempotent customer
messages (client_id), assignment and resolution. The reply flow itself stays in services.py.
"""

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import BigIntegerField, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils.translation import gettext as _

from accounts.models import User

from . import services
from .models import Conversation, ConversationStatus, Message, SenderKind

ACTIVE_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)
CLIENT_ID_MAX = 64
_NO_BOUND = 2**63 - 1  # larger than any message id (bigint)


@dataclass(frozen=True)
class CustomerPostResult:
    message: Message
    bot_reply: Message | None
    created: bool  # False: a retry with a known client_id, nothing was stored


@transaction.atomic
def conversation_resume_or_create(*, customer: User) -> tuple[Conversation, bool]:
    """The customer's newest open/pending conversation, else a new one; (conversation, created).

    The customer row is locked so two taps on "contact us" cannot open two conversations.
    """
    User.objects.select_for_update().filter(pk=customer.pk).first()
    conversation = (
        Conversation.objects.filter(customer=customer, status__in=ACTIVE_STATUSES)
        .order_by("-pk")
        .first()
    )
    if conversation is not None:
        return conversation, False
    return services.conversation_create(customer=customer), True


def _bot_reply_after(message: Message) -> Message | None:
    # A bot reply is stored right after the customer message it answers, in the same
    # transaction; the next customer message bounds the search. One query (the bound is a
    # subquery), with the relations the API payload reads.
    later = Message.objects.filter(conversation_id=message.conversation_id, pk__gt=message.pk)
    next_customer = later.filter(sender_kind=SenderKind.CUSTOMER).order_by("pk").values("pk")[:1]
    return (
        later.filter(
            sender_kind=SenderKind.BOT,
            pk__lt=Coalesce(
                Subquery(next_customer), Value(_NO_BOUND, output_field=BigIntegerField())
            ),
        )
        .select_related("author__customer_profile", "intent", "emotion", "audio_clip")
        .order_by("pk")
        .first()
    )


def _validate_text(text: str) -> None:
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    if len((text or "").strip()) > limit:
        raise ValidationError(
            {"text": _("At most %(limit)d characters.") % {"limit": limit}}, code="max_length"
        )


@transaction.atomic
def customer_message_post(
    *, conversation: Conversation, author: User, text: str, client_id: str = ""
) -> CustomerPostResult:
    """Store a customer's message (and the bot's auto-reply, if one fires), at most once per
    `client_id`: a retry after a lost response returns the stored message instead.

    The conversation row is locked for the duration, which serialises one customer's posts:
    the client_id check cannot race and the bot reply found afterwards is this message's.
    """
    _validate_text(text)
    client_id = (client_id or "").strip()
    if len(client_id) > CLIENT_ID_MAX:
        raise ValidationError(
            {"client_id": _("At most %(limit)d characters.") % {"limit": CLIENT_ID_MAX}},
            code="max_length",
        )
    # Locks the conversation row only; the joined customer and agent are what the bot reply's
    # phrase template reads (two queries fewer).
    conversation = (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer__customer_profile", "assigned_agent")
        .get(pk=conversation.pk)
    )
    if client_id:
        existing = (
            conversation.messages.filter(client_id=client_id)
            .select_related("author__customer_profile", "intent", "emotion", "audio_clip")
            .first()
        )
        if existing is not None:
            return CustomerPostResult(existing, _bot_reply_after(existing), created=False)
    message = services.customer_message_create(conversation=conversation, author=author, text=text)
    if client_id:
        Message.objects.filter(pk=message.pk).update(client_id=client_id)
        message.client_id = client_id
    return CustomerPostResult(message, _bot_reply_after(message), created=True)


def conversation_assign(*, conversation: Conversation, agent: User) -> Conversation:
    if not agent.is_active or not getattr(agent, "is_agent_or_above", False):
        raise ValidationError(
            {"agent_id": _("Only an active agent can be assigned.")}, code="not_agent"
        )
    return services.conversation_update(conversation=conversation, assigned_agent=agent)


def conversation_resolve(*, conversation: Conversation) -> Conversation:
    return services.conversation_update(
        conversation=conversation, status=ConversationStatus.RESOLVED
    )
