"""`/ws/tts/?token=<JWT>`: speech streamed sentence by sentence, so playback starts early.

Protocol (one request at a time; requests sent while a reply streams wait their turn):
- client -> JSON text frame `{"text", "voice", "emotion", "speed", "pitch", "format"}` with
  the same rules as POST /api/tts/; `format` is "mp3" (default) or "pcm" (s16le, 24 kHz mono).
- server -> `{"type": "start", "format", "content_type", "sample_rate"}`, then one binary
  frame per audio chunk as soon as the engine has rendered it, then
  `{"type": "end", "duration_ms", "chunks"}`. Concatenated, the binary frames are one file.
- A request that cannot be served -> `{"type": "error", "code", "message", "fields"}` and the
  socket stays open. That includes the rate limit (code "rate_limited", with "retry_after"
  seconds): the budget is the same per-user TTS_RATE_LIMIT as /api/tts/, shared with it.
- Frames that are not a JSON object close the socket with 4400, frames over 8 KB with 1009,
  more than TTS_WS_BURST frames at once (TTS_WS_FRAMES_PER_SECOND sustained) with 4429;
  no token (or an invalid one) closes with 4401 before the handshake completes, like the chat
  socket.
"""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django_ratelimit.core import get_usage
from rest_framework import serializers

from common.errors import RATE_LIMIT_RETRY_AFTER_SECONDS
from common.redaction import traceback_summary
from common.ws import (
    CLOSE_FLOODING,
    CLOSE_TOO_MANY_SOCKETS,
    FrameRateLimiter,
    json_frame,
    socket_slot_acquire,
    socket_slot_release,
    ws_refuse,
)
from tts import services
from tts.api import TTS_RATE_GROUP, SpeechInputSerializer
from tts.models import SynthesisStatus

logger = logging.getLogger(__name__)

CLOSE_UNAUTHENTICATED = 4401
MAX_FRAME_BYTES = 8 * 1024
STREAM_FORMATS = ("mp3", "pcm")
# Frames are counted before any parsing or database work, so a flood costs almost nothing. The
# per-user TTS_RATE_LIMIT still governs synthesis; this only stops frame spam on one socket.
TTS_WS_BURST = 30
TTS_WS_FRAMES_PER_SECOND = 5.0


class SpeechStreamInputSerializer(SpeechInputSerializer):
    format = serializers.ChoiceField(choices=STREAM_FORMATS, default="mp3")
    encoding = None  # always binary frames


class _Refused(Exception):
    def __init__(self, code: str, message: str, fields: dict | None = None, **extra):
        super().__init__(message)
        self.frame = {"type": "error", "code": code, "message": message, "fields": fields or {}}
        self.frame.update(extra)


def _rate_limit_hit(user) -> int | None:
    """Counts this request against the user's TTS budget; seconds to wait if it is spent."""
    # django-ratelimit wants a request; for "user_or_ip" it reads only .user and .method.
    request = SimpleNamespace(user=user, method="POST", META={})
    usage = get_usage(
        request,
        group=TTS_RATE_GROUP,
        key="user_or_ip",
        rate=settings.TTS_RATE_LIMIT,
        increment=True,
    )
    if usage is None or not usage["should_limit"]:
        return None
    # time_left is -1 when the cache could not count (fail closed): use the HTTP default.
    return usage["time_left"] if usage["time_left"] > 0 else RATE_LIMIT_RETRY_AFTER_SECONDS


@database_sync_to_async
def _open_stream(user, client_ip: str | None, message: dict) -> services.SpeechStream:
    serializer = SpeechStreamInputSerializer(data=message)
    if not serializer.is_valid():
        fields = {k: [str(e) for e in v] for k, v in serializer.errors.items()}
        raise _Refused("invalid", "Invalid input.", fields)
    retry_after = _rate_limit_hit(user)
    if retry_after is not None:
        raise _Refused(
            "rate_limited", "Too many requests, please slow down.", retry_after=retry_after
        )
    data = serializer.validated_data
    try:
        controls = services.speech_stream_controls(
            preset=data.get("emotion"), speed=data.get("speed"), pitch=data.get("pitch")
        )
        return services.speech_stream_open(
            text=data["text"],
            preset=data.get("emotion"),
            voice=data.get("voice"),
            controls=controls,
            fmt=data["format"],
            user=user,
            client_ip=client_ip,
            render_on_worker=settings.TTS_RENDER_ON_WORKER,
        )
    except services.SpeechTextRejected as exc:
        raise _Refused(exc.code, exc.message, {"text": [exc.message]}) from exc
    except services.SpeechSynthesisFailed as exc:
        raise _Refused("tts_unavailable", "Speech synthesis is unavailable.") from exc


_record = database_sync_to_async(services.speech_stream_record)
_END = object()


def _next_chunk(chunks):
    # StopIteration cannot cross an await: turn exhaustion into a sentinel.
    return next(chunks, _END)


class SpeechStreamConsumer(AsyncWebsocketConsumer):
    limiter: FrameRateLimiter | None = None
    slot_user_id: int | None = None

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await ws_refuse(self, CLOSE_UNAUTHENTICATED)
            return
        if not await sync_to_async(socket_slot_acquire)(
            user.pk, limit=settings.WS_MAX_SOCKETS_PER_USER
        ):
            await ws_refuse(self, CLOSE_TOO_MANY_SOCKETS)
            return
        self.slot_user_id = user.pk
        self.limiter = FrameRateLimiter(burst=TTS_WS_BURST, per_second=TTS_WS_FRAMES_PER_SECOND)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        if self.slot_user_id is not None:
            await sync_to_async(socket_slot_release)(self.slot_user_id)
            self.slot_user_id = None

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.limiter is not None and not self.limiter.allow():
            await self.close(code=CLOSE_FLOODING)
            return
        message = json_frame(text_data, bytes_data, max_bytes=MAX_FRAME_BYTES)
        if isinstance(message, int):
            await self.close(code=message)
            return
        try:
            stream = await _open_stream(self.scope["user"], self._client_ip(), message)
        except _Refused as refusal:
            await self.send(text_data=json.dumps(refusal.frame, ensure_ascii=False))
            return
        await self._stream(stream)

    async def _stream(self, stream: services.SpeechStream) -> None:
        await self._send_json(
            {
                "type": "start",
                "format": stream.request.fmt,
                "content_type": stream.content_type,
                "sample_rate": stream.sample_rate,
            }
        )
        chunks = stream.chunks()
        # Each next() renders one sentence (tens to hundreds of ms of torch): it runs in a
        # worker thread, not the shared sync thread, so other sockets and DB calls go on.
        next_chunk = sync_to_async(_next_chunk, thread_sensitive=False)
        try:
            while (chunk := await next_chunk(chunks)) is not _END:
                try:
                    await self.send(bytes_data=chunk)
                except OSError:
                    # The client went away (uvicorn's ClientDisconnected is an OSError): stop
                    # rendering the remaining sentences and send nothing more.
                    chunks.close()
                    await _record(stream=stream, status=SynthesisStatus.FAILED, error="client_gone")
                    return
        except services.SpeechTextRejected as exc:
            await _record(stream=stream, status=SynthesisStatus.REJECTED, error=exc.code)
            await self._send_json({"type": "error", "code": exc.code, "message": exc.message})
            return
        except Exception as exc:
            # Not logger.exception: the exception message may quote the text (SECURITY.md).
            logger.error("stream synthesis failed: %s", traceback_summary(exc))
            await _record(stream=stream, status=SynthesisStatus.FAILED, error=type(exc).__name__)
            await self._send_json(
                {"type": "error", "code": "tts_unavailable", "message": "Synthesis failed."}
            )
            return
        await _record(stream=stream, status=SynthesisStatus.OK)
        await self._send_json(
            {"type": "end", "duration_ms": stream.duration_ms, "chunks": stream.chunk_count}
        )

    async def _send_json(self, content: dict) -> None:
        await self.send(text_data=json.dumps(content, ensure_ascii=False))

    def _client_ip(self) -> str | None:
        client = self.scope.get("client")
        return client[0] if client else None
