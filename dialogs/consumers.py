"""The chat WebSocket: `ws/chat/<conversation_id>/` forwards the conversation's events.

Clients only send `{"type": "ping"}` (answered with a pong). Anything else is refused by closing:
a frame that is not a JSON object (or is binary) -> 4400, a frame over 4 KB -> 1009, more than
CHAT_WS_BURST frames at once / CHAT_WS_FRAMES_PER_SECOND sustained -> 4429.
"""

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

from .events import conversation_group
from .models import Conversation
from .selectors.conversations import user_is_staff

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_NOT_FOUND = 4404
MAX_FRAME_BYTES = 4 * 1024
# A ping every few seconds is the whole legitimate traffic: 20 at once, 2/s sustained is ample.
CHAT_WS_BURST = 20
CHAT_WS_FRAMES_PER_SECOND = 2.0


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
        # Messages are sent over HTTP (CSRF, validation, one code path); the socket only
        # answers pings so clients can detect dead connections.
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})

    async def conversation_event(self, message: dict) -> None:
        await self.send_json(message["event"])
