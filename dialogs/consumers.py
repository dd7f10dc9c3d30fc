"""The WebSockets: `ws/chat/<conversation_id>/` forwards the conversation's events (customer
and staff); `ws/console/` (staff only) carries the queue and the agent's presence heartbeat.

Clients send `{"type": "ping"}` (answered with a pong) and, on the chat socket,
`{"type": "typing"}` (forwarded to the conversation, at most one per TYPING_INTERVAL_SECONDS
per socket; the rest are dropped). Anything else is refused by closing:
a frame that is not a JSON object (or is binary) -> 4400, a frame over 4 KB -> 1009, more than
CHAT_WS_BURST frames at once / CHAT_WS_FRAMES_PER_SECOND sustained -> 4429.
"""

import time

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from common.ws import (
    CLOSE_FLOODING,
    CLOSE_TOO_MANY_SOCKETS,
    FrameRateLimiter,
    json_frame,
    socket_slot_acquire,
    socket_slot_release,
    ws_refuse,
)

from .events import CONSOLE_GROUP, console_agent_group, conversation_group
from .models import Conversation, SenderKind
from .selectors.conversations import user_is_staff
from .services import workflow

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
MAX_FRAME_BYTES = 4 * 1024
# A ping every few seconds is the whole legitimate traffic: 20 at once, 2/s sustained is ample.
CHAT_WS_BURST = 20
CHAT_WS_FRAMES_PER_SECOND = 2.0
TYPING_INTERVAL_SECONDS = 2.0


@database_sync_to_async
def _access(user, conversation_id: int) -> int | None:
    """None when the user may follow the conversation, else the close code."""
    customer_id = (
        Conversation.objects.filter(pk=conversation_id)
        .values_list("customer_id", flat=True)
        .first()
    )
    if customer_id is None:
        return CLOSE_NOT_FOUND
    if user_is_staff(user) or customer_id == user.pk:
        return None
    return CLOSE_FORBIDDEN


class ChatConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None
    limiter: FrameRateLimiter | None = None
    slot_user_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await ws_refuse(self, CLOSE_UNAUTHENTICATED)
            return
        conversation_id = int(self.scope["url_route"]["kwargs"]["conversation_id"])
        refusal = await _access(user, conversation_id)
        if refusal is not None:
            await ws_refuse(self, refusal)
            return
        if not await sync_to_async(socket_slot_acquire)(
            user.pk, limit=settings.WS_MAX_SOCKETS_PER_USER
        ):
            await ws_refuse(self, CLOSE_TOO_MANY_SOCKETS)
            return
        self.slot_user_id = user.pk
        self.group_name = conversation_group(conversation_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        self.limiter = FrameRateLimiter(burst=CHAT_WS_BURST, per_second=CHAT_WS_FRAMES_PER_SECOND)
        self.typing_identity = await _typing_identity(user)
        self.last_typing = 0.0
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.slot_user_id is not None:
            await sync_to_async(socket_slot_release)(self.slot_user_id)
            self.slot_user_id = None
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        # The base class would json.loads() anything and crash on garbage: check first.
        if self.limiter is not None and not self.limiter.allow():
            await self.close(code=CLOSE_FLOODING)
            return
        content = json_frame(text_data, bytes_data, max_bytes=MAX_FRAME_BYTES)
        if isinstance(content, int):
            await self.close(code=content)
            return
        await self.receive_json(content, **kwargs)

    async def receive_json(self, content, **kwargs) -> None:
        # Messages are sent over HTTP (CSRF, validation, one code path); the socket answers
        # pings so clients can detect dead connections, and forwards typing indicators.
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "typing" and self.group_name:
            now = time.monotonic()
            if now - self.last_typing < TYPING_INTERVAL_SECONDS:
                return  # throttled: a keystroke stream becomes one event per interval
            self.last_typing = now
            sender_kind, display_name = self.typing_identity
            event = {"type": "typing", "sender_kind": sender_kind, "display_name": display_name}
            await self.channel_layer.group_send(
                self.group_name, {"type": "conversation.event", "event": event}
            )

    async def conversation_event(self, message: dict) -> None:
        await self.send_json(message["event"])


@database_sync_to_async
def _typing_identity(user) -> tuple[str, str]:
    # Customers see the staff nickname (客服小李), never a username.
    if user_is_staff(user):
        return SenderKind.AGENT, user.display_name
    return SenderKind.CUSTOMER, user.display_name


HEARTBEAT_WRITE_SECONDS = 10.0  # a ping every 20 s; never more than one DB write per 10 s


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    """Staff only. Joins the queue group and the agent's own group; every ping is a presence
    heartbeat, and closing the socket takes the agent offline at once (another open console
    brings them back with its next ping)."""

    user = None
    limiter: FrameRateLimiter | None = None
    last_beat = 0.0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        if not await database_sync_to_async(user_is_staff)(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user = user
        for group in (CONSOLE_GROUP, console_agent_group(user.pk)):
            await self.channel_layer.group_add(group, self.channel_name)
        self.limiter = FrameRateLimiter(burst=CHAT_WS_BURST, per_second=CHAT_WS_FRAMES_PER_SECOND)
        await self.accept()
        await self._beat(force=True)

    async def disconnect(self, code: int) -> None:
        if self.user is None:
            return
        for group in (CONSOLE_GROUP, console_agent_group(self.user.pk)):
            await self.channel_layer.group_discard(group, self.channel_name)
        await database_sync_to_async(workflow.agent_disconnected)(user=self.user)

    async def _beat(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last_beat < HEARTBEAT_WRITE_SECONDS:
            return
        self.last_beat = now
        await database_sync_to_async(workflow.agent_heartbeat)(user=self.user)

    async def receive(self, text_data=None, bytes_data=None, **kwargs) -> None:
        if self.limiter is not None and not self.limiter.allow():
            await self.close(code=CLOSE_FLOODING)
            return
        content = json_frame(text_data, bytes_data, max_bytes=MAX_FRAME_BYTES)
        if isinstance(content, int):
            await self.close(code=content)
            return
        if content.get("type") == "ping":
            await self._beat()
            await self.send_json({"type": "pong"})

    async def conversation_event(self, message: dict) -> None:
        await self.send_json(message["event"])
