"""Clients for speech engines that live on another box (pure Python, no Django).

- IndexTTS2 WebUI API: ``POST {base}/api/tts`` JSON -> WAV/MP3 bytes or ``{"audio": base64}``.
- CosyVoice runtime FastAPI server: form fields to ``/inference_sft``, ``/inference_zero_shot``,
  ``/inference_instruct2``; the answer is raw int16 LE mono PCM, streamed as it is produced.
- The seed design's CosyVoice relay: ``POST {base}/tts`` JSON -> ``{success, audio_url}``.
- Any OpenAI-compatible ``POST {base}/v1/audio/speech`` server (bearer key).

What each protocol looks like and where it was checked is in docs/engines.md.
"""

from .breaker import CircuitBreaker, CircuitOpen
from .clients import (
    ENGINES,
    RemoteAudio,
    RemoteEngineError,
    RemoteVoice,
    stream,
    synthesize,
)
from .prompt import PromptError, prepare_prompt, validate_instruction

__all__ = [
    "ENGINES",
    "CircuitBreaker",
    "CircuitOpen",
    "PromptError",
    "RemoteAudio",
    "RemoteEngineError",
    "RemoteVoice",
    "prepare_prompt",
    "stream",
    "synthesize",
    "validate_instruction",
]
