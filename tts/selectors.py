"""Speech reads: default voice, the current lexicon (shared across processes), signed clip URLs."""

from __future__ import annotations

import functools
import hmac
import threading
import time

from django.conf import settings
from django.core import signing
from django.urls import reverse

from common.cache import cache_get_read_once
from common.precompiled import PrecompiledQuery
from tts.models import AudioClip, EmotionPreset, ModerationWord, PronunciationEntry, Voice
from tts.moderation import WordEntry, WordMatcher

LEXICON_VERSION_KEY = "tts:lexicon:version"
MODERATION_VERSION_KEY = "tts:moderation:version"
_CLIP_SALT = "tts.clip-url"
_CLIP_KEY_CHARS = 16

_lexicon_lock = threading.Lock()
_lexicon_cache: dict = {"version": None, "entries": {}}


# Every synthesis request reads a voice with its remote-engine settings (a reverse one-to-one,
# usually absent) joined: `engines.remote_settings` asks for them next. Compiled once per
# process: building this SQL was a fifth of a cached /api/tts/ request's CPU (bench/README.md).
_DEFAULT_VOICE = PrecompiledQuery(
    Voice,
    lambda: (
        Voice.objects.select_related("remote")
        .filter(is_default=True, is_active=True)
        .order_by("pk")[:1]
    ),
)
_ACTIVE_VOICE = PrecompiledQuery(
    Voice,
    lambda engine_voice_id: Voice.objects.select_related("remote").filter(
        engine_voice_id=engine_voice_id, is_active=True
    ),
    engine_voice_id=str,
)


# The default voice is read by every synthesis request (a cached /api/tts/ included) and
# changes about never: it is kept per process, checked against a version token that voice
# saves move (tts/signals.py) and that the request reads with its other tokens in one MGET.
# The age cap bounds how long a write that sends no signal (a queryset.update) goes unseen.
VOICE_VERSION_KEY = "tts:voices:version"
VOICE_CACHE_MAX_AGE_SECONDS = 60.0
_default_voice_cache: tuple[int, float, Voice] | None = None


def _voice_default_read() -> Voice:
    voices = Voice.objects.select_related("remote")
    return (
        next(iter(_DEFAULT_VOICE.all()), None)
        or voices.filter(is_active=True).order_by("pk").first()
        or voices.get(engine_voice_id="baker")
    )


def voice_default_forget() -> None:
    """This process reads the default voice again on next use (a voice was saved here: this
    process sees it at once, even inside the saving transaction; others by the version)."""
    global _default_voice_cache
    _default_voice_cache = None


def voice_default() -> Voice:
    """The default voice (remote settings joined). Shared by the requests of this process:
    read it, never change it."""
    global _default_voice_cache
    try:
        version = int(cache_get_read_once(VOICE_VERSION_KEY) or 0)
    except Exception:  # cache down: read the table every time
        return _voice_default_read()
    cached = _default_voice_cache  # one read: another thread may replace it meanwhile
    now = time.monotonic()
    if (
        cached is not None
        and cached[0] == version
        and now - cached[1] < VOICE_CACHE_MAX_AGE_SECONDS
    ):
        return cached[2]
    voice = _voice_default_read()
    _default_voice_cache = (version, now, voice)
    return voice


def voice_active_get(*, engine_voice_id: str) -> Voice | None:
    """An active voice by its id (remote settings joined), or None."""
    return next(iter(_ACTIVE_VOICE.all(engine_voice_id=engine_voice_id)), None)


def emotion_preset_get(*, name: str) -> EmotionPreset | None:
    return EmotionPreset.objects.filter(name=name).first()


def voice_list():
    return Voice.objects.filter(is_active=True).order_by("-is_default", "display_name")


def emotion_preset_list():
    return EmotionPreset.objects.order_by("name")


def lexicon_version() -> int:
    try:
        return int(cache_get_read_once(LEXICON_VERSION_KEY) or 0)
    except Exception:  # cache down: fall back to reading the table every time
        return -1


def lexicon_current() -> dict[str, list[str]]:
    """Word -> pinyin syllables. Cached per process and invalidated through a version number
    in the shared cache, so an admin edit reaches every worker without a restart."""
    version = lexicon_version()
    if version >= 0 and _lexicon_cache["version"] == version:
        return _lexicon_cache["entries"]
    entries = {e.word: e.syllables for e in PronunciationEntry.objects.all()}
    with _lexicon_lock:
        _lexicon_cache.update(version=version, entries=entries)
    return entries


# Expiry times of long-lived URLs are rounded up to this step, so a clip's URL is the same for
# a while and signing it (HMAC + JSON + base64, the costly part of a message list with audio)
# happens once per clip and step in a process, not once per message per request. A URL then
# lives between its TTL and its TTL plus the step.
URL_EXPIRY_STEP_SECONDS = 300
_URL_MEMO_SIZE = 4096


def clip_token(clip: AudioClip, *, ttl_seconds: int | None = None) -> str:
    ttl = ttl_seconds or settings.TTS_AUDIO_URL_TTL_SECONDS
    expires = int(time.time()) + ttl
    if ttl >= 4 * URL_EXPIRY_STEP_SECONDS:
        expires = -(-expires // URL_EXPIRY_STEP_SECONDS) * URL_EXPIRY_STEP_SECONDS
    return _signed(clip.pk, clip.cache_key[:_CLIP_KEY_CHARS], expires)


@functools.lru_cache(maxsize=_URL_MEMO_SIZE)
def _signed(clip_id: int, key_prefix: str, expires: int) -> str:
    # Keyed by everything that goes into the token: a different clip, key or expiry signs anew.
    # (SECRET_KEY does not change within a process.)
    return signing.dumps({"c": clip_id, "k": key_prefix, "x": expires}, salt=_CLIP_SALT)


def clip_from_token(token: str) -> AudioClip | None:
    """The clip a signed token names, or None if tampered with, expired or gone."""
    try:
        data = signing.loads(token, salt=_CLIP_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict):
        return None
    expires, clip_id, key = data.get("x"), data.get("c"), data.get("k")
    if not isinstance(expires, int) or expires < time.time() or not isinstance(clip_id, int):
        return None
    # The whole 16-character key prefix, compared in constant time: an empty or short "k"
    # would otherwise match every clip (startswith("")).
    if not isinstance(key, str) or len(key) != _CLIP_KEY_CHARS:
        return None
    clip = AudioClip.objects.filter(pk=clip_id).first()
    if clip is None or not hmac.compare_digest(clip.cache_key[:_CLIP_KEY_CHARS], key):
        return None
    return clip


def clip_url(clip: AudioClip, *, ttl_seconds: int | None = None) -> str:
    """An unguessable, expiring URL for the clip: the signed token names the clip and the
    expiry time, and the media view checks both. The media folder itself is never served."""
    return _clip_path_prefix() + clip_token(clip, ttl_seconds=ttl_seconds)


@functools.cache
def _clip_path_prefix() -> str:
    # reverse() once per process; the token is the only variable part of the path.
    path = reverse("tts-clip", kwargs={"token": "x"})
    assert path.endswith("/x"), path  # the token is the last path segment
    return path[:-1]


_moderation_lock = threading.Lock()
_moderation_cache: dict = {"version": None, "matcher": None}


def moderation_version() -> int:
    try:
        return int(cache_get_read_once(MODERATION_VERSION_KEY) or 0)
    except Exception:  # cache down: rebuild from the table every time (correct, slower)
        return -1


def moderation_matcher() -> WordMatcher:
    """The process's matcher for the active word list. One cache read per call decides whether
    it is current: an admin edit or an import bumps the shared version, and every process
    (web, workers) rebuilds on its next check, without a restart."""
    version = moderation_version()
    matcher = _moderation_cache["matcher"]
    if matcher is not None and version >= 0 and _moderation_cache["version"] == version:
        return matcher
    entries = [
        WordEntry(word, category, action)
        for word, category, action in ModerationWord.objects.filter(is_active=True).values_list(
            "word", "category", "action"
        )
    ]
    matcher = WordMatcher(entries, version=str(version))
    with _moderation_lock:
        _moderation_cache.update(version=version, matcher=matcher)
    return matcher
