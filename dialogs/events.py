"""Realtime events for the chat WebSocket and the staff console, always sent after the
transaction commits.

Sending before commit would let a client fetch a message that a rollback then erases (zulip's
`send_event_on_commit` rule). The events of one transaction go out together, in order, in one
hop to the event loop: a customer post with a bot reply makes four events, and each separate
`async_to_sync(group_send)` costs a thread hand-off plus its Redis round trips.
"""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import transaction

logger = logging.getLogger(__name__)


CONSOLE_GROUP = "console.staff"
_EVENT_ID_KEY = "dialogs:event-id"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def console_agent_group(agent_id: int) -> str:
    return f"console.agent.{agent_id}"


def _next_event_ids(count: int) -> range:
    """`count` consecutive ids from a counter shared by all processes (the cache is Redis in
    production; `make run` has one process and a local-memory cache). One increment numbers a
    whole batch. Clients compare, never assume gaps."""
    try:
        start = time.time_ns() // 1_000_000
        if hasattr(cache, "incr_or_start"):  # the Redis cache: one round trip, not three
            last = cache.incr_or_start(_EVENT_ID_KEY, count, start)
        else:
            cache.add(_EVENT_ID_KEY, start, timeout=None)
            last = cache.incr(_EVENT_ID_KEY, count)
    except Exception:
        last = time.time_ns() // 1_000_000 + count
    return range(last - count + 1, last + 1)


async def _send_all(channel_layer, events: list[tuple[str, dict]]) -> None:
    for group, event in events:
        try:
            await channel_layer.group_send(group, {"type": "conversation.event", "event": event})
        except Exception:
            # A Redis hiccup must not turn a stored message into a 500: clients re-sync by
            # polling.
            logger.exception("publishing %s to %s failed", event.get("type"), group)


def _listened(channel_layer, events: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The events whose group has a listener. Most of a post's events (nobody watching the
    queue, the customer's page closed) need go nowhere: one round trip finds that out, from
    this thread, and then neither the event loop nor the event-id counter is bothered."""
    check = getattr(channel_layer, "groups_with_members_sync", None)
    if check is None:
        return events
    try:
        listened = check([group for group, _ in events])
    except Exception as exc:
        logger.warning("looking up event listeners failed (%s): sending to all", exc)
        return events
    if listened is None:
        return events
    return [(group, event) for group, event in events if group in listened]


def _group_events_send_now(events: list[tuple[str, dict]]) -> None:
    channel_layer = get_channel_layer()
    if channel_layer is None or not events:
        return
    events = _listened(channel_layer, events)
    if not events:
        return
    numbered = [
        (group, {**event, "event_id": event_id})
        for (group, event), event_id in zip(events, _next_event_ids(len(events)), strict=True)
    ]
    try:
        async_to_sync(_send_all)(channel_layer, numbered)
    except Exception:
        logger.exception("publishing %d event(s) failed", len(events))


class _EventBatch:
    """One on_commit hook carrying every event (to any group) published at the same savepoint
    level."""

    def __init__(self, events: list[tuple[str, dict]] | None = None) -> None:
        self.events: list[tuple[str, dict]] = events or []

    def __call__(self) -> None:
        _group_events_send_now(self.events)


def conversation_events_send_now(events: list[tuple[int, dict]]) -> None:
    """Send (conversation_id, event) pairs at once, in order. Only for what is committed."""
    _group_events_send_now(
        [(conversation_group(conversation_id), event) for conversation_id, event in events]
    )


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


def _publish(group: str, event: dict) -> None:
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        _EventBatch([(group, event)])()  # autocommit: the write is committed already
        return
    batch = _open_batch(connection)
    if batch is None:
        batch = _EventBatch()
        transaction.on_commit(batch)
    batch.events.append((group, event))


def conversation_event_publish(*, conversation_id: int, event: dict) -> None:
    _publish(conversation_group(conversation_id), event)


def console_event_publish(*, event: dict, agent_id: int | None = None) -> None:
    """To every staff console (queue changes), or to one agent's consoles."""
    _publish(CONSOLE_GROUP if agent_id is None else console_agent_group(agent_id), event)
