"""Which engine speaks a voice: the local Baker engine, or a remote one (IndexTTS2, CosyVoice,
the CosyVoice relay, an OpenAI-compatible server) behind a circuit breaker, a cross-worker
concurrency limit and a timeout, with the local voice as the fallback.

Remote engines receive text after our normaliser (and never our pinyin: none of their APIs
takes it), and their audio goes through the same loudness normalisation and resampling as
ours, so the rest of the pipeline (formats, clip cache, audit) cannot tell them apart.
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import F

from tts.engine.types import SAMPLE_RATE, Controls, SpeechAudio
from tts.models import RemoteVoiceSettings, Voice, VoiceEngine
from tts.remote.breaker import CircuitBreaker, CircuitOpen

logger = logging.getLogger(__name__)


def _clients():
    # The protocol clients and the resampler bring numpy and scipy: they load only where a
    # remote engine is really called (a worker), never in a web process serving cached clips.
    from tts.remote import clients

    return clients


def _audio():
    from tts.engine import audio

    return audio


breaker = CircuitBreaker(
    threshold=getattr(settings, "TTS_REMOTE_BREAKER_FAILURES", 3),
    cooldown=getattr(settings, "TTS_REMOTE_BREAKER_COOLDOWN_S", 30.0),
)

# What each remote engine takes as a per-request control (the rest is refused, not dropped).
SUPPORTED_CONTROLS = {
    VoiceEngine.INDEXTTS2: {"speed", "pitch"},
    VoiceEngine.OPENAI: {"speed"},
    VoiceEngine.COSYVOICE: set(),
    VoiceEngine.COSYVOICE_RELAY: set(),
}


class RemoteUnavailable(Exception):
    """The remote engine could not speak (after breaker, limit and timeout)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class UnsupportedControl(Exception):
    def __init__(self, engine: str, names: list[str]) -> None:
        super().__init__(
            f"{engine} cannot change {', '.join(names)}; remove it or use the local voice"
        )
        self.names = names


def remote_settings(voice: Voice | None) -> RemoteVoiceSettings | None:
    if voice is None:
        return None
    try:
        return voice.remote
    except RemoteVoiceSettings.DoesNotExist:
        return None


def remote_voice(cfg: RemoteVoiceSettings):
    return _clients().RemoteVoice(
        engine=cfg.engine,
        base_url=cfg.base_url,
        api_key=cfg.api_key,
        timeout=cfg.timeout_s,
        speaker=cfg.speaker,
        sample_rate=cfg.sample_rate,
        mode=cfg.mode,
        prompt_wav=bytes(cfg.prompt_audio or b""),
        prompt_text=cfg.prompt_text,
        prompt_prefix=cfg.prompt_prefix,
        model=cfg.model_name,
    )


@dataclass(frozen=True)
class RemotePlan:
    """Everything about one remote request that changes the sound (goes in the cache key)."""

    identity: str
    emotion: str  # the engine's label or instruction for the preset
    speed: float
    pitch: float


def plan_for(
    cfg: RemoteVoiceSettings, *, preset_name: str, controls: Controls, preset_controls: Controls
) -> RemotePlan:
    """Map the preset to the engine's emotion; per-request speed/pitch overrides go to the
    engine where it has them and are refused where it has not."""
    overrides = [
        name
        for name in ("speed", "pitch")
        if getattr(controls, name) != getattr(preset_controls, name)
    ]
    unsupported = [n for n in overrides if n not in SUPPORTED_CONTROLS.get(cfg.engine, set())]
    if unsupported:
        raise UnsupportedControl(cfg.get_engine_display(), unsupported)
    return RemotePlan(
        identity=remote_voice(cfg).identity(),
        emotion=cfg.emotion_for(preset_name),
        speed=controls.speed if "speed" in overrides else 1.0,
        pitch=controls.pitch if "pitch" in overrides else 0.0,
    )


@contextmanager
def _slot(cfg: RemoteVoiceSettings):
    """At most ``max_concurrency`` requests to this voice at once across all workers (a counter
    in the shared cache: Redis in production). Waits up to the voice's timeout for a slot."""
    key = f"tts:remote-slots:{cfg.pk}"
    deadline = time.monotonic() + cfg.timeout_s
    ttl = int(cfg.timeout_s * 2) + 5  # a crashed worker's slot frees itself
    while True:
        cache.add(key, 0, ttl)
        try:
            taken = cache.incr(key)
        except ValueError:  # expired between add and incr: try again
            continue
        if taken <= max(1, cfg.max_concurrency):
            break
        cache.decr(key)
        if time.monotonic() > deadline:
            raise RemoteUnavailable("busy", "all slots for this voice are in use")
        time.sleep(0.05)
    try:
        yield
    finally:
        try:
            cache.decr(key)
        except ValueError:  # the key expired meanwhile
            pass


def _count(cfg: RemoteVoiceSettings, *, ok: bool, latency_ms: int, error: str = "") -> None:
    RemoteVoiceSettings.objects.filter(pk=cfg.pk).update(
        calls=F("calls") + 1,
        errors=F("errors") + (0 if ok else 1),
        last_latency_ms=latency_ms,
        last_error="" if ok else error[:200],
    )


def _to_speech(samples, rate: int, text: str) -> SpeechAudio:
    # Same loudness and sample rate as the local voice: formats, cache and players agree.
    audio = _audio()
    if rate != SAMPLE_RATE:
        samples = audio.resample(samples, rate, SAMPLE_RATE)
    samples = audio.loudness_normalise(samples, SAMPLE_RATE)
    return SpeechAudio(samples=samples, sample_rate=SAMPLE_RATE, text=text)


def remote_speak(cfg: RemoteVoiceSettings, plan: RemotePlan, text: str) -> SpeechAudio:
    """One remote synthesis of normalised ``text``; RemoteUnavailable on any failure."""
    clients = _clients()
    key = f"voice:{cfg.pk}"
    started = time.perf_counter()
    try:
        breaker.before_call(key)
    except CircuitOpen as exc:
        raise RemoteUnavailable("circuit_open", str(exc)) from exc
    try:
        with _slot(cfg):
            out = clients.synthesize(
                remote_voice(cfg),
                text,
                speed=plan.speed,
                pitch=plan.pitch,
                emotion=plan.emotion,
                instruction=plan.emotion,
            )
    except (clients.RemoteEngineError, RemoteUnavailable) as exc:
        breaker.failure(key)
        code = getattr(exc, "code", "error")
        _count(cfg, ok=False, latency_ms=int((time.perf_counter() - started) * 1000), error=code)
        logger.warning("remote voice %s failed: %s", cfg.voice.engine_voice_id, code)
        raise RemoteUnavailable(code, str(exc)) from exc
    breaker.success(key)
    _count(cfg, ok=True, latency_ms=int((time.perf_counter() - started) * 1000))
    return _to_speech(out.samples, out.sample_rate, text)


def remote_stream_chunks(cfg: RemoteVoiceSettings, plan: RemotePlan, text: str):
    """Chunks of float32 samples at 24 kHz as the engine sends them: CosyVoice's as it renders
    them (not loudness-normalised: a chunk is too short to measure); other engines' whole
    answer at once, normalised like a cached clip."""
    clients = _clients()
    key = f"voice:{cfg.pk}"
    try:
        breaker.before_call(key)
    except CircuitOpen as exc:
        raise RemoteUnavailable("circuit_open", str(exc)) from exc
    voice = remote_voice(cfg)
    try:
        with _slot(cfg):
            if cfg.engine == VoiceEngine.COSYVOICE:
                for chunk in clients.stream(voice, text, instruction=plan.emotion):
                    if voice.sample_rate != SAMPLE_RATE:
                        chunk = _audio().resample(chunk, voice.sample_rate, SAMPLE_RATE)
                    yield chunk
            else:
                out = clients.synthesize(
                    voice,
                    text,
                    speed=plan.speed,
                    pitch=plan.pitch,
                    emotion=plan.emotion,
                    instruction=plan.emotion,
                )
                yield _to_speech(out.samples, out.sample_rate, text).samples
    except (clients.RemoteEngineError, RemoteUnavailable) as exc:
        breaker.failure(key)
        raise RemoteUnavailable(getattr(exc, "code", "error"), str(exc)) from exc
    breaker.success(key)


def remote_engines_status() -> dict:
    """For /readyz: each remote voice's breaker state and counts. A remote outage degrades one
    voice (it falls back to the local one); it never makes this process unready."""
    voices = {}
    degraded = False
    for cfg in RemoteVoiceSettings.objects.select_related("voice").filter(voice__is_active=True):
        state = breaker.state(f"voice:{cfg.pk}")
        degraded |= state != "closed"
        voices[cfg.voice.engine_voice_id] = {
            "engine": cfg.engine,
            "breaker": state,
            "calls": cfg.calls,
            "errors": cfg.errors,
            "last_latency_ms": cfg.last_latency_ms,
        }
    # "remote_engines" is a non-critical check: not ok -> /readyz says degraded, stays 200.
    return {"ok": not degraded, "voices": voices}
