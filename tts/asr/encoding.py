"""Encode float audio into every upload format we accept: for tests and the round-trip bench.

The same shapes the clients send: WAV 16-bit, MP3 (lameenc), AAC in M4A and raw ADTS (what
``wx.getRecorderManager`` writes), raw 16-bit PCM, WeChat SILK v3 (``pilk``, Tencent header),
and MediaRecorder's WebM/Ogg Opus (PyAV's bundled libopus).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile

import numpy as np

# format -> (sample rate the client records at, extension)
CLIENT_RATES = {
    "wav": 16000,
    "mp3": 16000,
    "m4a": 16000,
    "aac": 16000,
    "pcm": 16000,
    "silk": 16000,
    "webm": 48000,
    "ogg": 48000,
}
ROUND_TRIP_FORMATS = tuple(CLIENT_RATES)


def _to_rate(samples: np.ndarray, rate: int, to_rate: int) -> np.ndarray:
    if rate == to_rate:
        return np.asarray(samples, dtype=np.float32)
    from scipy.signal import resample_poly

    g = np.gcd(rate, to_rate)
    return resample_poly(samples, to_rate // g, rate // g).astype(np.float32)


def _int16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype("<i2")


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    data = pcm.tobytes()
    header = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    header += b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate * 2, 2, 16)
    return header + b"data" + struct.pack("<I", len(data)) + data


def _av_encode(pcm: np.ndarray, rate: int, container: str, codec: str, bit_rate: int) -> bytes:
    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format=container) as box:
        stream = box.add_stream(codec, rate=rate)
        stream.layout = "mono"
        stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in stream.encode(frame):
            box.mux(packet)
        for packet in stream.encode(None):
            box.mux(packet)
    return out.getvalue()


def _silk(pcm: np.ndarray, rate: int) -> bytes:
    import pilk

    with tempfile.TemporaryDirectory(prefix="silk-") as tmp:
        src, dst = os.path.join(tmp, "in.pcm"), os.path.join(tmp, "out.silk")
        with open(src, "wb") as f:
            f.write(pcm.tobytes())
        pilk.encode(src, dst, pcm_rate=rate, tencent=True)
        with open(dst, "rb") as f:
            return f.read()


def encode_as(samples: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    """``samples`` (float mono) -> the bytes a client would upload as ``fmt``."""
    rate = CLIENT_RATES[fmt]
    pcm = _int16(_to_rate(samples, sample_rate, rate))
    if fmt == "wav":
        return wav_bytes(pcm, rate)
    if fmt == "pcm":
        return pcm.tobytes()
    if fmt == "mp3":
        import lameenc

        enc = lameenc.Encoder()
        enc.set_bit_rate(48)
        enc.set_in_sample_rate(rate)
        enc.set_channels(1)
        enc.set_quality(2)
        return bytes(enc.encode(pcm.tobytes()) + enc.flush())
    if fmt == "m4a":
        return _av_encode(pcm, rate, "mp4", "aac", 48000)
    if fmt == "aac":
        return _av_encode(pcm, rate, "adts", "aac", 48000)
    if fmt == "webm":
        return _av_encode(pcm, rate, "webm", "libopus", 32000)
    if fmt == "ogg":
        return _av_encode(pcm, rate, "ogg", "libopus", 32000)
    if fmt == "silk":
        return _silk(pcm, rate)
    raise ValueError(f"unknown format {fmt!r}")
