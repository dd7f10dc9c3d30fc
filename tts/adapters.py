"""The thin adapter between Django settings and the engine: one engine per process.

Loaded lazily on first use (or at Celery worker start, see tts/signals.py), never at import:
a web process that never speaks never pays for the model, and a forked worker never inherits
a CUDA context.
"""

import logging
import threading
from pathlib import Path

from django.conf import settings
from django.utils.module_loading import import_string

from tts.engine.interface import SpeechEngine
from tts.engine.types import WEIGHTS_FILE, EngineConfig, EngineUnavailable, engine_version_of
from tts.installer import voice_dir

logger = logging.getLogger(__name__)

_engine: SpeechEngine | None = None
_engine_error: str | None = None
_lock = threading.Lock()


def baker_engine_factory() -> SpeechEngine:
    # Imported here, not at the top: torch comes with it, and only processes that synthesise
    # (Celery workers, `make run`) may pay for it. Web processes serve cached clips.
    from tts.engine.synthesizer import load

    return load(
        EngineConfig(
            model_dir=voice_dir(Path(settings.TTS_MODEL_DIR)),
            device=settings.TTS_DEVICE,
            target_lufs=settings.TTS_TARGET_LUFS,
            max_text_chars=settings.TTS_MAX_TEXT_CHARS,
            num_threads=settings.TTS_NUM_THREADS,
        )
    )


def get_engine() -> SpeechEngine:
    """The process's engine; raises EngineUnavailable (with the reason) if it cannot load."""
    global _engine, _engine_error
    if _engine is not None:
        return _engine
    with _lock:
        if _engine is None:
            try:
                _engine = import_string(settings.TTS_ENGINE)()
                _engine_error = None
            except EngineUnavailable as exc:
                _engine_error = str(exc)
                logger.error("TTS engine unavailable: %s", exc)
                raise
    return _engine


_BAKER_FACTORY = "tts.adapters.baker_engine_factory"


def engine_version() -> str:
    """The engine version for cache keys, without loading the model when it can be read from
    the model files (raises EngineUnavailable if they are missing)."""
    if _engine is not None:
        return _engine.engine_version
    if settings.TTS_ENGINE == _BAKER_FACTORY:
        return engine_version_of(voice_dir(Path(settings.TTS_MODEL_DIR)))
    return get_engine().engine_version


def reset_engine() -> None:
    """Forget the loaded engine (tests, or after reinstalling the model)."""
    global _engine, _engine_error
    with _lock:
        _engine, _engine_error = None, None


def engine_status() -> dict:
    """For /readyz. A process that has loaded the engine reports the engine's own status; one
    that has not (a web process: it serves cached clips and queues synthesis for the workers)
    checks the model files without loading the model, so a probe never pulls torch in."""
    if _engine is not None:
        return {"ok": True, **_engine.status()}
    try:
        version = engine_version()
        if settings.TTS_ENGINE == _BAKER_FACTORY:
            weights = voice_dir(Path(settings.TTS_MODEL_DIR)) / WEIGHTS_FILE
            if not weights.is_file():
                raise EngineUnavailable(f"missing model file: {weights}")
    except EngineUnavailable as exc:
        return {"ok": False, "detail": str(exc)[:200]}
    return {"ok": True, "loaded": False, "engine_version": version}


# --- speech recognition -----------------------------------------------------------------------
# Same rule as the TTS engine: the recogniser loads on the first transcription in a process
# (a Celery `asr` worker, or the in-process task under `make run`), never at import, so web
# processes that only accept uploads never hold the model.


def asr_recognizer():
    from tts.asr.recognizer import RecognizerConfig, recognizer_get

    return recognizer_get(
        RecognizerConfig(
            model_dir=Path(settings.ASR_MODEL_DIR),
            device=settings.ASR_DEVICE,
            cpu_threads=settings.ASR_CPU_THREADS,
            beam_size=settings.ASR_BEAM_SIZE,
        )
    )


def asr_limits():
    from tts.asr.decoding import AudioLimits

    return AudioLimits(
        max_bytes=settings.ASR_MAX_BYTES,
        max_seconds=settings.ASR_MAX_SECONDS,
        min_sample_rate=settings.ASR_MIN_SAMPLE_RATE,
        max_sample_rate=settings.ASR_MAX_SAMPLE_RATE,
    )
