"""The reply policy: which intent a text shows, which emotion a reply should take."""

from tts.models import EmotionPreset

from ..models import Conversation, Intent, Message, SenderKind
from ..patterns import PatternError, pattern_search
from .snapshot import best_rule_preset, rules_snapshot


def intent_matches(*, intent: Intent, text: str) -> bool:
    folded = text.casefold()
    if any(keyword.casefold() in folded for keyword in intent.keyword_list):
        return True
    for pattern in intent.pattern_list:
        try:
            if pattern_search(pattern, text):  # RE2: linear time, whatever the pattern
                return True
        except PatternError:
            # Validated on save; a bad row slipping in through raw SQL must not break chat.
            continue
    return False


def intent_classify(*, text: str) -> Intent | None:
    """The highest-priority active intent whose keywords or patterns match, else None."""
    for intent in rules_snapshot().intents:
        if intent_matches(intent=intent, text=text):
            return intent
    return None


def emotion_for_intent(*, intent: Intent | None) -> EmotionPreset | None:
    """The policy: the best active rule for this intent, else the best active fallback rule."""
    return best_rule_preset(intent_id=intent.pk if intent is not None else None)


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
