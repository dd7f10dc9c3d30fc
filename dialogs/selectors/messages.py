"""Message reads: a conversation's messages, the bot reply that answered a message."""

from django.db.models import BigIntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from ..models import Conversation, Message, SenderKind
from ..payloads import MESSAGE_PAYLOAD_RELATIONS

_NO_BOUND = 2**63 - 1  # larger than any message id (bigint)


def conversation_messages(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return (
        conversation.messages.filter(pk__gt=after_id)
        .select_related(*MESSAGE_PAYLOAD_RELATIONS)
        .order_by("created_at", "pk")
    )


def message_with_client_id(*, conversation: Conversation, client_id: str) -> Message | None:
    # Almost every post is new: look for the bare id first (the partial unique index answers
    # it), and join the payload's relations only on a retry.
    pk = conversation.messages.filter(client_id=client_id).values_list("pk", flat=True).first()
    if pk is None:
        return None
    return Message.objects.select_related(*MESSAGE_PAYLOAD_RELATIONS).get(pk=pk)


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
        .select_related(*MESSAGE_PAYLOAD_RELATIONS)
        .order_by("pk")
        .first()
    )
