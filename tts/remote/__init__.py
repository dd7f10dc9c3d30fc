"""Clients for speech engines that live on another box (pure Python, no Django).

- IndexTTS2 WebUI API: ``POST {base}/api/tts`` JSON -> WAV/MP3 bytes or ``{"audio": base64}``.
- CosyVoice runtime FastAPI server: form fields to ``/inference_sft``, ``/inference_zero_shot``,
  ``/inference_instruct2``; the answer is raw int16 LE mono PCM, streamed as it is produced.
- The seed design's CosyVoice relay: ``POST {base}/tts`` JSON -> ``{success, audio_url}``.
- Any OpenAI-compatible ``POST {base}/v1/audio/speech`` server (bearer key).

What each protocol looks like and where it was checked is in docs/engines.md.
"""

from importlib import import_module

# Loaded on first use (PEP 562): the clients need numpy and the prompt checks the audio code,
# and a web process that imports the breaker (tts.engines) must not load either.
_LAZY = {
    "CircuitBreaker": "breaker",
    "CircuitOpen": "breaker",
    "ENGINES": "clients",
    "RemoteAudio": "clients",
    "RemoteEngineError": "clients",
    "RemoteVoice": "clients",
    "stream": "clients",
    "synthesize": "clients",
    "PromptError": "prompt",
    "prepare_prompt": "prompt",
    "validate_instruction": "prompt",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_LAZY[name]}", __name__), name)
