"""Acoustic measurements for engine control tests (pitch, level), dev/test only.

Pitch uses Praat's autocorrelation tracker through praat-parselmouth (a self-contained wheel):
it is the reference tool of phonetics, handles voiced/unvoiced decisions itself and is far
more robust on real speech than a hand-rolled YIN.
"""

from __future__ import annotations

import numpy as np

# Range covering low male to high female/child voices; Praat needs the floor to size its
# analysis window (3 periods of the floor), so a lower floor only costs time resolution.
PITCH_FLOOR_HZ = 60.0
PITCH_CEILING_HZ = 600.0


def f0_track_hz(
    samples: np.ndarray,
    sample_rate: int,
    *,
    floor_hz: float = PITCH_FLOOR_HZ,
    ceiling_hz: float = PITCH_CEILING_HZ,
    time_step_s: float = 0.01,
) -> np.ndarray:
    """F0 of every voiced 10 ms frame in Hz (unvoiced frames are left out)."""
    import parselmouth

    x = np.asarray(samples, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {x.shape}")
    sound = parselmouth.Sound(x, sampling_frequency=sample_rate)
    pitch = sound.to_pitch_ac(time_step=time_step_s, pitch_floor=floor_hz, pitch_ceiling=ceiling_hz)
    f0 = pitch.selected_array["frequency"]
    return f0[f0 > 0]


def median_f0_hz(
    samples: np.ndarray,
    sample_rate: int,
    *,
    floor_hz: float = PITCH_FLOOR_HZ,
    ceiling_hz: float = PITCH_CEILING_HZ,
) -> float:
    """Median F0 over voiced frames. The median ignores octave jumps on a few frames.

    Raises ValueError when no frame is voiced (silence, noise): a pitch test on such audio
    should fail loudly rather than compare NaNs.
    """
    f0 = f0_track_hz(samples, sample_rate, floor_hz=floor_hz, ceiling_hz=ceiling_hz)
    if f0.size == 0:
        raise ValueError("no voiced frames found")
    return float(np.median(f0))


def rms(samples: np.ndarray) -> float:
    """Root mean square of the samples (linear; 0.0 for empty input)."""
    x = np.asarray(samples, dtype=np.float64)
    return float(np.sqrt(np.mean(x * x))) if x.size else 0.0


def rms_dbfs(samples: np.ndarray) -> float:
    """RMS in dB relative to full scale (a full-scale sine is -3.01 dBFS; silence is -inf)."""
    level = rms(samples)
    return float(20 * np.log10(level)) if level > 0 else float("-inf")


def active_duration_s(
    samples: np.ndarray, sample_rate: int, *, threshold_db: float = -35.0, frame_s: float = 0.02
) -> float:
    """Seconds of audio whose 20 ms frame RMS is within ``threshold_db`` of the loudest frame.

    Leading/trailing and inter-phrase silence do not count, so speaking-rate tests are not
    thrown off by how much padding the engine adds.
    """
    x = np.asarray(samples, dtype=np.float64)
    hop = max(1, int(frame_s * sample_rate))
    n = x.size // hop
    if n == 0:
        return 0.0
    frame_rms = np.sqrt(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1))
    loudest = frame_rms.max()
    if loudest == 0:
        return 0.0
    return float(
        np.count_nonzero(frame_rms >= loudest * 10 ** (threshold_db / 20)) * hop / sample_rate
    )
