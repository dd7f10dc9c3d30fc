"""Realtime events for the chat WebSocket, always sent after the transaction commits.

Sending before commit would let a client fetch a message that a rollback then erases (zulip's
`send_event_on_commit` rule). The events of one transaction go out together, in order, in one
hop to the event loop: a customer post with a bot reply makes four events, and each separate
`async_to_sync(group_send)` costs a thread hand-off plus its Redis round trips.
"""

import logging

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = logging.getLogger(__name__)


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


async def _send_all(channel_layer, events: list[tuple[int, dict]]) -> None:
    for conversation_id, event in events:
        try:
            await channel_layer.group_send(
                conversation_group(conversation_id), {"type": "conversation.event", "event": event}
            )
        except Exception:
            # A Redis hiccup must not turn a stored message into a 500: clients re-sync by
            # polling.
            logger.exception(
                "publishing %s for conversation %s failed", event.get("type"), conversation_id
            )


class _EventBatch:
    """One on_commit hook carrying every event published at the same savepoint level."""

    def __init__(self, events: list[tuple[int, dict]] | None = None) -> None:
        self.events: list[tuple[int, dict]] = events or []

    def __call__(self) -> None:
        conversation_events_send_now(self.events)


def conversation_events_send_now(events: list[tuple[int, dict]]) -> None:
    """Send (conversation_id, event) pairs at once, in order. Only for what is committed."""
    channel_layer = get_channel_layer()
    if channel_layer is None or not events:
        return
    try:
        async_to_sync(_send_all)(channel_layer, events)
    except Exception:
        logger.exception("publishing %d event(s) failed", len(events))


def _open_batch(connection) -> _EventBatch | None:
    """The batch already registered in this transaction at this savepoint level, if any.

    Looked up in the connection's pending hooks rather than kept aside: a rollback discards the
    hook, and with it the events, exactly as it discards any other on_commit callback.
    """
    if not connection.run_on_commit:
        return None
    sids, func, _robust = connection.run_on_commit[-1]
    if isinstance(func, _EventBatch) and set(sids) == set(connection.savepoint_ids):
        return func
    return None


def conversation_event_publish(*, conversation_id: int, event: dict) -> None:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _EventBatch([(conversation_id, event)])()  # autocommit: the write is committed already
        return
    batch = _open_batch(connection)
    if batch is None:
        batch = _EventBatch()
        transaction.on_commit(batch)
    batch.events.append((conversation_id, event))
