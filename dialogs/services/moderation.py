"""The sensitive-word filter on conversations: customers' words are flagged (and masked for
display, the original kept for supervisors); replies are checked before they are stored or
voiced, and a `block` word stops them."""

from django.utils.translation import gettext as _

from tts import services as tts_services
from tts.moderation import ModerationResult

from ..models import Conversation, Message, SenderKind


class SensitiveTextRefused(Exception):
    """An outgoing reply contains a `block` word: it is not stored, sent or voiced."""

    code = "sensitive_text"

    def __init__(self, categories: list[str]):
        self.categories = categories
        super().__init__(
            _("The reply contains blocked words (%(categories)s) and was not sent.")
            % {"categories": ", ".join(categories)}
        )


def outgoing_text_check(*, text: str) -> ModerationResult:
    """The filter on a reply before it is stored or voiced: raise on a block word, else the
    verdict (mask/flag hits are applied when storing)."""
    result = tts_services.text_moderate(text=text)
    if result.blocked:
        raise SensitiveTextRefused(result.categories)
    return result


def moderation_apply(
    *, message: Message, conversation: Conversation, result: ModerationResult
) -> None:
    """Copy the verdict onto the (unsaved or about to be saved) message and conversation."""
    message.moderation_flagged = result.flagged
    message.masked_text = result.masked_text if result.masked else ""
    found = {(hit.word, hit.category, hit.action) for hit in result.hits}
    message.moderation_hits = [
        {"word": word, "category": category, "action": action}
        for word, category, action in sorted(found)
    ]
    if result.flagged and message.sender_kind == SenderKind.CUSTOMER:
        conversation.moderation_flagged = True
