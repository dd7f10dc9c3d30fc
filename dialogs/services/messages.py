"""Message writes: a customer's message (idempotent by client_id) and the replies to it, by
the bot (a matching canned phrase) or by an agent. Replies are voiced after commit."""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from common.cache import cache_read_once
from common.precompiled import PrecompiledQuery, model_insert
from tts import services as tts_services
from tts.models import EmotionPreset
from tts.moderation import ModerationResult
from tts.selectors import MODERATION_VERSION_KEY

from ..events import conversation_event_publish
from ..models import (
    AudioStatus,
    CannedPhrase,
    Conversation,
    ConversationStatus,
    Intent,
    Message,
    SenderKind,
)
from ..payloads import message_payload
from ..rules_version import RULES_VERSION_KEY
from ..selectors.messages import bot_reply_after, message_with_client_id
from ..selectors.phrases import phrase_get_by_code, phrase_match_for_text
from ..selectors.policy import emotion_for_intent, emotion_suggestion, intent_classify
from . import workflow
from .conversations import conversation_updated_publish
from .moderation import SensitiveTextRefused, moderation_apply, outgoing_text_check
from .phrases import phrase_text_render
from .voicing import message_voice_queue

logger = logging.getLogger(__name__)

CLIENT_ID_MAX = 64
# The relations a new message is handed as objects the caller already holds: validating them
# again (`full_clean` runs one existence query per foreign key) would only repeat the read.
# The client_id uniqueness is checked under the conversation lock (`customer_message_post`)
# and enforced by the database constraint.
_TRUSTED_RELATIONS = ["conversation", "author", "intent", "emotion", "canned_phrase", "audio_clip"]
# Inside a post, the reply flow runs in the post's one transaction: the public entry points
# open it (a savepoint when the caller already has one), the steps below them do not, since a
# savepoint per nested call costs two statements and any error aborts the whole post anyway.


@dataclass(frozen=True)
class CustomerPostResult:
    message: Message
    bot_reply: Message | None
    created: bool  # False: a retry with a known client_id, nothing was stored


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
    client_id: str = "",
    moderation: ModerationResult | None = None,
    **fields,
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
        client_id=client_id,
        **fields,
    )
    if moderation is not None:
        moderation_apply(message=message, conversation=conversation, result=moderation)
    message.full_clean(
        exclude=_TRUSTED_RELATIONS, validate_unique=False, validate_constraints=False
    )
    model_insert(message)  # save(), with the INSERT written once per process
    conversation.last_message = message
    conversation.last_message_at = message.created_at
    conversation.save(
        update_fields=[
            "last_message",
            "last_message_at",
            "status",
            "assigned_agent",
            "moderation_flagged",
            "updated_at",
        ]
    )
    conversation_event_publish(
        conversation_id=conversation.pk,
        event={"type": "message.created", "message": message_payload(message)},
    )
    conversation_updated_publish(conversation=conversation)
    if voiced:
        message_voice_queue(message=message)
    return message


def _clean_text(text: str) -> str:
    text = (text or "").strip()
    if not text:
        raise ValidationError({"text": _("The message is empty.")}, code="empty")
    return text


def _check_speakable_length(text: str) -> None:
    """Replies are voiced: one longer than the engine takes would be stored and then fail its
    audio every time. Refuse it at send, where the agent can still shorten it."""
    limit = settings.TTS_MAX_TEXT_CHARS
    if len(text) > limit:
        raise ValidationError(
            {"text": _("A spoken reply has at most %(limit)d characters.") % {"limit": limit}},
            code="max_length",
        )


def _clean_customer_input(text: str, client_id: str) -> tuple[str, str]:
    limit = settings.CHAT_MAX_MESSAGE_CHARS
    text = _clean_text(text)
    if len(text) > limit:
        raise ValidationError(
            {"text": _("At most %(limit)d characters.") % {"limit": limit}}, code="max_length"
        )
    client_id = (client_id or "").strip()
    if len(client_id) > CLIENT_ID_MAX:
        raise ValidationError(
            {"client_id": _("At most %(limit)d characters.") % {"limit": CLIENT_ID_MAX}},
            code="max_length",
        )
    return text, client_id


@transaction.atomic
def customer_message_create(
    *, conversation: Conversation, author: User, text: str, client_id: str = ""
) -> Message:
    """Store the customer's message, classify it, and route it: to the agent serving (or the
    queue), to a human when asked for or when the intent needs one, else to the bot; what no
    canned phrase answers goes to a human too (`services.workflow`)."""
    return _customer_message_store(
        conversation=conversation, author=author, text=text, client_id=client_id
    )[0]


def _customer_message_store(
    *, conversation: Conversation, author: User, text: str, client_id: str
) -> tuple[Message, Message | None]:
    text, client_id = _clean_customer_input(text, client_id)
    if conversation.status == ConversationStatus.RESOLVED:
        conversation.status = ConversationStatus.OPEN  # the customer came back
    elif conversation.status == ConversationStatus.PENDING:
        conversation.status = ConversationStatus.OPEN  # the ball is in our court again
    intent = intent_classify(text=text)
    message = _message_store(
        conversation=conversation,
        sender_kind=SenderKind.CUSTOMER,
        author=author,
        text=text,
        intent=intent,
        client_id=client_id,
        moderation=tts_services.text_moderate(text=text),
    )
    bot_reply = customer_text_answer(
        conversation=conversation, message=message, text=text, intent=intent, touched=True
    )
    return message, bot_reply


def customer_text_answer(
    *,
    conversation: Conversation,
    message: Message,
    text: str,
    intent: Intent | None,
    touched: bool = False,
) -> Message | None:
    """What follows a customer's words, typed or transcribed (voice messages): the workflow
    routes the message; unless a human has it, the bot answers when a canned phrase matches,
    else the conversation is handed off. The bot's reply (or the handoff's acknowledgement).
    `touched`: the conversation row was just saved with this message (its `updated_at` is
    current), so routing need not write it again only to move that timestamp."""
    served = conversation.assigned_agent_id is not None or (
        conversation.status == ConversationStatus.WAITING
    )
    if workflow.customer_message_received(
        conversation=conversation, message=message, touched=touched
    ):
        # A human has it, so the bot stays quiet; handed off just now, the acknowledgement (or
        # the out-of-hours notice) is the reply. Looked up only then: handoffs are rare.
        return None if served else bot_reply_after(message=message)
    phrase = phrase_match_for_text(text=text)
    bot_reply = None
    if phrase is not None:
        bot_reply = bot_reply_create(conversation=conversation, phrase=phrase, intent=intent)
    else:
        workflow.message_unanswered(conversation=conversation, message=message)
        bot_reply = bot_reply_after(message=message)  # the handoff's acknowledgement, if sent
    return bot_reply


# Locks the conversation row only; the joined customer and agent are what the bot reply's phrase
# template reads, the CSAT (a reverse one-to-one, usually absent) what the `conversation.updated`
# payload reads (three queries fewer). Compiled once: building this SQL cost more CPU than any
# other step of a post (bench/README.md).
_CONVERSATION_FOR_POST = PrecompiledQuery(
    Conversation,
    lambda pk, customer_id: (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer__customer_profile", "assigned_agent", "csat")
        .filter(pk=pk, customer_id=customer_id)
    ),
    pk=int,
    customer_id=int,
)


@transaction.atomic
def customer_message_post(
    *, author: User, conversation_id: int, text: str, client_id: str = ""
) -> CustomerPostResult:
    """`customer_message_create` at most once per `client_id`: a retry after a lost response
    returns the stored message (and its bot reply) instead of storing it again.

    Only the conversation's own customer posts into it: someone else's conversation, or one
    that does not exist, raises `Conversation.DoesNotExist` (the API answers 404 to both, so a
    customer cannot learn which ids exist). The conversation row is locked for the duration,
    which serialises one customer's posts: the client_id check cannot race and the bot reply
    found afterwards is this message's. This locked read is the post's only read of the
    conversation, its permission check included.
    """
    client_id = (client_id or "").strip()
    conversation = _CONVERSATION_FOR_POST.get(pk=conversation_id, customer_id=author.pk)
    # The same user, with the profile the message payload's author name reads.
    author = conversation.customer
    if client_id:
        existing = message_with_client_id(conversation=conversation, client_id=client_id)
        if existing is not None:
            return CustomerPostResult(existing, bot_reply_after(message=existing), created=False)
    # The reply rules' and the word list's version tokens, read once for the whole post (the
    # rules snapshot is consulted up to four times).
    with cache_read_once(RULES_VERSION_KEY, MODERATION_VERSION_KEY):
        message, bot_reply = _customer_message_store(
            conversation=conversation, author=author, text=text, client_id=client_id
        )
    return CustomerPostResult(message, bot_reply, created=True)


@transaction.atomic(savepoint=False)
def bot_reply_create(
    *, conversation: Conversation, phrase: CannedPhrase, intent: Intent | None
) -> Message | None:
    text = phrase_text_render(
        text=phrase.text, customer=conversation.customer, agent=conversation.assigned_agent
    )
    try:
        moderation = outgoing_text_check(text=text)
    except SensitiveTextRefused as exc:
        # A canned phrase (or a nickname filled into it) hit a block word: stay silent rather
        # than say it. The log names the phrase, never the text.
        logger.warning("bot reply with phrase %s blocked by the word filter: %s", phrase.pk, exc)
        return None
    return _message_store(
        conversation=conversation,
        sender_kind=SenderKind.BOT,
        text=text,
        emotion=emotion_for_intent(intent=intent),
        canned_phrase=phrase,
        voiced=True,
        moderation=moderation,
    )


@transaction.atomic
def agent_reply_create(
    *,
    conversation: Conversation,
    agent: User,
    text: str = "",
    short_code: str = "",
    emotion: EmotionPreset | None = None,
) -> Message:
    """An agent's reply: free text or a canned phrase (`short_code`), voiced after commit.

    The tone follows the policy for the latest customer message unless `emotion` overrides it.
    """
    phrase = None
    if short_code:
        phrase = phrase_get_by_code(short_code=short_code)
        if phrase is None:
            raise ValidationError(
                {"short_code": _("No active canned phrase /%(code)s.") % {"code": short_code}},
                code="unknown_phrase",
            )
        text = phrase.text
    text = phrase_text_render(text=_clean_text(text), customer=conversation.customer, agent=agent)
    _check_speakable_length(text)
    workflow.check_may_reply(conversation=conversation, agent=agent)
    moderation = outgoing_text_check(text=text)  # SensitiveTextRefused: nothing is sent
    overridden = emotion is not None
    if emotion is None:
        emotion = emotion_suggestion(conversation=conversation)
    workflow.agent_replied(conversation=conversation, agent=agent)
    if conversation.assigned_agent_id is None:
        conversation.assigned_agent = agent  # answering from the queue claims it
    if conversation.status in (ConversationStatus.OPEN, ConversationStatus.WAITING):
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
        moderation=moderation,
    )
