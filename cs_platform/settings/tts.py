"""TTS engine settings."""

from .env import VAR_DIR, env

TTS_MODEL_DIR = env.path("TTS_MODEL_DIR", default=VAR_DIR / "models")
TTS_DEVICE = env.str("TTS_DEVICE", default="auto")  # auto | cpu | cuda
TTS_ENGINE = env.str("TTS_ENGINE", default="tts.adapters.BakerEngineAdapter")
TTS_MAX_TEXT_CHARS = env.int("TTS_MAX_TEXT_CHARS", default=2000)
TTS_TARGET_LUFS = env.float("TTS_TARGET_LUFS", default=-20.0)
