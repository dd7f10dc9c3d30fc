"""TTS engine settings."""

from pathlib import Path

from .env import VAR_DIR, env

TTS_MODEL_DIR = Path(env.str("TTS_MODEL_DIR", default=str(VAR_DIR / "models")))
TTS_DEVICE = env.str("TTS_DEVICE", default="auto")  # auto | cpu | cuda
TTS_MAX_TEXT_CHARS = env.int("TTS_MAX_TEXT_CHARS", default=2000)
TTS_TARGET_LUFS = env.float("TTS_TARGET_LUFS", default=-20.0)
TTS_ENGINE = env.str("TTS_ENGINE", default="tts.adapters.baker_engine_factory")
TTS_NUM_THREADS = env.int("TTS_NUM_THREADS", default=0) or None
TTS_CLIP_FORMAT = env.str("TTS_CLIP_FORMAT", default="mp3")
TTS_AUDIO_URL_TTL_SECONDS = env.int("TTS_AUDIO_URL_TTL_SECONDS", default=3600)
TTS_RATE_LIMIT = env.str("TTS_RATE_LIMIT", default="10/m")
# Work limits per user / API key (tts/budgets.py): characters synthesised per window (cache
# hits are free; "" = no budget), syntheses at once (0 = no cap), and clip sizes and storage.
TTS_CHAR_BUDGET = env.str("TTS_CHAR_BUDGET", default="6000/h")
TTS_MAX_CONCURRENT_PER_USER = env.int("TTS_MAX_CONCURRENT_PER_USER", default=1)
TTS_MAX_CLIP_BYTES = env.int("TTS_MAX_CLIP_BYTES", default=5 * 1024 * 1024)
TTS_USER_CLIP_STORAGE_BYTES = env.int("TTS_USER_CLIP_STORAGE_BYTES", default=20 * 1024 * 1024)
TTS_CLIP_STORAGE_BYTES = env.int("TTS_CLIP_STORAGE_BYTES", default=2 * 1024 * 1024 * 1024)
READINESS_EXTRA_CHECKS = {
    "tts": "tts.adapters.engine_status",
    # Not configured = no customer can log in: a configuration error, not ready.
    "wechat": "accounts.wechat.wechat_status",
    # Non-critical (common/health.py): a remote voice down makes /readyz "degraded", never 503.
    "remote_engines": "tts.engines.remote_engines_status",
}
# Remote voices: failures in a row before the breaker opens, and seconds before it probes.
TTS_REMOTE_BREAKER_FAILURES = env.int("TTS_REMOTE_BREAKER_FAILURES", default=3)
TTS_REMOTE_BREAKER_COOLDOWN_S = env.float("TTS_REMOTE_BREAKER_COOLDOWN_S", default=30.0)
