"""Realtime events for the chat WebSocket, always sent after the transaction commits.

Sending before commit would let a client fetch a message that a rollback then erases (zulip's
`send_event_on_commit` rule).
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def _send(conversation_id: int, event: dict) -> None:
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    try:
        async_to_sync(channel_layer.group_send)(
            conversation_group(conversation_id), {"type": "conversation.event", "event": event}
        )
    except Exception:
        # A Redis hiccup must not turn a stored message into a 500: clients re-sync by polling.
        logger.exception(
            "publishing %s for conversation %s failed", event.get("type"), conversation_id
        )


def conversation_event_publish(*, conversation_id: int, event: dict) -> None:
    transaction.on_commit(lambda: _send(conversation_id, event))
