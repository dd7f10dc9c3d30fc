"""Audio output: loudness normalisation, resampling and encoding of synthesised speech.

The engine produces mono float32 samples in [-1, 1] at ``SAMPLE_RATE``. Everything here works on
that representation and turns it into bytes for the API (WAV, MP3, raw PCM; Ogg/Opus, AAC (ADTS)
and FLAC for OpenAI-compatible clients), either in one go or chunk by chunk for streaming (WAV,
MP3, PCM). Plain numpy/scipy plus small wheels (pyloudnorm, lameenc; PyAV, whose wheels bundle
FFmpeg's libraries, for Opus/AAC/FLAC; miniaudio only for decoding) — no Django, no system
binaries.
"""

from __future__ import annotations

import base64
import io
import struct
import wave
from typing import Final

import lameenc
import numpy as np
import pyloudnorm
from scipy.signal import resample_poly

from .types import (
    AUDIO_FORMATS,
    CONTENT_TYPES,
    DEFAULT_TARGET_LUFS,
    MP3_BITRATE_KBPS,
    SAMPLE_RATE,
    AudioFormat,
)

# Formats, content types, the rate and the loudness target are the engine vocabulary: defined in
# the torch- and numpy-free `types` module (web processes read them), re-exported here.
from .wav import pcm16_wav

# Formats StreamEncoder can emit chunk by chunk (the others are encoded whole).
STREAM_FORMATS: Final[tuple[str, ...]] = ("wav", "mp3", "pcm")
# PyAV container and codec per format; bit rates for the lossy ones suit 24 kHz mono speech.
_AV_CODECS: Final[dict[str, tuple[str, str, int | None]]] = {
    "opus": ("ogg", "libopus", 32000),
    "aac": ("adts", "aac", 48000),
    "flac": ("flac", "flac", None),
}

# One loudness for every reply so consecutive answers do not jump in volume. -20 LUFS sits
# between broadcast speech (-23) and streaming platforms (-14/-16), leaving headroom for peaks.
# Sample-peak ceiling applied after the loudness gain: the gain is reduced rather than clipping.
PEAK_CEILING_DBFS: Final = -1.0
# Below this RMS level the signal is treated as silence: amplifying it to -20 LUFS would only
# blow up noise (or the vocoder's hiss) by 60+ dB.
SILENCE_RMS_DBFS: Final = -70.0
# pyloudnorm's gating block (BS.1770) is 400 ms; shorter clips cannot be measured by it.
_LOUDNORM_BLOCK_S: Final = 0.400

# LAME's quality knob (0 best/slowest .. 9 worst/fastest); 2 is LAME's "recommended high
# quality" and still encodes 3 s of 24 kHz audio in well under 10 ms on one core.
MP3_QUALITY: Final = 2
# Samples a decoder outputs before the first input sample when decoding lameenc output:
# LAME's encoder delay (576) + the MP3 synthesis filterbank delay (529). lameenc writes no
# Xing/LAME info frame, so decoders cannot learn this (or the end padding) from the stream;
# ``decode`` strips it. Measured with miniaudio (dr_mp3) at 16 and 24 kHz, and asserted in tests.
MP3_DECODER_DELAY: Final = 576 + 529
# MPEG-2 layer III (16/22.05/24 kHz) frames carry 576 samples. After stripping the delay a
# decoded stream is ``n + pad`` samples with ``0 <= pad < MP3_FRAME_SAMPLES`` (LAME emits
# ceil((n + delay) / 576) frames); pass ``num_samples`` to ``decode`` to get exactly ``n``.
MP3_FRAME_SAMPLES: Final = 576


def duration_ms(samples: np.ndarray, sample_rate: int) -> int:
    """Length of ``samples`` in whole milliseconds (rounded to nearest)."""
    return round(1000 * len(samples) / sample_rate)


def _as_mono_float32(samples: np.ndarray) -> np.ndarray:
    arr = np.asarray(samples, dtype=np.float32)
    if arr.ndim != 1:
        raise ValueError(f"expected mono 1-D samples, got shape {arr.shape}")
    return arr


def loudness_normalise(
    samples: np.ndarray, sample_rate: int, *, target_lufs: float = DEFAULT_TARGET_LUFS
) -> np.ndarray:
    """Scale ``samples`` to ``target_lufs`` integrated loudness (ITU-R BS.1770 via pyloudnorm).

    - Clips shorter than one 400 ms gating block cannot be measured by BS.1770; for those the
      loudness is approximated from the plain mean square (``-0.691 + 10*log10(ms)``, i.e. the
      BS.1770 formula without K-weighting or gating). For speech the K-weighting shifts the
      level by only ~1 dB, which is inaudible on a one-word reply.
    - Silence (or a level below ``SILENCE_RMS_DBFS``, or a gated loudness of -inf) is returned
      unchanged: there is nothing to normalise and a huge gain would only amplify noise.
    - The gain is then capped so the sample peak stays at or below ``PEAK_CEILING_DBFS``;
      peaky clips therefore end up quieter than the target instead of clipping.

    Returns a new float32 array; the input is not modified.
    """
    x = _as_mono_float32(samples)
    if x.size == 0:
        return x.copy()
    x64 = x.astype(np.float64)
    mean_square = float(np.mean(x64 * x64))
    if mean_square <= 0.0 or 10 * np.log10(mean_square) < SILENCE_RMS_DBFS:
        return x.copy()

    if x.size >= _LOUDNORM_BLOCK_S * sample_rate:
        loudness = float(pyloudnorm.Meter(sample_rate).integrated_loudness(x64))
    else:
        loudness = -0.691 + 10 * np.log10(mean_square)
    if not np.isfinite(loudness):
        # Every block fell under BS.1770's absolute gate (-70 LUFS): effectively silence.
        return x.copy()

    gain = 10 ** ((target_lufs - loudness) / 20)
    peak = float(np.max(np.abs(x64)))
    ceiling = 10 ** (PEAK_CEILING_DBFS / 20)
    gain = min(gain, ceiling / peak)
    return (x64 * gain).astype(np.float32)


def resample(samples: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """Polyphase resampling (e.g. 24 kHz -> 16 kHz for telephony/ASR). Float32 out."""
    x = _as_mono_float32(samples)
    if from_rate == to_rate:
        return x.copy()
    g = np.gcd(from_rate, to_rate)
    return resample_poly(x, to_rate // g, from_rate // g).astype(np.float32)


def _to_int16(samples: np.ndarray) -> np.ndarray:
    # Clip first: float values slightly beyond +-1 would otherwise wrap around in int16.
    x = np.clip(_as_mono_float32(samples), -1.0, 1.0)
    return np.round(x * 32767.0).astype("<i2")


def _wav_header(sample_rate: int, data_bytes: int) -> bytes:
    """Canonical 44-byte PCM16 mono RIFF header. ``data_bytes`` may be 0xFFFFFFFF (unknown)."""
    riff_size = min(data_bytes + 36, 0xFFFFFFFF)
    return b"".join(
        (
            b"RIFF",
            struct.pack("<I", riff_size),
            b"WAVEfmt ",
            # chunk size, PCM, channels, rate, byte rate, block align, bits per sample
            struct.pack("<IHHIIHH", 16, 1, 1, sample_rate, sample_rate * 2, 2, 16),
            b"data",
            struct.pack("<I", data_bytes),
        )
    )


def _new_mp3_encoder(sample_rate: int) -> lameenc.Encoder:
    enc = lameenc.Encoder()
    enc.set_bit_rate(MP3_BITRATE_KBPS)
    enc.set_in_sample_rate(sample_rate)
    # Without this LAME may pick another output rate for the bitrate; keep the engine's rate.
    enc.set_out_sample_rate(sample_rate)
    enc.set_channels(1)
    enc.set_quality(MP3_QUALITY)
    return enc


def _encode_av(pcm: np.ndarray, sample_rate: int, fmt: str) -> bytes:
    import av  # imported lazily: FFmpeg's libraries are only loaded when these formats are asked

    container, codec, bit_rate = _AV_CODECS[fmt]
    buf = io.BytesIO()
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=sample_rate, layout="mono")
        if bit_rate:
            stream.bit_rate = bit_rate
        frame = av.AudioFrame.from_ndarray(pcm[None, :], format="s16", layout="mono")
        frame.sample_rate = sample_rate
        # PyAV re-frames and converts to the codec's sample format (Opus/AAC frame sizes).
        for packet in stream.encode(frame if len(pcm) else None):
            out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    return buf.getvalue()


def _decode_av(data: bytes) -> tuple[np.ndarray, int]:
    import av

    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        rate = stream.rate
        parts = []
        for frame in container.decode(stream):
            arr = frame.to_ndarray()
            if arr.dtype == np.int16:
                arr = arr.astype(np.float32) / 32767.0
            # planar -> (channels, n); packed mono -> (1, n)
            parts.append(arr.reshape(frame.layout.nb_channels, -1).mean(axis=0))
    samples = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return samples, rate


def encode(samples: np.ndarray, *, sample_rate: int, fmt: AudioFormat) -> bytes:
    """Encode mono float samples as 16-bit WAV, MP3 (CBR, ``MP3_BITRATE_KBPS``) or raw s16le."""
    pcm = _to_int16(samples).tobytes()
    if fmt == "pcm":
        return pcm
    if fmt == "wav":
        return pcm16_wav(pcm, sample_rate=sample_rate)
    if fmt == "mp3":
        enc = _new_mp3_encoder(sample_rate)
        return bytes(enc.encode(pcm) + enc.flush())
    if fmt in _AV_CODECS:
        return _encode_av(_to_int16(samples), sample_rate, fmt)
    raise ValueError(f"unknown audio format {fmt!r}; expected one of {AUDIO_FORMATS}")


def encode_base64(samples: np.ndarray, *, sample_rate: int, fmt: AudioFormat) -> str:
    """``encode`` as a base64 ASCII string (for JSON replies)."""
    return base64.b64encode(encode(samples, sample_rate=sample_rate, fmt=fmt)).decode("ascii")


class StreamEncoder:
    """Encode a reply chunk by chunk; the concatenation of all returned bytes is one valid file.

    Usage: ``enc = StreamEncoder("mp3")``; ``enc.feed(chunk)`` for each synthesised chunk
    (may return b"" while the MP3 encoder buffers a frame); finally ``enc.finish()``.

    - ``mp3``: one LAME encoder across all chunks (so there are no gaps or extra encoder delay
      between chunks) flushed in ``finish``. This is the format to stream to browsers: an
      ``<audio>`` element or MediaSource plays ``audio/mpeg`` progressively.
    - ``pcm``: raw s16le, chunk boundaries are sample boundaries; for Web Audio clients that
      schedule buffers themselves.
    - ``wav``: the first chunk starts with a header whose RIFF and data sizes are 0xFFFFFFFF
      ("length unknown", the convention used for live WAV streams), followed by raw PCM.
      Python's ``wave`` and ``decode`` read it to EOF; browsers vary, so prefer MP3 there.
    """

    def __init__(self, fmt: AudioFormat, *, sample_rate: int = SAMPLE_RATE) -> None:
        if fmt not in STREAM_FORMATS:
            raise ValueError(f"cannot stream {fmt!r}; expected one of {STREAM_FORMATS}")
        self.fmt: AudioFormat = fmt
        self.sample_rate = sample_rate
        self.samples_fed = 0
        self._mp3 = _new_mp3_encoder(sample_rate) if fmt == "mp3" else None
        self._header_pending = fmt == "wav"
        self._finished = False

    @property
    def content_type(self) -> str:
        if self.fmt == "pcm":
            return f"audio/L16;rate={self.sample_rate};channels=1;endianness=little-endian"
        return CONTENT_TYPES[self.fmt]

    def feed(self, samples: np.ndarray) -> bytes:
        if self._finished:
            raise RuntimeError("StreamEncoder.feed() after finish()")
        pcm = _to_int16(samples).tobytes()
        self.samples_fed += len(pcm) // 2
        if self._mp3 is not None:
            return bytes(self._mp3.encode(pcm)) if pcm else b""
        if self._header_pending:
            self._header_pending = False
            return _wav_header(self.sample_rate, 0xFFFFFFFF) + pcm
        return pcm

    def finish(self) -> bytes:
        """Flush buffered MP3 frames (b"" for PCM/WAV; a WAV stream with no chunk gets a header)."""
        if self._finished:
            return b""
        self._finished = True
        if self._mp3 is not None:
            return bytes(self._mp3.flush())
        if self._header_pending:
            self._header_pending = False
            return _wav_header(self.sample_rate, 0)
        return b""


def decode(
    data: bytes, fmt: AudioFormat, *, sample_rate: int = SAMPLE_RATE, num_samples: int | None = None
) -> tuple[np.ndarray, int]:
    """Decode bytes made by ``encode``/``StreamEncoder`` back to (float32 samples, sample rate).

    ``sample_rate`` is only used for headerless ``pcm``. For ``mp3`` the LAME/decoder delay is
    stripped; the result then has ``n + pad`` samples (``0 <= pad < MP3_FRAME_SAMPLES``) unless
    ``num_samples`` is given, which trims it to exactly the original length. MP3 decoding uses
    miniaudio (dr_mp3, wheels bundle the C code), imported lazily because only tests and
    self-checks need it.
    """
    if fmt == "pcm":
        pcm = np.frombuffer(data, dtype="<i2")
        rate = sample_rate
    elif fmt == "wav":
        with wave.open(io.BytesIO(data), "rb") as w:
            if w.getnchannels() != 1 or w.getsampwidth() != 2:
                raise ValueError("only 16-bit mono WAV is supported")
            rate = w.getframerate()
            # For streamed WAV the header's frame count is a 0xFFFFFFFF placeholder;
            # readframes() stops at the end of the data either way.
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    elif fmt == "mp3":
        import miniaudio

        decoded = miniaudio.mp3_read_s16(bytes(data))
        if decoded.nchannels != 1:
            raise ValueError(f"expected mono MP3, got {decoded.nchannels} channels")
        rate = decoded.sample_rate
        pcm = np.asarray(decoded.samples, dtype=np.int16)[MP3_DECODER_DELAY:]
    elif fmt in _AV_CODECS:
        # Opus decodes at 48 kHz and both lossy codecs add their own priming samples; callers
        # compare these by content, not sample by sample.
        samples, rate = _decode_av(data)
        return (samples[:num_samples] if num_samples is not None else samples), rate
    else:
        raise ValueError(f"unknown audio format {fmt!r}; expected one of {AUDIO_FORMATS}")
    if num_samples is not None:
        pcm = pcm[:num_samples]
    return (pcm.astype(np.float32) / 32767.0), rate
