"""Tests for tts.engine.audio: loudness, resampling, encoding round trips, streaming."""

from __future__ import annotations

import base64
import io
import wave

import numpy as np
import pyloudnorm
import pytest

from tts.engine import audio
from tts.engine.audio import (
    MP3_DECODER_DELAY,
    MP3_FRAME_SAMPLES,
    SAMPLE_RATE,
    StreamEncoder,
    decode,
    duration_ms,
    encode,
    encode_base64,
    loudness_normalise,
    resample,
)


def _speechlike(seconds: float, sr: int = SAMPLE_RATE, *, level: float = 0.1, seed: int = 0):
    """Harmonic 'vowels' with a syllable-rate envelope and a bit of noise: speech-ish dynamics."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f0 = 180 + 30 * np.sin(2 * np.pi * 0.7 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    x = sum(np.sin(k * phase) / k for k in range(1, 12))
    env = 0.5 * (1 - np.cos(2 * np.pi * 4 * t)) ** 2
    x = x * env + 0.01 * rng.standard_normal(t.size)
    return (level * x / np.max(np.abs(x))).astype(np.float32)


def _lufs(x: np.ndarray, sr: int = SAMPLE_RATE) -> float:
    return pyloudnorm.Meter(sr).integrated_loudness(x.astype(np.float64))


def _peak_dbfs(x: np.ndarray) -> float:
    return 20 * np.log10(np.max(np.abs(x)))


# --- loudness -----------------------------------------------------------------------------


@pytest.mark.parametrize("level", [0.01, 0.1, 0.5])
def test_loudness_normalise_reaches_target_from_any_level(level):
    x = _speechlike(2.0, level=level)
    y = loudness_normalise(x, SAMPLE_RATE, target_lufs=-20.0)
    assert y.dtype == np.float32
    assert y.shape == x.shape
    assert _lufs(y) == pytest.approx(-20.0, abs=0.1)
    assert _peak_dbfs(y) <= -1.0 + 1e-3


def test_loudness_normalise_does_not_modify_input():
    x = _speechlike(1.0, level=0.05)
    before = x.copy()
    loudness_normalise(x, SAMPLE_RATE)
    np.testing.assert_array_equal(x, before)


def test_peak_ceiling_wins_over_loudness_target():
    # A sparse click train is very peaky: reaching -10 LUFS would need peaks far above 0 dBFS.
    x = np.zeros(SAMPLE_RATE, dtype=np.float32)
    x[:: SAMPLE_RATE // 10] = 0.05
    x += 0.001 * np.sin(2 * np.pi * 200 * np.arange(x.size) / SAMPLE_RATE).astype(np.float32)
    y = loudness_normalise(x, SAMPLE_RATE, target_lufs=-10.0)
    assert _peak_dbfs(y) == pytest.approx(-1.0, abs=0.01)
    assert _lufs(y) < -10.0 - 3


def test_silence_is_returned_unchanged():
    z = np.zeros(SAMPLE_RATE, dtype=np.float32)
    np.testing.assert_array_equal(loudness_normalise(z, SAMPLE_RATE), z)
    tiny = np.full(SAMPLE_RATE, 1e-6, dtype=np.float32)  # -120 dBFS: treated as silence
    np.testing.assert_array_equal(loudness_normalise(tiny, SAMPLE_RATE), tiny)
    empty = np.zeros(0, dtype=np.float32)
    assert loudness_normalise(empty, SAMPLE_RATE).size == 0


def test_short_clip_uses_rms_fallback_and_lands_near_target():
    short = _speechlike(0.25, level=0.02)  # < 400 ms: pyloudnorm cannot measure it
    y = loudness_normalise(short, SAMPLE_RATE, target_lufs=-20.0)
    assert y.dtype == np.float32
    # The fallback ignores K-weighting; check it against the same clip measured by BS.1770
    # after repeating it to a measurable length: within 2 dB.
    tiled = np.tile(y, 8)
    assert _lufs(tiled) == pytest.approx(-20.0, abs=2.0)
    assert _peak_dbfs(y) <= -1.0 + 1e-3


def test_loudness_normalise_rejects_stereo():
    with pytest.raises(ValueError):
        loudness_normalise(np.zeros((100, 2), dtype=np.float32), SAMPLE_RATE)


# --- resample / duration --------------------------------------------------------------------


def test_resample_24k_to_16k_keeps_pitch_and_length():
    sr = SAMPLE_RATE
    t = np.arange(sr) / sr
    x = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    y = resample(x, sr, 16000)
    assert y.dtype == np.float32
    assert y.size == 16000
    spectrum = np.abs(np.fft.rfft(y * np.hanning(y.size)))
    assert np.argmax(spectrum) * 16000 / y.size == pytest.approx(440, abs=1.5)
    np.testing.assert_array_equal(resample(x, sr, sr), x)


def test_duration_ms():
    assert duration_ms(np.zeros(24000), 24000) == 1000
    assert duration_ms(np.zeros(30), 24000) == 1  # 1.25 ms
    assert duration_ms(np.zeros(42), 24000) == 2  # 1.75 ms
    assert duration_ms(np.zeros(16000 * 3 // 2), 16000) == 1500


# --- encode / decode round trips ------------------------------------------------------------


def _best_lag(reference: np.ndarray, decoded: np.ndarray, max_lag: int) -> int:
    m = reference.size - max_lag
    scores = [float(np.dot(reference[:m], decoded[k : k + m])) for k in range(max_lag)]
    return int(np.argmax(scores))


@pytest.mark.parametrize("fmt", ["wav", "pcm"])
@pytest.mark.parametrize("n", [1, 1000, 24001])
def test_lossless_formats_round_trip_exactly(fmt, n):
    x = _speechlike(n / SAMPLE_RATE + 0.001, level=0.5)[:n]
    data = encode(x, sample_rate=SAMPLE_RATE, fmt=fmt)
    y, sr = decode(data, fmt)
    assert sr == SAMPLE_RATE
    assert y.size == n
    # 16-bit quantisation only: half an LSB.
    assert np.max(np.abs(y - x)) <= 0.5 / 32767 + 1e-7


def test_wav_is_a_standard_16bit_mono_file():
    x = _speechlike(0.5)
    data = encode(x, sample_rate=16000, fmt="wav")
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, 16000)
        assert w.getnframes() == x.size
    assert len(data) == 44 + 2 * x.size


def test_pcm_is_little_endian_int16_and_clips_out_of_range():
    data = encode(np.array([0.0, 1.0, -1.0, 1.7, -3.0], dtype=np.float32), sample_rate=1, fmt="pcm")
    assert np.frombuffer(data, dtype="<i2").tolist() == [0, 32767, -32767, 32767, -32767]


@pytest.mark.parametrize("sr", [SAMPLE_RATE, 16000])
@pytest.mark.parametrize("n", [100, 1000, 24000, 24001, 57600])
def test_mp3_round_trip_sample_count_and_alignment(sr, n):
    x = _speechlike(n / sr + 0.01, sr, level=0.5)[:n]
    data = encode(x, sample_rate=sr, fmt="mp3")
    assert data[:2] == b"\xff\xf3"  # MPEG-2 layer III frame sync, no ID3/Xing prefix
    y, out_sr = decode(data, "mp3")
    assert out_sr == sr
    # LAME emits ceil((n + delay) / 576) frames; after the delay is stripped the decoded
    # stream is n plus less than one frame of padding.
    assert n <= y.size < n + MP3_FRAME_SAMPLES
    assert y.size + MP3_DECODER_DELAY == MP3_FRAME_SAMPLES * -(-(n + MP3_DECODER_DELAY) // 576)
    exact, _ = decode(data, "mp3", num_samples=n)
    assert exact.size == n


def test_mp3_delay_constant_aligns_decoded_audio_with_input():
    x = _speechlike(1.5, level=0.5)
    data = encode(x, sample_rate=SAMPLE_RATE, fmt="mp3")
    y, _ = decode(data, "mp3", num_samples=x.size)
    assert _best_lag(x, y, 200) == 0  # any residual delay would show as a positive lag
    # Lossy but close: the error is well below the signal (SNR > 15 dB at 64 kbps).
    snr = 10 * np.log10(np.sum(x**2) / np.sum((x - y) ** 2))
    assert snr > 15


def test_encode_base64_matches_encode():
    x = _speechlike(0.3)
    for fmt in ("wav", "mp3", "pcm"):
        b64 = encode_base64(x, sample_rate=SAMPLE_RATE, fmt=fmt)
        assert base64.b64decode(b64) == encode(x, sample_rate=SAMPLE_RATE, fmt=fmt)


def test_unknown_format_is_rejected():
    with pytest.raises(ValueError):
        encode(np.zeros(10), sample_rate=SAMPLE_RATE, fmt="ogg")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        StreamEncoder("flac")  # type: ignore[arg-type]


def test_content_types():
    assert audio.CONTENT_TYPES["wav"] == "audio/wav"
    assert audio.CONTENT_TYPES["mp3"] == "audio/mpeg"
    assert audio.CONTENT_TYPES["pcm"].startswith("audio/L16;rate=24000")
    assert StreamEncoder("pcm", sample_rate=16000).content_type.startswith("audio/L16;rate=16000")


# --- streaming ------------------------------------------------------------------------------


def _chunks(x: np.ndarray, sizes=(1, 577, 4800, 3, 12000)):
    start, i = 0, 0
    while start < x.size:
        size = sizes[i % len(sizes)]
        yield x[start : start + size]
        start += size
        i += 1


def test_stream_mp3_concatenates_to_same_stream_as_one_shot():
    x = _speechlike(2.0, level=0.5)
    enc = StreamEncoder("mp3")
    stream = b"".join(enc.feed(c) for c in _chunks(x)) + enc.finish()
    assert enc.samples_fed == x.size
    # One encoder across chunks: byte-identical to encoding the whole reply at once.
    assert stream == encode(x, sample_rate=SAMPLE_RATE, fmt="mp3")
    y, _ = decode(stream, "mp3", num_samples=x.size)
    assert y.size == x.size
    assert enc.finish() == b""
    with pytest.raises(RuntimeError):
        enc.feed(x[:10])


@pytest.mark.parametrize("fmt", ["pcm", "wav"])
def test_stream_lossless_formats_decode_to_input(fmt):
    x = _speechlike(1.0, level=0.5)
    enc = StreamEncoder(fmt)
    parts = [enc.feed(c) for c in _chunks(x)]
    stream = b"".join(parts) + enc.finish()
    y, sr = decode(stream, fmt)
    assert sr == SAMPLE_RATE
    assert y.size == x.size
    assert np.max(np.abs(y - x)) <= 0.5 / 32767 + 1e-7
    if fmt == "wav":
        assert parts[0][:4] == b"RIFF" and b"RIFF" not in b"".join(parts[1:])
        with wave.open(io.BytesIO(stream)) as w:  # the stdlib reader accepts the open-ended header
            assert w.getframerate() == SAMPLE_RATE


def test_stream_wav_without_audio_is_an_empty_file():
    enc = StreamEncoder("wav")
    y, _ = decode(enc.finish(), "wav")
    assert y.size == 0
