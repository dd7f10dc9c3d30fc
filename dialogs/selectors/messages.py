"""Message reads: a conversation's messages, the bot reply that answered a message."""

import functools

from django.db import connection
from django.db.models import BigIntegerField, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from accounts.models import User
from common.precompiled import PrecompiledQuery

from ..models import Conversation, Message, SenderKind
from ..payloads import MESSAGE_PAYLOAD_RELATIONS

_NO_BOUND = 2**63 - 1  # larger than any message id (bigint)


def conversation_messages(*, conversation: Conversation, after_id: int = 0) -> QuerySet[Message]:
    return (
        conversation.messages.filter(pk__gt=after_id)
        .select_related(*MESSAGE_PAYLOAD_RELATIONS)
        .order_by("created_at", "pk")
    )


# --- the message list without model instances -------------------------------------------------
# A page of 50 messages read as model instances builds ~250 objects (message, author, profile,
# intent, emotion, clip): most of the list's CPU. The list reads plain `.values()` rows and wraps
# each in a `MessageRow`, which offers exactly the attributes `dialogs.payloads.message_payload`
# reads, so the payload is still built by that one function (the REST list and the console's
# instance-based list are compared in dialogs/tests/test_payloads.py).

_MESSAGE_COLUMNS = (
    "id",
    "conversation_id",
    "client_id",
    "sender_kind",
    "author_id",
    "text",
    "masked_text",
    "kind",
    "voice_file",
    "voice_duration_ms",
    "voice_format",
    "transcript_status",
    "moderation_flagged",
    "intent_id",
    "intent__name",
    "intent__label",
    "emotion_id",
    "emotion__name",
    "emotion__label",
    "created_at",
    "audio_status",
    "audio_clip_id",
    "audio_clip__cache_key",
    "audio_clip__duration_ms",
    "audio_clip__format",
)
_AUTHOR_COLUMNS = tuple(f"author__{field}" for field in User.DISPLAY_NAME_FIELDS)
MESSAGE_ROW_COLUMNS = ("pk", *_MESSAGE_COLUMNS, *_AUTHOR_COLUMNS)


class _NameLabel:
    __slots__ = ("label", "name")

    def __init__(self, name: str, label: str) -> None:
        self.name, self.label = name, label


class _Author:
    __slots__ = ("display_name",)

    def __init__(self, display_name: str) -> None:
        self.display_name = display_name


class _Clip:
    __slots__ = ("cache_key", "duration_ms", "format", "pk")

    def __init__(self, pk: int, cache_key: str, duration_ms: int | None, format: str) -> None:
        self.pk, self.cache_key, self.duration_ms, self.format = pk, cache_key, duration_ms, format


class _StoredFile:
    """What the payload reads of a FieldFile: its name, and whether there is one."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __bool__(self) -> bool:
        return bool(self.name)


class MessageRow:
    """A message as `message_payload` reads it, from one row of `conversation_message_rows`."""

    __slots__ = (
        "audio_clip",
        "audio_clip_id",
        "audio_status",
        "author",
        "author_id",
        "client_id",
        "conversation_id",
        "created_at",
        "emotion",
        "emotion_id",
        "intent",
        "intent_id",
        "kind",
        "masked_text",
        "moderation_flagged",
        "pk",
        "sender_kind",
        "text",
        "transcript_status",
        "voice_duration_ms",
        "voice_file",
        "voice_format",
    )

    def __init__(self, row: dict) -> None:
        self.pk = row["pk"]
        self.conversation_id = row["conversation_id"]
        self.client_id = row["client_id"]
        self.sender_kind = row["sender_kind"]
        self.text = row["text"]
        self.masked_text = row["masked_text"]
        self.kind = row["kind"]
        self.voice_file = _StoredFile(row["voice_file"] or "")
        self.voice_duration_ms = row["voice_duration_ms"]
        self.voice_format = row["voice_format"]
        self.transcript_status = row["transcript_status"]
        self.moderation_flagged = row["moderation_flagged"]
        self.created_at = row["created_at"]
        self.audio_status = row["audio_status"]
        self.author_id = row["author_id"]
        self.author = (
            _Author(
                User.display_name_from_values(
                    {field: row[f"author__{field}"] for field in User.DISPLAY_NAME_FIELDS}
                )
            )
            if self.author_id
            else None
        )
        self.intent_id = row["intent_id"]
        self.intent = (
            _NameLabel(row["intent__name"], row["intent__label"]) if self.intent_id else None
        )
        self.emotion_id = row["emotion_id"]
        self.emotion = (
            _NameLabel(row["emotion__name"], row["emotion__label"]) if self.emotion_id else None
        )
        self.audio_clip_id = row["audio_clip_id"]
        self.audio_clip = (
            _Clip(
                self.audio_clip_id,
                row["audio_clip__cache_key"],
                row["audio_clip__duration_ms"],
                row["audio_clip__format"],
            )
            if self.audio_clip_id
            else None
        )


@functools.cache
def _message_rows_base() -> QuerySet:
    # Resolving 38 columns across six joins costs more than the query itself returns: done
    # once per process. Never evaluated; every request filters a clone of it.
    return Message.objects.values(*MESSAGE_ROW_COLUMNS)


def _message_rows_queryset(*, conversation_id: int, after_id: int, customer_id: int | None):
    rows = _message_rows_base().filter(conversation_id=conversation_id, pk__gt=after_id)
    if customer_id is not None:
        rows = rows.filter(conversation__customer_id=customer_id)
    return rows


# A page of a chat is read far more often than anything else (every poll, every reconnect).
_PAGE_LIMIT_MAX = 1000


@functools.cache
def _page_query(limit: int, owned: bool) -> PrecompiledQuery:
    def build(conversation_id: int, after_id: int, customer_id: int | None = None) -> QuerySet:
        rows = _message_rows_queryset(
            conversation_id=conversation_id, after_id=after_id, customer_id=customer_id
        )
        return rows.order_by("pk")[:limit]

    kinds = {"conversation_id": int, "after_id": int} | ({"customer_id": int} if owned else {})
    return PrecompiledQuery(Message, build, **kinds)


class MessageRows:
    """A conversation's message rows, oldest first, for DRF's cursor pagination.

    The paginator asks a queryset for exactly this: `order_by("pk")`, on a later page
    `filter(pk__gt=<cursor>)`, then `[0:page_size + 1]`. Those pages run a statement compiled
    once per process and page size (`common.precompiled`): compiling the 38-column, six-join
    SQL was a quarter of the list's CPU. Anything else (a reversed cursor, an offset, another
    ordering or filter) is handed to the equivalent queryset, so the answers are the same
    (dialogs/tests/test_payloads.py compares them)."""

    def __init__(
        self, *, conversation_id: int, after_id: int, customer_id: int | None, ordered=False
    ) -> None:
        self.conversation_id = conversation_id
        self.after_id = after_id
        self.customer_id = customer_id
        self.ordered = ordered

    def queryset(self) -> QuerySet:
        rows = _message_rows_queryset(
            conversation_id=self.conversation_id,
            after_id=self.after_id,
            customer_id=self.customer_id,
        )
        return rows.order_by("pk") if self.ordered else rows.order_by("created_at", "pk")

    def _with(self, **changes) -> "MessageRows":
        fields = {
            "conversation_id": self.conversation_id,
            "after_id": self.after_id,
            "customer_id": self.customer_id,
            "ordered": self.ordered,
        }
        return MessageRows(**(fields | changes))

    def order_by(self, *fields: str):
        if fields == ("pk",):
            return self._with(ordered=True)
        return self.queryset().order_by(*fields)

    def filter(self, **conditions):
        if self.ordered and set(conditions) == {"pk__gt"}:
            return self._with(after_id=max(self.after_id, int(conditions["pk__gt"])))
        return self.queryset().filter(**conditions)

    def __getitem__(self, index):
        if (
            self.ordered
            and isinstance(index, slice)
            and not index.start
            and index.step is None
            and index.stop is not None
            and 0 < index.stop <= _PAGE_LIMIT_MAX
        ):
            values = {"conversation_id": self.conversation_id, "after_id": self.after_id}
            if self.customer_id is not None:
                values["customer_id"] = self.customer_id
            return _page_query(index.stop, self.customer_id is not None).rows(**values)
        return self.queryset()[index]

    def __iter__(self):
        return iter(self.queryset())


def conversation_message_rows(
    *, conversation_id: int, after_id: int = 0, customer_id: int | None = None
) -> MessageRows:
    """`conversation_messages` as `.values()` rows (wrap each in `MessageRow` for the payload):
    one query with the payload's relations joined, no model instances. With `customer_id`,
    only if the conversation is that customer's (no rows otherwise)."""
    return MessageRows(conversation_id=conversation_id, after_id=after_id, customer_id=customer_id)


_CLIENT_ID = ("id", "conversation", "client_id")


@functools.cache
def _client_id_sql() -> str:
    table = connection.ops.quote_name(Message._meta.db_table)
    column = {f: connection.ops.quote_name(Message._meta.get_field(f).column) for f in _CLIENT_ID}
    return (
        f"SELECT {column['id']} FROM {table} WHERE {column['conversation']} = %s"  # noqa: S608
        f" AND {column['client_id']} = %s LIMIT 1"
    )


def message_with_client_id(*, conversation: Conversation, client_id: str) -> Message | None:
    # Almost every post is new: look for the bare id first (the partial unique index answers
    # it; a statement written once per process, since the ORM spent more CPU building this
    # one-column lookup than the database spent answering it), and join the payload's
    # relations only on a retry.
    with connection.cursor() as cursor:
        cursor.execute(_client_id_sql(), [conversation.pk, client_id])
        row = cursor.fetchone()
    if row is None:
        return None
    return Message.objects.select_related(*MESSAGE_PAYLOAD_RELATIONS).get(pk=row[0])


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
