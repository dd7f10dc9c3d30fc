"""Speech writes: render (or reuse) audio clips, record every request in the audit trail."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from common.cache import cache_read_once
from common.precompiled import PrecompiledQuery, model_insert
from common.redaction import traceback_summary
from common.tasks import task_enqueue
from tts import engines, handoff
from tts.adapters import engine_version, get_engine
from tts.budgets import (
    SpeechBudgetExceeded,
    budget_subject,
    clip_storage_enforce,
    speech_budget_charge,
    speech_slot,
)
from tts.engine.frontend import TextValidationError, lexicon_fingerprint, normalise_text
from tts.engine.types import (
    AUDIO_FORMATS,
    CONTENT_TYPES,
    MP3_BITRATE_KBPS,
    SAMPLE_RATE,
    ControlError,
    Controls,
    EngineUnavailable,
    SpeechAudio,
)
from tts.handoff import HandoffTimeout
from tts.models import (
    AudioClip,
    EmotionPreset,
    SynthesisRecord,
    SynthesisSource,
    SynthesisStatus,
    Voice,
)
from tts.selectors import (
    LEXICON_VERSION_KEY,
    MODERATION_VERSION_KEY,
    VOICE_VERSION_KEY,
    lexicon_current,
    voice_default,
)

logger = logging.getLogger(__name__)

SpeechControls = Controls  # the name callers outside the engine use


class SpeechTextRejected(Exception):
    """The text (or a control) cannot be spoken: a client error, never retried."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


class SpeechSynthesisFailed(Exception):
    """The engine is unavailable or crashed: a server-side failure, worth retrying later."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class SpeechResult:
    clip: AudioClip
    cache_hit: bool


@dataclass(frozen=True)
class _Request:
    """Everything that determines the sound of one clip, and its cache key."""

    text: str  # normalised
    voice: Voice
    emotion: str
    controls: Controls
    fmt: str
    lexicon: dict[str, list[str]]
    engine_version: str
    # A voice on a remote engine: its endpoint identity, emotion label/instruction and
    # controls. None for the local engine (and for a fallback rendition).
    remote: engines.RemotePlan | None = None
    # "" = the shared cache; "user:<id>" = one customer's own clips (see cache_scope_for).
    scope: str = ""

    @property
    def lexicon_fingerprint(self) -> str:
        return lexicon_fingerprint(self.lexicon)

    @property
    def cache_key(self) -> str:
        fields = {
            "text": self.text,
            "voice": self.voice.engine_voice_id,
            "controls": self.controls.as_dict(),
            "format": self.fmt,
            "lexicon": self.lexicon_fingerprint,
            "engine": self.engine_version,
        }
        if self.remote is not None:
            # engine + endpoint + speaker + prompt hash (identity), instruction, controls
            fields["remote"] = [
                self.remote.identity,
                self.remote.emotion,
                self.remote.speed,
                self.remote.pitch,
            ]
        if self.scope:  # only when set, so shared keys stay what they were
            fields["scope"] = self.scope
        material = json.dumps(fields, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(material.encode()).hexdigest()


def controls_for_preset(preset: EmotionPreset | None) -> Controls:
    if preset is None:
        return Controls()
    return Controls(
        speed=preset.speed, pitch=preset.pitch, energy=preset.energy, pause=preset.pause
    )


def _lexicon_for(text: str) -> dict[str, list[str]]:
    # Only the entries that occur in the text go into the key: editing 重庆 must not
    # invalidate every clip, only the ones that say 重庆.
    return {word: pinyin for word, pinyin in lexicon_current().items() if word in text}


def cache_scope_for(*, user, api_key_name: str = "") -> str:
    """The clip cache a request may read and fill.

    Staff, API keys and the platform itself (replies, precompute) share one cache. A customer's
    own /api/tts/ requests get a cache of their own: with a shared one, sending the exact text an
    agent spoke to someone else answered `hit` (and fast) - an oracle for other customers'
    conversations (a card number, one digit at a time). Canned phrases lose nothing that matters:
    a customer hears those through replies, which use the shared cache.
    """
    if api_key_name or user is None or not getattr(user, "is_authenticated", False):
        return ""
    if getattr(user, "is_staff", False):
        return ""
    return f"user:{user.pk}"


def _build_request(
    *,
    text: str,
    voice: Voice | None,
    preset: EmotionPreset | None,
    controls: Controls | None,
    fmt: str,
    scope: str = "",
) -> _Request:
    if fmt not in AUDIO_FORMATS:
        raise SpeechTextRejected("invalid_format", f"format must be one of {AUDIO_FORMATS}")
    if not isinstance(text, str) or not text.strip():
        raise SpeechTextRejected("empty", "文本为空 / The text is empty.")
    if len(text) > settings.TTS_MAX_TEXT_CHARS:
        raise SpeechTextRejected(
            "too_long", f"文本过长（最多 {settings.TTS_MAX_TEXT_CHARS} 字）/ The text is too long."
        )
    # The word list's, the lexicon's and the voices' version tokens in one round trip.
    with cache_read_once(MODERATION_VERSION_KEY, LEXICON_VERSION_KEY, VOICE_VERSION_KEY):
        return _build_request_checked(
            text=text, voice=voice, preset=preset, controls=controls, fmt=fmt, scope=scope
        )


def _build_request_checked(
    *,
    text: str,
    voice: Voice | None,
    preset: EmotionPreset | None,
    controls: Controls | None,
    fmt: str,
    scope: str,
) -> _Request:
    # Before anything is voiced: API, streaming, OpenAI-compatible and reply voicing alike.
    sensitive_text_check(text=text)
    try:
        version = engine_version()
    except EngineUnavailable as exc:
        raise SpeechSynthesisFailed(f"engine unavailable: {exc}") from exc
    normalised = normalise_text(text).strip()
    voice = voice or voice_default()
    controls = controls or controls_for_preset(preset)
    remote = None
    cfg = engines.remote_settings(voice)
    if cfg is not None:
        try:
            remote = engines.plan_for(
                cfg,
                preset_name=preset.name if preset else "",
                controls=controls,
                preset_controls=controls_for_preset(preset),
            )
        except engines.UnsupportedControl as exc:
            raise SpeechTextRejected("unsupported_control", str(exc)) from exc
    _check_clip_size(normalised, fmt)
    return _Request(
        text=normalised,
        voice=voice,
        emotion=preset.name if preset else "",
        controls=controls,
        fmt=fmt,
        lexicon=_lexicon_for(normalised),
        engine_version=version,
        remote=remote,
        scope=scope,
    )


# Bytes per second of audio by format (24 kHz mono: 16-bit WAV/PCM, 64 kbps MP3).
_BYTES_PER_SECOND = {
    "wav": 48000,
    "pcm": 48000,
    "flac": 30000,
    "mp3": MP3_BITRATE_KBPS * 125,
    "aac": 6000,
    "opus": 4000,
}
# Faster than the voice really speaks (about 5 characters a second after normalisation), so the
# estimate errs towards short and only clearly oversized clips are refused.
_CHARS_PER_SECOND_FAST = 6.0


def _check_clip_size(normalised: str, fmt: str) -> None:
    """WAV size sanity: refuse before any CPU is spent a clip that would be larger than
    TTS_MAX_CLIP_BYTES (2,000 digits as WAV was 19 MB)."""
    estimate = len(normalised) / _CHARS_PER_SECOND_FAST * _BYTES_PER_SECOND.get(fmt, 48000)
    if estimate > settings.TTS_MAX_CLIP_BYTES:
        raise SpeechTextRejected(
            "audio_too_large",
            "语音过长，请缩短文本或改用 mp3 / The audio would be too large: shorten the text "
            "or use mp3.",
        )


def _engine():
    """The loaded engine for a cache miss; an unloadable model is a (retryable) failure."""
    try:
        return get_engine()
    except EngineUnavailable as exc:
        raise SpeechSynthesisFailed(f"engine unavailable: {exc}") from exc


def _record(**fields) -> SynthesisRecord:
    # Every request writes one (a cache hit too): the statement is written once per process.
    return model_insert(_record_build(**fields))


def _record_build(
    *,
    text: str,
    request: _Request | None,
    source: str,
    user,
    client_ip: str | None,
    api_key_name: str,
    started: float,
    status: str,
    cache_hit: bool = False,
    error: str = "",
    clip: AudioClip | None = None,
    emotion: str = "",
    latency_ms: int | None = None,
    engine: str = "",
) -> SynthesisRecord:
    return SynthesisRecord(
        user=user if getattr(user, "is_authenticated", False) else None,
        api_key_name=api_key_name,
        source=source,
        # An excerpt for recognising the request in the audit log; the digest for matching.
        text_excerpt=text[:20],
        text_digest=hashlib.sha256(text.encode()).hexdigest(),
        text_length=len(text),
        voice=request.voice.engine_voice_id if request else "",
        emotion=request.emotion if request else emotion,
        controls=request.controls.as_dict() if request else {},
        cache_hit=cache_hit,
        engine=engine or (clip.engine if clip is not None else ""),
        latency_ms=(
            latency_ms if latency_ms is not None else int((time.perf_counter() - started) * 1000)
        ),
        status=status,
        error=error[:300],
        client_ip=client_ip,
        clip=clip,
    )


_CLIP_BY_KEY = PrecompiledQuery(
    AudioClip, lambda cache_key: AudioClip.objects.filter(cache_key=cache_key), cache_key=str
)


@functools.cache
def _clip_hit_sql() -> str:
    table = connection.ops.quote_name(AudioClip._meta.db_table)
    return (
        f"UPDATE {table} SET hit_count = hit_count + 1, last_used_at = %s "  # noqa: S608
        f"WHERE cache_key = %s RETURNING {_CLIP_BY_KEY.returning_columns()}"
    )


def _clip_lookup(cache_key: str) -> AudioClip | None:
    """The cached clip, its hit counted. One statement (UPDATE ... RETURNING, PostgreSQL and
    SQLite >= 3.35) instead of a SELECT and an UPDATE: this is every cache hit's path. Written
    once per process, and its row made into the object as a SELECT's would be."""
    with connection.cursor() as cursor:
        cursor.execute(
            _clip_hit_sql(),
            [connection.ops.adapt_datetimefield_value(timezone.now()), cache_key],
        )
        clips = _CLIP_BY_KEY.objects_from_rows(cursor.fetchall())
    return _clip_with_file(next(iter(clips), None))


def _clip_with_file(clip: AudioClip | None) -> AudioClip | None:
    """The clip, or None if its file went missing (restored database, lost volume): the row is
    forgotten so the clip is rendered again instead of failing every request that hits it."""
    if clip is not None and not clip.file.storage.exists(clip.file.name):
        logger.warning("audio clip %s has no file; rendering it again", clip.pk)
        AudioClip.objects.filter(pk=clip.pk).delete()
        return None
    return clip


@functools.cache
def _hit_and_audit_sql() -> tuple[str, tuple]:
    """One statement for a cache hit on PostgreSQL: count the hit and write its audit row
    (which names the clip and the engine that spoke it) from the clip row the UPDATE returns.
    Returns the clip's columns and the audit row's id; no row for a miss (and no audit row:
    the miss writes its own)."""
    quote = connection.ops.quote_name
    meta = SynthesisRecord._meta
    fields = tuple(f for f in meta.local_concrete_fields if not f.primary_key)
    from_hit = {
        meta.get_field("clip"): quote(AudioClip._meta.pk.column),
        meta.get_field("engine"): quote(AudioClip._meta.get_field("engine").column),
    }
    values = ", ".join(f"hit.{from_hit[f]}" if f in from_hit else "%s" for f in fields)
    columns = ", ".join(quote(f.column) for f in fields)
    record_pk = quote(meta.pk.column)
    sql = (
        f"WITH hit AS ({_clip_hit_sql()}), "  # noqa: S608
        f"audit AS (INSERT INTO {quote(meta.db_table)} ({columns}) SELECT {values} FROM hit "
        f"RETURNING {record_pk}) "
        f"SELECT hit.*, audit.{record_pk} FROM hit CROSS JOIN audit"
    )
    return sql, tuple(f for f in fields if f not in from_hit)


def _clip_hit_recorded(request: _Request, audit: dict) -> AudioClip | None:
    """The cached clip, its hit counted and audited in one round trip (PostgreSQL), or None.
    Every cache hit takes this path: it was two statements and a model save."""
    record = _record_build(**audit, request=request, status=SynthesisStatus.OK, cache_hit=True)
    sql, fields = _hit_and_audit_sql()
    params = [connection.ops.adapt_datetimefield_value(timezone.now()), request.cache_key]
    params += [f.get_db_prep_save(f.pre_save(record, True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    if not rows:
        return None
    *clip_row, record_id = rows[0]
    clip = _clip_with_file(_CLIP_BY_KEY.objects_from_rows([tuple(clip_row)])[0])
    if clip is None:
        # A miss after all, audited as such by the caller: this "hit" row goes.
        SynthesisRecord.objects.filter(pk=record_id).delete()
    return clip


def _encoders():
    # numpy, scipy and the MP3 encoder load only where audio is encoded (a cache miss, a
    # stream): a web process serving cached clips never needs them.
    from tts.engine import audio

    return audio


def _clip_store(request: _Request, speech: SpeechAudio, engine: str = "baker") -> AudioClip:
    data = _encoders().encode(speech.samples, sample_rate=speech.sample_rate, fmt=request.fmt)
    key = request.cache_key
    clip = AudioClip(
        cache_key=key,
        text=request.text,
        voice=request.voice,
        emotion=request.emotion,
        controls=request.controls.as_dict(),
        lexicon_fingerprint=request.lexicon_fingerprint,
        engine_version=request.engine_version,
        format=request.fmt,
        engine=engine,
        sample_rate=speech.sample_rate,
        duration_ms=speech.duration_ms,
        size_bytes=len(data),
        scope=request.scope,
    )
    clip.file.save(f"{key[:2]}/{key}.{request.fmt}", ContentFile(data), save=False)
    try:
        with transaction.atomic():
            clip.save()
    except IntegrityError:
        # Another worker rendered the same clip first: keep theirs, drop our file.
        clip.file.delete(save=False)
        return AudioClip.objects.get(cache_key=key)
    return clip


def speech_clip_get_or_create(
    *,
    text: str,
    preset: EmotionPreset | None = None,
    voice: Voice | None = None,
    controls: Controls | None = None,
    fmt: str | None = None,
    source: str = SynthesisSource.API,
    user=None,
    client_ip: str | None = None,
    api_key_name: str = "",
    cache_scope: str = "",
    render_on_worker: bool = False,
) -> SpeechResult:
    """Serve a clip from the cache or synthesise it. Every call lands in the audit trail.
    `cache_scope` (see cache_scope_for) keeps a customer's clips out of the shared cache.
    `render_on_worker`: a miss is rendered by a `tts` worker (web processes, see tts/handoff.py);
    otherwise here (workers themselves, embedded mode)."""
    started = time.perf_counter()
    fmt = fmt or settings.TTS_CLIP_FORMAT
    audit = dict(
        text=text if isinstance(text, str) else "",
        source=source,
        user=user,
        client_ip=client_ip,
        api_key_name=api_key_name,
        started=started,
    )
    request = None
    try:
        request = _build_request(
            text=text, voice=voice, preset=preset, controls=controls, fmt=fmt, scope=cache_scope
        )
        if connection.vendor == "postgresql":
            clip = _clip_hit_recorded(request, audit)
            if clip is not None:
                return SpeechResult(clip, cache_hit=True)
        else:
            clip = _clip_lookup(request.cache_key)
            if clip is not None:
                _record(**audit, request=request, status=SynthesisStatus.OK, cache_hit=True,
                        clip=clip)  # fmt: skip
                return SpeechResult(clip, cache_hit=True)
        # Only work counts: a cache hit above is free. Platform work (replies, precompute) is
        # staff-initiated and bounded elsewhere; requests from users and API keys are budgeted.
        subject = (
            budget_subject(user=user, api_key_name=api_key_name)
            if source in (SynthesisSource.API,)
            else ""
        )
        with speech_slot(subject=subject):
            speech_budget_charge(subject=subject, chars=len(request.text))
            if render_on_worker:
                clip, cache_hit, spoke = _render_on_worker(text, request, preset)
            else:
                clip, cache_hit, spoke = _render(text, request)
        if cache_hit:  # the fallback rendition was cached
            _record(**audit, request=request, status=SynthesisStatus.OK, cache_hit=True, clip=clip,
                    engine=spoke)  # fmt: skip
            return SpeechResult(clip, cache_hit=True)
        clip_storage_enforce(scope=request.scope)
    except SpeechBudgetExceeded as exc:
        _record(**audit, request=request, status=SynthesisStatus.REJECTED, error=exc.code)
        raise
    except SpeechTextRejected as exc:
        _record(**audit, request=request, status=SynthesisStatus.REJECTED, error=exc.code)
        raise
    except TextValidationError as exc:
        _record(**audit, request=request, status=SynthesisStatus.REJECTED, error=exc.code)
        raise SpeechTextRejected(exc.code, str(exc)) from exc
    except SpeechSynthesisFailed as exc:
        _record(**audit, request=request, status=SynthesisStatus.FAILED, error=exc.reason)
        raise
    except Exception as exc:
        # The engine crashed on this text: log the type and where, never the message (an
        # engine error may quote the text, which may be private), so no logger.exception.
        logger.error("synthesis failed: %s", traceback_summary(exc))
        _record(**audit, request=request, status=SynthesisStatus.FAILED, error=type(exc).__name__)
        raise SpeechSynthesisFailed(f"synthesis error: {type(exc).__name__}") from exc
    _record(
        **audit,
        request=request,
        status=SynthesisStatus.OK,
        cache_hit=False,
        clip=clip,
        engine=spoke,
    )
    return SpeechResult(clip, cache_hit=False)


def _render(text: str, request: _Request) -> tuple[AudioClip, bool, str]:
    """Synthesise a cache miss: (clip, served from cache, which engine spoke).

    A remote voice that fails (breaker open, busy, timeout, error, garbage audio) falls back to
    the local voice when its settings allow: that rendition is cached under its own key (never
    under the remote one, so the remote engine is asked again next time) and the clip and the
    audit record say "baker (fallback: <why>)".
    """
    if request.remote is None:
        speech = _engine().synthesize(
            text, controls=request.controls, lexicon=request.lexicon or None
        )
        return _clip_store(request, speech), False, "baker"
    cfg = request.voice.remote
    try:
        speech = engines.remote_speak(cfg, request.remote, request.text)
    except engines.RemoteUnavailable as exc:
        if not cfg.fallback_to_baker:
            raise SpeechSynthesisFailed(f"remote engine {cfg.engine}: {exc.code}") from exc
        spoke = f"baker (fallback: {exc.code})"
        local = replace(request, remote=None)
        clip = _clip_lookup(local.cache_key)
        if clip is not None:
            return clip, True, spoke
        speech = _engine().synthesize(text, controls=local.controls, lexicon=local.lexicon or None)
        return _clip_store(local, speech, engine="baker"), False, spoke
    return _clip_store(request, speech, engine=cfg.engine), False, cfg.engine


def _job_fields(text: str, request: _Request, preset: EmotionPreset | None) -> dict:
    """What a worker needs to build the same request again (ids, not objects)."""
    return {
        "text": text,
        "voice": request.voice.pk,
        "preset": preset.pk if preset is not None else None,
        "controls": request.controls.as_dict(),
        "fmt": request.fmt,
        "scope": request.scope,
    }


def _job_request(job: dict) -> _Request:
    preset = EmotionPreset.objects.filter(pk=job["preset"]).first() if job["preset"] else None
    return _build_request(
        text=job["text"],
        voice=Voice.objects.get(pk=job["voice"]),
        preset=preset,
        controls=Controls(**job["controls"]),
        fmt=job["fmt"],
        scope=job.get("scope", ""),
    )


def _outcome_raise(kind: bytes, payload: bytes) -> None:
    """A worker's refusal or failure, raised here as if the render had run in this process."""
    if kind == handoff.REJECTED:
        detail = json.loads(payload)
        raise SpeechTextRejected(detail["code"], detail["message"])
    if kind == handoff.FAILED:
        raise SpeechSynthesisFailed(json.loads(payload)["reason"])
    if kind not in (handoff.DONE, handoff.AUDIO):
        raise SpeechSynthesisFailed(f"unexpected hand-off item {kind!r}")


def _render_on_worker(
    text: str, request: _Request, preset: EmotionPreset | None
) -> tuple[AudioClip, bool, str]:
    """`_render` on a `tts` worker: publish the job, wait for its outcome on its channel."""
    from tts.tasks import speech_render_task  # tasks import this module

    job = handoff.job_new(**_job_fields(text, request, preset))
    if not task_enqueue(speech_render_task, job):
        raise SpeechSynthesisFailed("render queue unavailable")
    try:
        kind, payload = handoff.receive(job["channel"], timeout=settings.TTS_RENDER_WAIT_SECONDS)
    except HandoffTimeout as exc:
        handoff.cancel(job["channel"])
        raise SpeechSynthesisFailed("no worker rendered the clip in time") from exc
    _outcome_raise(kind, payload)
    done = json.loads(payload)
    return AudioClip.objects.get(pk=done["clip"]), done["cache_hit"], done["engine"]


@contextmanager
def _job_answered(job: dict) -> Iterator[bool]:
    """Around a worker's job: yields False when the job must not run (past its deadline, or
    cancelled: the web process has answered already); a refusal or failure inside goes back
    to the waiting web process as such. Never raises."""
    channel = job["channel"]
    if handoff.job_expired(job) or handoff.cancelled(channel):
        yield False
        return
    try:
        yield True
    except SpeechTextRejected as exc:
        handoff.send(channel, handoff.REJECTED, {"code": exc.code, "message": exc.message})
    except TextValidationError as exc:
        handoff.send(channel, handoff.REJECTED, {"code": exc.code, "message": str(exc)})
    except SpeechSynthesisFailed as exc:
        handoff.send(channel, handoff.FAILED, {"reason": exc.reason})
    except Exception as exc:
        # Type and place only: an engine error may quote the (private) text.
        logger.error("synthesis failed: %s", traceback_summary(exc))
        handoff.send(channel, handoff.FAILED, {"reason": f"synthesis error: {type(exc).__name__}"})


def speech_job_render(*, job: dict) -> None:
    """Worker side of `_render_on_worker`: render (or find) the clip, answer on the channel."""
    with _job_answered(job) as runs:
        if not runs:
            return
        request = _job_request(job)
        # Another job may have rendered the same text while this one waited in the queue.
        clip = _clip_lookup(request.cache_key)
        if clip is not None:
            clip_hit, spoke = True, clip.engine
        else:
            clip, clip_hit, spoke = _render(job["text"], request)
        payload = {"clip": clip.pk, "cache_hit": clip_hit, "engine": spoke}
        handoff.send(job["channel"], handoff.DONE, payload)


def speech_clips_precompute(
    *,
    items: list[tuple[str, EmotionPreset | None]],
    voice: Voice | None = None,
    fmt: str | None = None,
    source: str = SynthesisSource.PRECOMPUTE,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
) -> list[SpeechResult]:
    """Render many (text, emotion) pairs: cache hits are reused, misses go through the
    engine's batch API. Rejected texts are skipped (recorded), not fatal."""
    fmt = fmt or settings.TTS_CLIP_FORMAT
    results: list[SpeechResult] = []
    pending: list[tuple[str, _Request]] = []

    def flush() -> None:
        if not pending:
            return
        started = time.perf_counter()
        try:
            speeches = _engine().synthesize_batch(
                [text for text, _ in pending],
                controls=[req.controls for _, req in pending],
                lexicon=_merged_lexicon([req for _, req in pending]),
            )
        except (TextValidationError, ControlError, EngineUnavailable) as exc:
            raise SpeechSynthesisFailed(str(exc)) from exc
        for (text, req), speech in zip(pending, speeches, strict=True):
            clip = _clip_store(req, speech)
            _record(
                text=text,
                request=req,
                source=source,
                user=None,
                client_ip=None,
                api_key_name="",
                started=started,
                status=SynthesisStatus.OK,
                clip=clip,
            )
            results.append(SpeechResult(clip, cache_hit=False))
        pending.clear()

    for done, (text, preset) in enumerate(items, start=1):
        req = _precompute_request(text=text, preset=preset, voice=voice, fmt=fmt, source=source)
        if req is not None:
            clip = _clip_lookup(req.cache_key)
            if clip is not None:
                results.append(SpeechResult(clip, cache_hit=True))
            elif req.remote is not None:
                # a remote voice: one request each (its engine has no batch API)
                started = time.perf_counter()
                clip, hit, spoke = _render(text, req)
                _record(text=text, request=req, source=source, user=None, client_ip=None,
                        api_key_name="", started=started, status=SynthesisStatus.OK,
                        cache_hit=hit, clip=clip, engine=spoke)  # fmt: skip
                results.append(SpeechResult(clip, cache_hit=hit))
            elif req.cache_key not in {r.cache_key for _, r in pending}:
                pending.append((text, req))
            if len(pending) >= batch_size:
                flush()
        if progress:
            progress(done, len(items))
    flush()
    return results


def _precompute_request(
    *, text: str, preset: EmotionPreset | None, voice: Voice | None, fmt: str, source: str
) -> _Request | None:
    """The request for one precompute item, or None (recorded as rejected) if unspeakable."""
    try:
        req = _build_request(text=text, voice=voice, preset=preset, controls=None, fmt=fmt)
        _engine().utterances(text, lexicon=req.lexicon or None)  # validate before batching
    except (SpeechTextRejected, TextValidationError) as exc:
        _record(
            text=text,
            request=None,
            source=source,
            user=None,
            client_ip=None,
            api_key_name="",
            started=time.perf_counter(),
            status=SynthesisStatus.REJECTED,
            error=getattr(exc, "code", "invalid"),
        )
        return None
    return req


def _merged_lexicon(requests: list[_Request]) -> dict[str, list[str]] | None:
    merged: dict[str, list[str]] = {}
    for req in requests:
        merged.update(req.lexicon)
    return merged or None


def speech_stream_controls(
    *, preset: EmotionPreset | None, speed: float | None = None, pitch: float | None = None
) -> Controls:
    """Preset values with per-request overrides (API and streaming); raises SpeechTextRejected."""
    base = controls_for_preset(preset)
    try:
        return Controls(
            speed=base.speed if speed is None else speed,
            pitch=base.pitch if pitch is None else pitch,
            energy=base.energy,
            pause=base.pause,
        )
    except ControlError as exc:
        raise SpeechTextRejected("invalid_control", str(exc)) from exc


class SpeechStream:
    """One streamed reply: audio chunks as the engine renders each sentence, nothing cached.

    `chunks()` touches no database, so a consumer can drive it from any worker thread while the
    event loop stays free; `speech_stream_record` writes the audit row afterwards.
    """

    def __init__(self, *, request: _Request, text: str, audit: dict, job: dict | None = None):
        self.request = request
        self.text = text
        self.audit = audit
        # Set in web processes: the chunks are rendered by a `tts` worker (tts/handoff.py).
        self.job = job
        self.chunk_count = 0
        self.samples = 0
        self.sample_rate = SAMPLE_RATE
        self.first_chunk_ms: int | None = None
        self.engine = "baker"

    @property
    def content_type(self) -> str:
        if self.request.fmt == "pcm":
            return f"audio/L16;rate={self.sample_rate};channels=1;endianness=little-endian"
        return CONTENT_TYPES[self.request.fmt]

    @property
    def duration_ms(self) -> int:
        return round(self.samples * 1000 / self.sample_rate)

    def chunks(self) -> Iterator[bytes]:
        """Encoded audio, one chunk per utterance (MP3: whatever frames are complete), then the
        encoder's tail. Raises SpeechTextRejected / SpeechSynthesisFailed before any chunk."""
        if self.job is not None:
            yield from self._worker_chunks()
            return
        try:
            if self.request.remote is not None:
                remote = yield from self._remote_chunks()
                if remote:
                    return
            engine = get_engine()
            self.sample_rate = engine.sample_rate
            encoder = _encoders().StreamEncoder(self.request.fmt, sample_rate=engine.sample_rate)
            pieces = engine.stream(
                self.text, controls=self.request.controls, lexicon=self.request.lexicon or None
            )
            for piece in pieces:
                yield from self._emit(encoder.feed(piece.samples))
            yield from self._emit(encoder.finish())
            self.samples = encoder.samples_fed
        except TextValidationError as exc:
            raise SpeechTextRejected(exc.code, str(exc)) from exc
        except EngineUnavailable as exc:
            raise SpeechSynthesisFailed(f"engine unavailable: {exc}") from exc

    def _worker_chunks(self) -> Iterator[bytes]:
        """The chunks as a `tts` worker renders them (speech_job_stream). Closing this
        generator early (the listener left) tells the worker to stop."""
        from tts.tasks import speech_stream_task  # tasks import this module

        job = handoff.job_new(**self.job)
        if not task_enqueue(speech_stream_task, job):
            raise SpeechSynthesisFailed("render queue unavailable")
        finished = False
        try:
            while True:
                try:
                    kind, payload = handoff.receive(
                        job["channel"], timeout=settings.TTS_RENDER_WAIT_SECONDS
                    )
                except HandoffTimeout as exc:
                    raise SpeechSynthesisFailed("no worker rendered the stream in time") from exc
                if kind == handoff.AUDIO:
                    yield from self._emit(payload)
                    continue
                _outcome_raise(kind, payload)
                totals = json.loads(payload)
                self.samples = totals["samples"]
                self.sample_rate = totals["sample_rate"]
                self.engine = totals["engine"]
                finished = True
                return
        finally:
            if not finished:
                handoff.cancel(job["channel"])

    def _remote_chunks(self) -> Iterator[bytes]:
        """Relay a remote engine's audio chunk by chunk (CosyVoice streams as it renders).
        Returns False, before any audio, if the engine failed and the local voice should speak."""
        cfg = self.request.voice.remote
        encoder = _encoders().StreamEncoder(self.request.fmt, sample_rate=SAMPLE_RATE)
        self.sample_rate = SAMPLE_RATE
        try:
            for chunk in engines.remote_stream_chunks(cfg, self.request.remote, self.request.text):
                yield from self._emit(encoder.feed(chunk))
        except engines.RemoteUnavailable as exc:
            if self.chunk_count or not cfg.fallback_to_baker:
                raise SpeechSynthesisFailed(f"remote engine {cfg.engine}: {exc.code}") from exc
            self.engine = f"baker (fallback: {exc.code})"
            return False
        yield from self._emit(encoder.finish())
        self.samples = encoder.samples_fed
        self.engine = cfg.engine
        return True

    def _emit(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return  # the MP3 encoder may still be buffering a frame
        if self.first_chunk_ms is None:
            self.first_chunk_ms = int((time.perf_counter() - self.audit["started"]) * 1000)
        self.chunk_count += 1
        yield data


def speech_stream_open(
    *,
    text: str,
    preset: EmotionPreset | None = None,
    voice: Voice | None = None,
    controls: Controls | None = None,
    fmt: str = "mp3",
    source: str = SynthesisSource.STREAM,
    user=None,
    client_ip: str | None = None,
    api_key_name: str = "",
    render_on_worker: bool = False,
) -> SpeechStream:
    """Validate a streaming request and resolve voice, controls and lexicon (database reads).
    A rejected request is recorded and raises SpeechTextRejected. `render_on_worker`: the audio
    is rendered by a `tts` worker and relayed (web processes)."""
    audit = dict(
        text=text if isinstance(text, str) else "",
        source=source,
        user=user,
        client_ip=client_ip,
        api_key_name=api_key_name,
        started=time.perf_counter(),
    )
    try:
        request = _build_request(text=text, voice=voice, preset=preset, controls=controls, fmt=fmt)
    except SpeechTextRejected as exc:
        _record(**audit, request=None, status=SynthesisStatus.REJECTED, error=exc.code)
        raise
    except SpeechSynthesisFailed as exc:
        _record(**audit, request=None, status=SynthesisStatus.FAILED, error=exc.reason)
        raise
    job = _job_fields(text, request, preset) if render_on_worker else None
    return SpeechStream(request=request, text=text, audit=audit, job=job)


def speech_job_stream(*, job: dict) -> None:
    """Worker side of a relayed stream: each chunk onto the job's channel as it is rendered,
    then the totals. Stops when the web process cancels (its listener left)."""
    channel = job["channel"]
    with _job_answered(job) as runs:
        if not runs:
            return
        stream = SpeechStream(
            request=_job_request(job), text=job["text"], audit={"started": time.perf_counter()}
        )
        chunks = stream.chunks()
        for chunk in chunks:
            if handoff.cancelled(channel):
                chunks.close()
                return
            handoff.send(channel, handoff.AUDIO, chunk)
        handoff.send(
            channel,
            handoff.DONE,
            {"samples": stream.samples, "sample_rate": stream.sample_rate, "engine": stream.engine},
        )


def speech_stream_record(*, stream: SpeechStream, status: str, error: str = "") -> SynthesisRecord:
    """The stream's one audit row; its latency is the time to the first audio chunk, which is
    what a listener waits for (the total is bounded by the audio's own length)."""
    return _record(
        **stream.audit,
        request=stream.request,
        status=status,
        error=error,
        latency_ms=stream.first_chunk_ms,
        engine=stream.engine,
    )


CLIP_PRUNE_BATCH = 5_000


def _clips_stale_filter(*, older_than_days: int | None) -> Q:
    """Which clips no request can reach any more, as one filter (a few queries, not one per clip):
    another engine version, a lexicon entry edited since, a preset edited since, or (optionally)
    unused for N days."""
    current_version = engine_version()
    lexicon = lexicon_current()
    stale = ~Q(engine_version=current_version)
    # A clip's lexicon fingerprint covers only the entries its text uses, so a clip that uses
    # none must carry the empty fingerprint; the few that use some are checked one by one.
    uses_entry = Q()
    for word in lexicon:
        uses_entry |= Q(text__contains=word)
    wrong_for_no_entry = ~Q(lexicon_fingerprint=lexicon_fingerprint({}))
    stale |= (~uses_entry & wrong_for_no_entry) if lexicon else wrong_for_no_entry
    if lexicon:
        edited = [
            pk
            for pk, text, fingerprint in AudioClip.objects.filter(
                uses_entry, engine_version=current_version
            )
            .values_list("pk", "text", "lexicon_fingerprint")
            .iterator()
            if fingerprint != lexicon_fingerprint({w: p for w, p in lexicon.items() if w in text})
        ]
        stale |= Q(pk__in=edited)
    # A preset edited since: its clips no longer sound like the preset.
    for preset in EmotionPreset.objects.all():
        stale |= Q(emotion=preset.name) & ~Q(controls=controls_for_preset(preset).as_dict())
    if older_than_days:
        stale |= Q(last_used_at__lt=timezone.now() - timedelta(days=older_than_days))
    return stale


def clip_stale_delete(
    *, older_than_days: int | None = None, progress: Callable[[int], None] | None = None
) -> int:
    """Delete clips no request can reach any more (engine version, lexicon or preset changed),
    plus, optionally, clips unused for N days. Rows go in batches, each its own transaction, and a
    batch's files are removed only after its rows are committed: a crash can leave an orphan
    file, never a row pointing at a missing file."""
    # One scan decides what goes (the filter reads every clip); the deletes then walk that list.
    doomed = list(
        AudioClip.objects.filter(_clips_stale_filter(older_than_days=older_than_days))
        .order_by()
        .values_list("pk", "file")
    )
    storage = AudioClip._meta.get_field("file").storage
    deleted = 0
    for start in range(0, len(doomed), CLIP_PRUNE_BATCH):
        batch = doomed[start : start + CLIP_PRUNE_BATCH]
        with transaction.atomic():
            AudioClip.objects.filter(pk__in=[pk for pk, _name in batch]).delete()
        for _pk, name in batch:
            if name:
                storage.delete(name)
        deleted += len(batch)
        if progress:
            progress(deleted)
    return deleted


def voice_remote_save(
    *,
    slug: str,
    name: str,
    engine: str,
    url: str = "",
    api_key: str | None = None,
    speaker: str = "",
    sample_rate: int | None = None,
    mode: str | None = None,
    model_name: str | None = None,
    timeout_s: float | None = None,
    max_concurrency: int | None = None,
    prompt_audio: bytes | None = None,
    prompt_text: str | None = None,
    fallback_to_baker: bool | None = None,
) -> Voice:
    """Create or update a voice and where it is spoken. ``engine="baker"`` makes it local
    (any remote settings are removed). Raises ValidationError (field -> message) on bad input:
    a prompt recording that is corrupt or not 3-30 s, a missing URL, an unknown mode."""
    from django.core.exceptions import ValidationError

    from tts.models import RemoteVoiceSettings, VoiceEngine
    from tts.remote import PromptError, prepare_prompt

    if engine not in VoiceEngine.values:
        raise ValidationError({"engine": f"unknown engine {engine!r}; one of {VoiceEngine.values}"})
    with transaction.atomic():
        voice, _ = Voice.objects.update_or_create(
            engine_voice_id=slug, defaults={"display_name": name}
        )
        if engine == VoiceEngine.BAKER:
            RemoteVoiceSettings.objects.filter(voice=voice).delete()
            return voice
        cfg = RemoteVoiceSettings.objects.filter(voice=voice).first() or RemoteVoiceSettings(
            voice=voice
        )
        cfg.engine = engine
        cfg.base_url = url or cfg.base_url
        if api_key is not None:
            cfg.api_key = api_key
        cfg.speaker = speaker or cfg.speaker
        for attr, value in (
            ("sample_rate", sample_rate),
            ("mode", mode),
            ("model_name", model_name),
            ("timeout_s", timeout_s),
            ("max_concurrency", max_concurrency),
            ("prompt_text", prompt_text),
            ("fallback_to_baker", fallback_to_baker),
        ):
            if value is not None:
                setattr(cfg, attr, value)
        if prompt_audio is not None:
            try:
                wav, digest, _seconds = prepare_prompt(prompt_audio)
            except PromptError as exc:
                raise ValidationError({"prompt_audio": exc.message}, code=exc.code) from exc
            cfg.prompt_audio, cfg.prompt_sha256 = wav, digest
        if engine == VoiceEngine.COSYVOICE and cfg.mode != "sft" and not cfg.prompt_audio:
            raise ValidationError({"prompt_audio": "zero_shot/instruct2 need a prompt recording"})
        if engine == VoiceEngine.COSYVOICE and cfg.mode == "zero_shot" and not cfg.prompt_text:
            raise ValidationError({"prompt_text": "zero_shot needs the prompt recording's text"})
        for preset, value in (cfg.emotion_map or {}).items():
            if len(str(value)) > 100:
                raise ValidationError({"emotion_map": f"{preset}: instruction over 100 characters"})
        cfg.full_clean()
        cfg.save()
    return voice


VOICE_TEST_TEXT = "您好，这是一段试听语音，订单号幺二三四。"


def voice_remote_test(
    *, voice: Voice, text: str = VOICE_TEST_TEXT, render_on_worker: bool = False
) -> dict:
    """Speak a sample on the voice's own engine, bypassing the cache and the fallback (试听):
    {ok, engine, latency_ms, samples?, sample_rate?, error?}. Counted in the voice's stats.
    `render_on_worker`: the local voice speaks on a `tts` worker (web processes) and its audio
    comes back as a relayed PCM stream (`samples` is then 16-bit little-endian PCM bytes)."""
    cfg = engines.remote_settings(voice)
    started = time.perf_counter()
    if cfg is None and render_on_worker:
        try:
            stream = speech_stream_open(text=text, voice=voice, fmt="pcm", render_on_worker=True)
            pcm = b"".join(stream.chunks())
        except (SpeechTextRejected, SpeechSynthesisFailed) as exc:
            error = getattr(exc, "reason", None) or getattr(exc, "message", str(exc))
            latency_ms = int((time.perf_counter() - started) * 1000)
            return {"ok": False, "engine": "baker", "latency_ms": latency_ms, "error": error}
        return {
            "ok": True,
            "engine": stream.engine,
            "latency_ms": int((time.perf_counter() - started) * 1000),
            "samples": pcm,
            "sample_rate": stream.sample_rate,
        }
    if cfg is None:
        speech = _engine().synthesize(text)
        engine, error = "baker", ""
    else:
        plan = engines.plan_for(
            cfg, preset_name="", controls=Controls(), preset_controls=Controls()
        )
        try:
            speech = engines.remote_speak(cfg, plan, normalise_text(text))
            engine, error = cfg.engine, ""
        except engines.RemoteUnavailable as exc:
            speech, engine, error = None, cfg.engine, str(exc)
    result = {
        "ok": speech is not None,
        "engine": engine,
        "latency_ms": int((time.perf_counter() - started) * 1000),
    }
    if speech is None:
        result["error"] = error
    else:
        result.update(samples=speech.samples, sample_rate=speech.sample_rate)
    return result


def _clip_restore_speech(clip: AudioClip) -> SpeechAudio:
    controls = Controls(**clip.controls)
    if clip.engine == "baker":
        return _engine().synthesize(
            clip.text, controls=controls, lexicon=_lexicon_for(clip.text) or None
        )
    # A remote voice's clip is spoken again by that engine, never by the local voice under
    # the remote clip's name (the cache key promises that sound). No fallback here.
    cfg = engines.remote_settings(clip.voice)
    if cfg is None or cfg.engine != clip.engine:
        raise engines.RemoteUnavailable("engine_changed", f"voice no longer on {clip.engine}")
    preset = EmotionPreset.objects.filter(name=clip.emotion).first() if clip.emotion else None
    plan = engines.plan_for(
        cfg,
        preset_name=clip.emotion,
        controls=controls,
        preset_controls=controls_for_preset(preset),
    )
    return engines.remote_speak(cfg, plan, clip.text)


def clip_file_restore(*, clip_id: int) -> AudioClip | None:
    """Render a clip whose file the storage lost (restored database, emptied bucket, lost
    volume) again under the same name, so every message and URL pointing at the row works
    again. Idempotent: a clip whose file exists is left alone."""
    clip = AudioClip.objects.select_related("voice").filter(pk=clip_id).first()
    if clip is None or clip.file.storage.exists(clip.file.name):
        return clip
    try:
        speech = _clip_restore_speech(clip)
    except Exception as exc:
        logger.error("clip %s not restored: %s", clip.pk, traceback_summary(exc))
        raise SpeechSynthesisFailed(f"restore failed: {type(exc).__name__}") from exc
    data = _encoders().encode(speech.samples, sample_rate=speech.sample_rate, fmt=clip.format)
    # Same name: file_overwrite on S3; on disk the name is free because the file is gone.
    saved = clip.file.storage.save(clip.file.name, ContentFile(data))
    if saved != clip.file.name:
        AudioClip.objects.filter(pk=clip.pk).update(file=saved, size_bytes=len(data))
        clip.file.name = saved
    logger.warning("audio clip %s had no file; rendered it again", clip.pk)
    return clip


# --- moderation -------------------------------------------------------------------------------


def text_moderate(*, text: str):
    """The sensitive-word verdict on ``text`` (a tts.moderation.ModerationResult)."""
    from tts.selectors import moderation_matcher

    return moderation_matcher().check(text or "")


def moderation_words_import(
    *, lines: Iterable[str], category: str = "default", action: str = "mask"
) -> dict[str, int]:
    """Import `word[<TAB>category[<TAB>action]]` lines (blank lines and # comments skipped).

    Existing words are updated; one transaction, one version bump (the post_save signal
    fires per row but the bump happens once per commit hook, cheaply).
    """
    from tts.models import ModerationAction, ModerationWord

    valid_actions = set(ModerationAction.values)
    if action not in valid_actions:
        raise ValueError(f"action must be one of {sorted(valid_actions)}")
    rows: dict[str, tuple[str, str]] = {}
    for number, raw in enumerate(lines, start=1):
        line = raw.strip().lstrip("\ufeff")
        if not line or line.startswith("#"):
            continue
        parts = [p.strip() for p in line.split("\t")]
        word = parts[0]
        row_category = parts[1] if len(parts) > 1 and parts[1] else category
        row_action = parts[2] if len(parts) > 2 and parts[2] else action
        if row_action not in valid_actions:
            raise ValueError(
                f"line {number}: action {row_action!r} is not one of {sorted(valid_actions)}"
            )
        if len(word) > 64 or len(row_category) > 32:
            raise ValueError(f"line {number}: word or category too long")
        rows[word] = (row_category, row_action)
    created = updated = 0
    with transaction.atomic():
        existing = {w.word: w for w in ModerationWord.objects.filter(word__in=list(rows))}
        new = []
        for word, (row_category, row_action) in rows.items():
            current = existing.get(word)
            if current is None:
                new.append(ModerationWord(word=word, category=row_category, action=row_action))
            elif (current.category, current.action, current.is_active) != (
                row_category,
                row_action,
                True,
            ):
                current.category, current.action, current.is_active = row_category, row_action, True
                current.save(update_fields=["category", "action", "is_active", "updated_at"])
                updated += 1
        ModerationWord.objects.bulk_create(new, batch_size=1000)
        created = len(new)
        from tts.signals import moderation_version_bump

        # bulk_create sends no post_save: bump once for the whole import.
        transaction.on_commit(moderation_version_bump)
    return {"created": created, "updated": updated}


def sensitive_text_check(*, text: str) -> None:
    """Refuse text with a `block` word: raise SpeechTextRejected("sensitive_text")."""
    result = text_moderate(text=text)
    if result.blocked:
        raise SpeechTextRejected(
            "sensitive_text",
            "文本包含敏感词，不能合成 / The text contains blocked words: "
            + ", ".join(result.categories),
        )


def recognition_record(
    *,
    event: str,
    user=None,
    message_id: int | None = None,
    conversation_id: int | None = None,
    audio_format: str = "",
    size_bytes: int = 0,
    duration_ms: int = 0,
    latency_ms: int = 0,
    transcript_length: int = 0,
    flagged: bool = False,
    error: str = "",
    client_ip: str | None = None,
):
    from tts.models import RecognitionRecord

    return RecognitionRecord.objects.create(
        event=event,
        user=user if getattr(user, "is_authenticated", False) else None,
        message_id=message_id,
        conversation_id=conversation_id,
        audio_format=audio_format[:8],
        size_bytes=size_bytes,
        duration_ms=duration_ms,
        latency_ms=latency_ms,
        transcript_length=transcript_length,
        flagged=flagged,
        error=error[:300],
        client_ip=client_ip,
    )
