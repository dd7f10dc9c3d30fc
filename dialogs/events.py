"""Realtime events for the chat WebSocket, always sent after the transaction commits.

Sending before commit would let a client fetch a message that a rollback then erases (zulip's
`send_event_on_commit` rule).
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


def _next_event_id() -> int:
    """A monotonically increasing id shared by all processes (the cache is Redis in production;
    `make run` has one process and a local-memory cache). Clients compare, never assume gaps."""
    try:
        cache.add(_EVENT_ID_KEY, time.time_ns() // 1_000_000, timeout=None)
        return cache.incr(_EVENT_ID_KEY)
    except Exception:
        return time.time_ns() // 1_000_000


def _send_to(group: str, event: dict) -> None:
    channel_layer = get_channel_layer()
    if channel_layer is None:
        return
    event = {**event, "event_id": _next_event_id()}
    try:
        async_to_sync(channel_layer.group_send)(
            group, {"type": "conversation.event", "event": event}
        )
    except Exception:
        # A Redis hiccup must not turn a stored message into a 500: clients re-sync by polling.
        logger.exception("publishing %s to %s failed", event.get("type"), group)


def _send(conversation_id: int, event: dict) -> None:
    _send_to(conversation_group(conversation_id), event)


def conversation_event_publish(*, conversation_id: int, event: dict) -> None:
    transaction.on_commit(lambda: _send(conversation_id, event))


def console_event_publish(*, event: dict, agent_id: int | None = None) -> None:
    """To every staff console (queue changes), or to one agent's consoles."""
    group = CONSOLE_GROUP if agent_id is None else console_agent_group(agent_id)
    transaction.on_commit(lambda: _send_to(group, event))
