"""Limits on the synthesis work one account (user or API key) can cause.

The request rate limit counts requests, not work: one /api/tts/ call of 2,000 digits as WAV
took 19 s of CPU and stored 19 MB. So, per subject ("user:<id>" or "key:<name>"):
- a budget of characters actually synthesised (cache hits are free) per window
  (TTS_CHAR_BUDGET, e.g. "6000/h"), over it -> 429 with Retry-After;
- at most TTS_MAX_CONCURRENT_PER_USER syntheses at a time (default 1), over it -> 429;
- clips it caches for itself take at most TTS_USER_CLIP_STORAGE_BYTES, the whole cache at
  most TTS_CLIP_STORAGE_BYTES: least recently used clips are evicted first.
Counters live in the shared cache (Redis), so they hold across processes. Fair queuing between
concurrent requests is the engine's (tts/engine/synthesizer.py: FairLock).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.db.models import Sum

from tts.models import AudioClip

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
# A slot is given back when the synthesis ends; this only frees slots of a killed process.
SLOT_TTL_SECONDS = 600


class SpeechBudgetExceeded(Exception):
    def __init__(self, code: str, message: str, retry_after: int):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after


def budget_subject(*, user, api_key_name: str = "") -> str:
    if api_key_name:
        return f"key:{api_key_name}"
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    return ""


def _parse_rate(rate: str) -> tuple[int, int]:
    count, _, unit = rate.partition("/")
    return int(count), _UNITS[unit.strip()[:1]]


def speech_budget_charge(*, subject: str, chars: int) -> None:
    """Count `chars` against the subject's window; SpeechBudgetExceeded when over it (the
    charge is taken back, so a refused request costs nothing)."""
    if not subject or not settings.TTS_CHAR_BUDGET:
        return
    limit, window = _parse_rate(settings.TTS_CHAR_BUDGET)
    now = time.time()
    key = f"tts:budget:{subject}:{int(now // window)}"
    cache.add(key, 0, timeout=window + 5)
    try:
        used = cache.incr(key, chars)
    except ValueError:
        cache.add(key, chars, timeout=window + 5)
        used = chars
    if used > limit:
        cache.decr(key, chars)
        retry_after = max(1, int(window - now % window))
        raise SpeechBudgetExceeded(
            "tts_budget_exceeded",
            f"语音合成额度已用完，请 {retry_after} 秒后再试 / Speech budget used up.",
            retry_after,
        )


@contextmanager
def speech_slot(*, subject: str) -> Iterator[None]:
    """At most TTS_MAX_CONCURRENT_PER_USER syntheses at once for one subject."""
    limit = settings.TTS_MAX_CONCURRENT_PER_USER
    if not subject or not limit:
        yield
        return
    key = f"tts:busy:{subject}"
    cache.add(key, 0, timeout=SLOT_TTL_SECONDS)
    try:
        running = cache.incr(key)
    except ValueError:
        cache.add(key, 1, timeout=SLOT_TTL_SECONDS)
        running = 1
    try:
        if running > limit:
            raise SpeechBudgetExceeded(
                "tts_busy",
                "上一段语音仍在合成，请稍候 / A synthesis is already running for you.",
                2,
            )
        yield
    finally:
        try:
            cache.decr(key)
        except ValueError:
            pass


def clip_storage_enforce(*, scope: str) -> int:
    """Evict least recently used clips until the scope's and the total clip storage are under
    their caps. Returns the number of clips deleted."""
    deleted = 0
    caps = [(AudioClip.objects.all(), settings.TTS_CLIP_STORAGE_BYTES)]
    if scope:
        caps.insert(
            0, (AudioClip.objects.filter(scope=scope), settings.TTS_USER_CLIP_STORAGE_BYTES)
        )
    for queryset, cap in caps:
        if not cap:
            continue
        used = queryset.aggregate(total=Sum("size_bytes"))["total"] or 0
        if used <= cap:
            continue
        for clip in queryset.order_by("last_used_at", "pk").only("pk", "file", "size_bytes"):
            if used <= cap:
                break
            clip.file.delete(save=False)
            clip.delete()
            used -= clip.size_bytes
            deleted += 1
    return deleted
