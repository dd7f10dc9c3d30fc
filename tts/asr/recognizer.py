"""faster-whisper (CTranslate2) recogniser: loaded once per process, used from any thread.

int8 on CPU; float16 on CUDA (``device="cuda"``). Silero VAD (shipped inside faster-whisper)
cuts silence first, so a silent upload costs almost nothing and yields an empty transcript.
Output is converted to Simplified Chinese with OpenCC: Whisper often answers zh in
Traditional characters.

Short messages are encoded over a short window: Whisper pads every input to 30 s, so a 3 s voice
note paid for 30 s of encoder (CPU real-time factor 0.39 here). CTranslate2's encoder accepts
fewer frames; with at least 10 s of window the round trip's CER is unchanged (0.107 vs 0.113 over
32 sentences, same run) at a quarter of the CPU (RTF 0.093): bench/README.md.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from tts.asr.decoding import TARGET_RATE

# huggingface_hub reads this at import; with a local model directory no hub call should
# happen anyway, and this makes an accidental one fail fast instead of hanging offline.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

# Whisper's decoder context is 448 tokens per 30 s window, shared by the prompt (our domain
# prompt after <|startofprev|>, at most 223 tokens) and <|startoftranscript|><|zh|><|transcribe|>
# <|notimestamps|>; the rest is the room for the transcript. A fixed 220 cut a 25 s message's
# transcript by a third (bench/README.md), so the room is computed per call.
_DECODER_CONTEXT = 448
_PROMPT_MAX = _DECODER_CONTEXT // 2 - 1
_SPECIAL_TOKENS = 4
# Mandarin runs at ~4-6 syllables/s and Whisper spends 1-3 tokens per hanzi: more than 20 tokens
# per second of audio is a decoder looping on itself, not speech.
_TOKENS_PER_SECOND = 20


class RecognizerUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class RecognizerConfig:
    model_dir: Path
    device: str = "cpu"  # "cpu" | "cuda"
    cpu_threads: int = 2
    beam_size: int = 5


@dataclass(frozen=True)
class Transcript:
    text: str  # Simplified Chinese, stripped; "" when nothing was recognised
    speech_seconds: float  # audio left after VAD
    audio_seconds: float
    elapsed_seconds: float

    @property
    def empty(self) -> bool:
        return not self.text


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    return _t2s().convert(text)


# Encoder window for a partly filled 30 s chunk: its content plus 1 s, at least 10 s (shorter
# windows cost accuracy: CER 0.19 at 3 s in the same bench), never more than Whisper's 3000 frames.
_FULL_WINDOW_FRAMES = 3000
_MIN_WINDOW_FRAMES = 1000
_WINDOW_STEP_FRAMES = 100


def encoder_window_frames(features: np.ndarray) -> int:
    """How many frames of a padded chunk to encode. faster-whisper pads each chunk's log-mel
    features to 3000 frames with exact zeros; a frame of real audio (even digital silence, which
    normalises to -1.5) is never all zeros, so the last non-zero frame ends the content."""
    columns = np.flatnonzero(np.any(features.reshape(-1, features.shape[-1]) != 0, axis=0))
    content = int(columns[-1]) + 1 if columns.size else 0
    padded = -(-content // _WINDOW_STEP_FRAMES) * _WINDOW_STEP_FRAMES + _WINDOW_STEP_FRAMES
    return min(features.shape[-1], _FULL_WINDOW_FRAMES, max(_MIN_WINDOW_FRAMES, padded))


def _short_window_model(model_class):
    """A WhisperModel whose encoder sees only the part of a chunk that holds audio."""

    class ShortWindowWhisperModel(model_class):
        def encode(self, features):
            return super().encode(features[..., : encoder_window_frames(features)])

    return ShortWindowWhisperModel


class WhisperRecognizer:
    def __init__(self, config: RecognizerConfig):
        model_dir = Path(config.model_dir)
        if not (model_dir / "model.bin").is_file() or not (model_dir / "config.json").is_file():
            raise RecognizerUnavailable(
                f"no CTranslate2 Whisper model in {model_dir}: run `manage.py asr_install_model`"
                " or point ASR_MODEL_DIR at one"
            )
        from faster_whisper import WhisperModel

        compute_type = "float16" if config.device == "cuda" else "int8"
        self.config = config
        self._model = _short_window_model(WhisperModel)(
            str(model_dir),
            device=config.device,
            compute_type=compute_type,
            cpu_threads=config.cpu_threads,
            num_workers=1,
            local_files_only=True,
        )
        # CTranslate2 models are not re-entrant per call in our usage; one decode at a time.
        self._lock = threading.Lock()

    def _max_new_tokens(self, prompt: str, audio_seconds: float) -> int:
        """What one window may generate: all the context the prompt leaves, bounded by the
        audio's length (faster-whisper refuses a prompt + max_new_tokens over 448)."""
        prompt_tokens = 0
        if prompt.strip():
            encoded = self._model.hf_tokenizer.encode(
                " " + prompt.strip(), add_special_tokens=False
            )
            prompt_tokens = 1 + min(len(encoded.ids), _PROMPT_MAX)  # + <|startofprev|>
        room = _DECODER_CONTEXT - _SPECIAL_TOKENS - prompt_tokens
        return max(1, min(room, int(_TOKENS_PER_SECOND * audio_seconds) + 20))

    def transcribe(self, samples: np.ndarray, *, prompt: str = "") -> Transcript:
        """Transcribe 16 kHz mono float32 Mandarin. Deterministic (beam search, temperature 0)."""
        samples = np.asarray(samples, dtype=np.float32)
        audio_seconds = samples.size / TARGET_RATE
        started = time.perf_counter()
        if samples.size < TARGET_RATE // 10:
            return Transcript("", 0.0, audio_seconds, 0.0)
        with self._lock:
            segments, info = self._model.transcribe(
                samples,
                language="zh",
                task="transcribe",
                beam_size=self.config.beam_size,
                temperature=0.0,
                initial_prompt=prompt or None,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=True,
                vad_parameters={"min_silence_duration_ms": 500, "speech_pad_ms": 300},
                max_new_tokens=self._max_new_tokens(prompt, audio_seconds),
            )
            text = "".join(segment.text for segment in segments).strip()
        speech = float(getattr(info, "duration_after_vad", audio_seconds) or 0.0)
        return Transcript(
            text=to_simplified(text),
            speech_seconds=speech,
            audio_seconds=audio_seconds,
            elapsed_seconds=time.perf_counter() - started,
        )


_lock = threading.Lock()
_loaded: dict[RecognizerConfig, WhisperRecognizer] = {}


def recognizer_get(config: RecognizerConfig) -> WhisperRecognizer:
    """The process-wide recogniser for ``config``; the model loads on first use only."""
    with _lock:
        if config not in _loaded:
            _loaded[config] = WhisperRecognizer(config)
        return _loaded[config]
