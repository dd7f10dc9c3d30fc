"""Validate the pitch/level measurements on signals with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.signal import lfilter

from tts.engine.audio import resample
from tts.tests.audio_measure import active_duration_s, median_f0_hz, rms, rms_dbfs

pytest.importorskip("parselmouth")

SR = 24000


def _vowel(f0: float, seconds: float, sr: int = SR, *, seed: int = 0) -> np.ndarray:
    """Pulse train at ``f0`` (with slight vibrato and jitter) through two vowel formants."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    inst_f0 = f0 * (1 + 0.02 * np.sin(2 * np.pi * 5 * t))
    phase = np.cumsum(inst_f0) / sr
    pulses = (np.diff(np.floor(phase), prepend=0) > 0).astype(np.float64)
    x = pulses
    for formant, bandwidth in ((700, 130), (1200, 70)):  # roughly /a/
        r = np.exp(-np.pi * bandwidth / sr)
        theta = 2 * np.pi * formant / sr
        x = lfilter([1 - r], [1, -2 * r * np.cos(theta), r * r], x)
    x += 0.002 * rng.standard_normal(x.size)  # breath noise
    return (0.3 * x / np.max(np.abs(x))).astype(np.float32)


@pytest.mark.parametrize("f0", [90.0, 150.0, 220.0, 400.0])
def test_median_f0_of_harmonic_tone(f0):
    t = np.arange(SR) / SR
    x = sum(np.sin(2 * np.pi * k * f0 * t) / k for k in range(1, 8)).astype(np.float32)
    assert median_f0_hz(x, SR) == pytest.approx(f0, rel=0.01)


def test_median_f0_of_synthetic_vowel_ignores_silence_gaps():
    voiced = _vowel(180.0, 0.6)
    gap = np.zeros(int(0.3 * SR), dtype=np.float32)
    x = np.concatenate([gap, voiced, gap, voiced, gap])
    assert median_f0_hz(x, SR) == pytest.approx(180.0, rel=0.02)


@pytest.mark.parametrize("factor", [0.8, 1.25, 1.5])
def test_pitch_shift_by_resampling_is_measured(factor):
    # Playing audio faster by ``factor`` (resample to sr/factor, label as sr) multiplies F0.
    x = _vowel(160.0, 1.5, seed=1)
    shifted = resample(x, SR, round(SR / factor))
    ratio = median_f0_hz(shifted, SR) / median_f0_hz(x, SR)
    assert ratio == pytest.approx(factor, rel=0.02)


def test_median_f0_rejects_unvoiced_audio():
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1
    with pytest.raises(ValueError):
        median_f0_hz(np.zeros(SR, dtype=np.float32), SR)
    with pytest.raises(ValueError):
        median_f0_hz(noise, SR)


def test_rms_and_dbfs():
    t = np.arange(SR) / SR
    sine = 0.5 * np.sin(2 * np.pi * 100 * t)
    assert rms(sine) == pytest.approx(0.5 / np.sqrt(2), rel=1e-4)
    assert rms_dbfs(sine / 0.5) == pytest.approx(-3.0103, abs=1e-3)
    assert rms(np.zeros(10)) == 0.0 and rms(np.zeros(0)) == 0.0
    assert rms_dbfs(np.zeros(10)) == float("-inf")
    assert rms(2 * sine) == pytest.approx(2 * rms(sine))


def test_active_duration_excludes_silence():
    voiced = _vowel(200.0, 0.5)
    x = np.concatenate(
        [np.zeros(SR, dtype=np.float32), voiced, np.zeros(SR // 2, np.float32), voiced]
    )
    assert active_duration_s(x, SR) == pytest.approx(1.0, abs=0.05)
    assert active_duration_s(np.zeros(SR), SR) == 0.0
