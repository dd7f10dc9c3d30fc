"""Prompt recordings for zero-shot cloning: validated once, stored as 16 kHz mono WAV."""

from __future__ import annotations

import hashlib
import io

import numpy as np

from tts.engine import audio

PROMPT_RATE = 16000
PROMPT_MIN_S = 3.0
PROMPT_MAX_S = 30.0
INSTRUCTION_MAX_CHARS = 100


class PromptError(ValueError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _decode_any(data: bytes) -> tuple[np.ndarray, int]:
    import av

    try:
        with av.open(io.BytesIO(data)) as container:
            if not container.streams.audio:
                raise PromptError("prompt_corrupt", "The recording has no audio stream.")
            stream = container.streams.audio[0]
            parts = []
            for frame in container.decode(stream):
                arr = frame.to_ndarray()
                if arr.dtype.kind == "i":
                    arr = arr.astype(np.float32) / float(np.iinfo(arr.dtype).max)
                parts.append(arr.reshape(frame.layout.nb_channels, -1).mean(axis=0))
            rate = stream.rate
    except PromptError:
        raise
    except Exception as exc:  # FFmpeg's errors are many; all mean "not a recording we can read"
        raise PromptError("prompt_corrupt", "The recording cannot be decoded.") from exc
    if not parts or not rate:
        raise PromptError("prompt_corrupt", "The recording cannot be decoded.")
    return np.concatenate(parts).astype(np.float32), int(rate)


def prepare_prompt(data: bytes) -> tuple[bytes, str, float]:
    """Any audio file -> (16 kHz mono 16-bit WAV bytes, sha256 of them, seconds).

    Raises PromptError for undecodable, silent, too short (< 3 s) or too long (> 30 s) input.
    """
    if not data:
        raise PromptError("prompt_corrupt", "The recording is empty.")
    samples, rate = _decode_any(data)
    seconds = len(samples) / rate
    if seconds < PROMPT_MIN_S:
        raise PromptError(
            "prompt_too_short", f"The recording is {seconds:.1f} s; at least {PROMPT_MIN_S:.0f} s."
        )
    if seconds > PROMPT_MAX_S:
        raise PromptError(
            "prompt_too_long", f"The recording is {seconds:.1f} s; at most {PROMPT_MAX_S:.0f} s."
        )
    if not np.all(np.isfinite(samples)) or float(np.sqrt(np.mean(samples**2))) < 1e-3:
        raise PromptError("prompt_silent", "The recording is silent.")
    mono16k = audio.resample(samples, rate, PROMPT_RATE) if rate != PROMPT_RATE else samples
    wav = audio.encode(np.clip(mono16k, -1, 1), sample_rate=PROMPT_RATE, fmt="wav")
    return wav, hashlib.sha256(wav).hexdigest(), seconds


def validate_instruction(text: str) -> str:
    text = (text or "").strip()
    if len(text) > INSTRUCTION_MAX_CHARS:
        raise PromptError(
            "instruction_too_long",
            f"The instruction has {len(text)} characters; at most {INSTRUCTION_MAX_CHARS}.",
        )
    return text
