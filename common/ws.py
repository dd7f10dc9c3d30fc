"""Per-connection limits for WebSocket consumers: frame size and frame rate."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

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
        content = json.loads(text_data)
    except ValueError:
        return CLOSE_BAD_FRAME
    return content if isinstance(content, dict) else CLOSE_BAD_FRAME
