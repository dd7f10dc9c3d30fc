"""The engine's vocabulary, importable without torch (or numpy): the controls and their ranges,
the result and voice types, the errors, the configuration and the cache-key version.

This is the boundary the Django side speaks: `tts.models` takes its control ranges from
`LIMITS`, services build `Controls`, and a web process that serves cached clips reads the
version with `engine_version_of` without loading the model (or torch).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal, get_args

if TYPE_CHECKING:
    import numpy as np

SYNTHESIZER_VERSION = "1"
CONFIG_FILE = "config.json"  # the model directory: config (see checkpoint.py) ...
WEIGHTS_FILE = "model.safetensors"  # ... and the torch checkpoint
SAMPLE_RATE: Final = 24000
# One loudness for every reply so consecutive answers do not jump in volume (see audio.py).
DEFAULT_TARGET_LUFS: Final = -20.0

MP3_BITRATE_KBPS: Final = 64  # plenty for 24 kHz mono speech; ~8 kB per second of audio

AudioFormat = Literal["wav", "mp3", "pcm", "opus", "aac", "flac"]
AUDIO_FORMATS: Final[tuple[str, ...]] = get_args(AudioFormat)
# audio/L16 is big-endian by RFC 2586, but browsers' Web Audio code and every TTS API we mimic
# send little-endian; the explicit ``endianness`` parameter removes the ambiguity.
CONTENT_TYPES: Final[dict[str, str]] = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "pcm": f"audio/L16;rate={SAMPLE_RATE};channels=1;endianness=little-endian",
    "opus": "audio/ogg; codecs=opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
}


# The one definition of the controls' ranges: engine validation, the database constraints on
# emotion presets and every API serializer read them from here.
LIMITS = {"speed": (0.5, 2.0), "pitch": (-6.0, 6.0), "energy": (0.5, 1.5), "pause": (0.5, 2.0)}


class ControlError(ValueError):
    """A control value is out of range."""

    def __init__(self, name: str, value: float) -> None:
        low, high = LIMITS[name]
        self.name = name
        super().__init__(f"{name} must be between {low} and {high}, got {value}")


class EngineUnavailable(RuntimeError):
    """The model could not be loaded (missing or corrupt files); synthesis is impossible."""


@dataclass(frozen=True)
class Controls:
    speed: float = 1.0  # > 1 speaks faster
    pitch: float = 0.0  # semitones
    energy: float = 1.0  # loudness factor around the common target
    pause: float = 1.0  # scales pauses (sil and prosody breaks)

    def __post_init__(self) -> None:
        for name, (low, high) in LIMITS.items():
            value = getattr(self, name)
            if not isinstance(value, int | float) or math.isnan(value) or not low <= value <= high:
                raise ControlError(name, value)

    def as_dict(self) -> dict[str, float]:
        # Not dataclasses.asdict (a recursive deep copy): every synthesis request, a cached
        # one too, builds this twice (cache key, audit row).
        return {name: round(float(getattr(self, name)), 4) for name in LIMITS}


@dataclass(frozen=True)
class EngineConfig:
    model_dir: Path
    device: str = "auto"  # auto | cpu | cuda
    half_on_cuda: bool = True
    num_threads: int | None = None  # None: all cores of the host
    target_lufs: float = DEFAULT_TARGET_LUFS
    max_text_chars: int = 2000
    max_utterance_chars: int = 40
    warm_up: bool = True


@dataclass
class SpeechAudio:
    samples: np.ndarray  # float32 mono in [-1, 1]
    sample_rate: int
    text: str = ""

    @property
    def duration_ms(self) -> int:
        return round(1000 * len(self.samples) / self.sample_rate)


@dataclass(frozen=True)
class VoiceInfo:
    voice_id: str
    display_name: str
    language: str = "zh-CN"
    sample_rate: int = SAMPLE_RATE


def engine_version_of(model_dir: Path) -> str:
    """The version that goes into every audio cache key, read without loading the model (a web
    process serving cached clips never needs the weights in memory)."""
    try:
        config_bytes = (Path(model_dir) / CONFIG_FILE).read_bytes()
    except OSError as exc:
        raise EngineUnavailable(f"missing model file: {Path(model_dir) / CONFIG_FILE}") from exc
    return f"baker-{hashlib.sha256(config_bytes).hexdigest()[:12]}-s{SYNTHESIZER_VERSION}"
