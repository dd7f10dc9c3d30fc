"""Per-connection limits for WebSocket consumers: frame size and frame rate."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from common.json_bounded import json_loads_bounded

CLOSE_BAD_FRAME = 4400
CLOSE_TOO_BIG = 1009  # RFC 6455 "message too big"
CLOSE_FLOODING = 4429


@dataclass
class FrameRateLimiter:
    """A token bucket: `burst` frames at once, refilled at `per_second`.

    Held per connection in the consumer, so a flooding client is cut off without touching
    shared state; a legitimate client (one ping every few seconds, one TTS request at a time)
    never gets near it.
    """

    burst: int
    per_second: float
    _tokens: float = field(init=False)
    _stamp: float = field(init=False)

    def __post_init__(self) -> None:
        self._tokens = float(self.burst)
        self._stamp = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.per_second)
        self._stamp = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True


def json_frame(text_data: str | None, bytes_data: bytes | None, *, max_bytes: int) -> dict | int:
    """The frame as a JSON object, or the close code it deserves (binary, too big, not an
    object). Checked before parsing: the consumers' base class would json.loads() anything."""
    if bytes_data is not None or text_data is None:
        return CLOSE_BAD_FRAME
    if len(text_data.encode()) > max_bytes:
        return CLOSE_TOO_BIG
    try:
        content = json_loads_bounded(text_data)
    except ValueError:  # invalid, or nested deeper than any frame of ours (RecursionError)
        return CLOSE_BAD_FRAME
    return content if isinstance(content, dict) else CLOSE_BAD_FRAME


CLOSE_FORBIDDEN = 4403
CLOSE_TOO_MANY_SOCKETS = 4429


async def ws_refuse(consumer, code: int) -> None:
    """Refuse a connection with a close code the client can read.

    A close before the handshake completes reaches the client as a bare HTTP 403, whatever the
    code: accept first, then close, so 4401 / 4403 / 4404 / 4429 arrive as documented.
    """
    await consumer.accept()
    await consumer.close(code=code)


# --- open sockets per user ----------------------------------------------------------------------
# One account holding hundreds of sockets ties up server memory and group fan-out. Counted in the
# shared cache (Redis: across processes). A process that dies without disconnecting leaks its
# slots until the key expires (SOCKET_SLOT_TTL after that user's last connect).
SOCKET_SLOT_TTL = 3600


def _slot_key(user_id: int) -> str:
    return f"ws:sockets:{user_id}"


def socket_slot_acquire(user_id: int, *, limit: int) -> bool:
    from django.core.cache import cache

    key = _slot_key(user_id)
    cache.add(key, 0, timeout=SOCKET_SLOT_TTL)
    try:
        count = cache.incr(key)
    except ValueError:  # expired between add and incr
        cache.add(key, 1, timeout=SOCKET_SLOT_TTL)
        count = 1
    cache.touch(key, SOCKET_SLOT_TTL)
    if count > limit:
        cache.decr(key)
        return False
    return True


def socket_slot_release(user_id: int) -> None:
    from django.core.cache import cache

    try:
        if cache.decr(_slot_key(user_id)) < 0:
            cache.set(_slot_key(user_id), 0, timeout=SOCKET_SLOT_TTL)
    except ValueError:  # expired: nothing to give back
        pass


class SameOriginValidator:
    """WebSocket Origin check that compares scheme, host *and port*.

    Channels' AllowedHostsOriginValidator matched the Origin's host name against ALLOWED_HOSTS
    and ignored the port, so a page on another port of the same host (another app, a dev
    server) could open the agent console's session-authenticated socket. Allowed: an Origin
    equal to the socket's own Host (same host and port; the Host itself must be allowed), or
    listed exactly in CSRF_TRUSTED_ORIGINS / CORS_ALLOWED_ORIGINS. No Origin, or any other
    one: accepted and closed with 4403 (a readable refusal, not a bare HTTP 403).
    """

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket" or self.allowed(scope):
            return await self.app(scope, receive, send)
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close", "code": CLOSE_FORBIDDEN})
        return None

    @staticmethod
    def allowed(scope) -> bool:
        from urllib.parse import urlsplit

        from django.conf import settings
        from django.http.request import split_domain_port, validate_host

        headers = dict(scope.get("headers") or [])
        try:
            origin = headers.get(b"origin", b"").decode("latin-1").strip().lower()
            host = headers.get(b"host", b"").decode("latin-1").strip().lower()
        except UnicodeDecodeError:
            return False
        if not origin or origin == "null":
            return False
        trusted = {
            o.rstrip("/").lower()
            for o in [*settings.CSRF_TRUSTED_ORIGINS, *settings.CORS_ALLOWED_ORIGINS]
        }
        if origin.rstrip("/") in trusted:
            return True
        parts = urlsplit(origin)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            return False
        default_port = {"http": 80, "https": 443}[parts.scheme]
        try:
            origin_port = parts.port or default_port
        except ValueError:
            return False
        allowed_hosts = settings.ALLOWED_HOSTS
        if settings.DEBUG and not allowed_hosts:
            allowed_hosts = [".localhost", "127.0.0.1", "[::1]"]
        if host:
            host_name, host_port = split_domain_port(host)
            if not host_name or not validate_host(host_name, allowed_hosts):
                return False
            # The Host header carries no scheme: a port-less Host means the scheme's default.
            return parts.hostname == host_name.strip("[]") and origin_port == int(
                host_port or default_port
            )
        # No Host header (test clients): the Origin's host must be allowed, on a default port.
        return validate_host(parts.hostname, allowed_hosts) and parts.port is None
