"""Uploaded audio -> 16 kHz mono float32, with the format taken from the bytes, not the name.

Accepted: WAV (PCM), MP3, AAC (ADTS or in MP4/M4A), raw 16-bit PCM with a declared sample rate,
WeChat SILK v3 (``pilk``), and MediaRecorder's WebM/Ogg Opus. PyAV bundles FFmpeg, so no system
binary is needed. Everything is bounded before and while decoding: the byte size, the sample
rate, the duration a header claims, and the samples actually produced (a small file that would
decode to hours of audio stops at the limit instead of filling memory).
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from dataclasses import dataclass

import numpy as np

TARGET_RATE = 16000

# Declared names (multipart `format`, JSON `format`, MIME subtypes) -> our format family.
FORMAT_ALIASES = {
    "wav": "wav",
    "wave": "wav",
    "x-wav": "wav",
    "mp3": "mp3",
    "mpeg": "mp3",
    "aac": "aac",
    "m4a": "aac",
    "mp4": "aac",
    "x-m4a": "aac",
    "pcm": "pcm",
    "silk": "silk",
    "webm": "webm",
    "ogg": "ogg",
    "opus": "ogg",
}
ACCEPTED_FORMATS = ("wav", "mp3", "aac", "pcm", "silk", "webm", "ogg")

# Codecs FFmpeg may report for each family; anything else (ADPCM in WAV, FLAC in WebM,
# Vorbis in Ogg, video) is refused as unsupported rather than guessed at.
_ALLOWED_CODECS = {
    "wav": {"pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_f32le", "pcm_u8"},
    "mp3": {"mp3", "mp3float"},
    "aac": {"aac"},
    "webm": {"opus"},
    "ogg": {"opus"},
}
_AV_FORMAT = {"wav": "wav", "mp3": "mp3", "aac": None, "webm": "matroska", "ogg": "ogg"}


class AudioRejected(ValueError):
    """Bad upload. ``code`` is stable for clients, ``status`` the HTTP status to answer."""

    def __init__(self, code: str, message: str, status: int = 400):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class AudioLimits:
    max_bytes: int = 2 * 1024 * 1024
    max_seconds: float = 60.0
    min_sample_rate: int = 8000
    max_sample_rate: int = 48000


@dataclass(frozen=True)
class DecodedAudio:
    samples: np.ndarray  # float32 mono at TARGET_RATE
    format: str  # the detected family
    source_sample_rate: int

    @property
    def duration_ms(self) -> int:
        return round(1000 * self.samples.size / TARGET_RATE)


def normalise_format(declared: str | None) -> str | None:
    """``"audio/webm;codecs=opus"`` / ``"M4A"`` / ``".mp3"`` -> family, or None when not given."""
    if not declared:
        return None
    name = declared.strip().lower().split(";")[0].strip()
    name = name.rsplit("/", 1)[-1].lstrip(".")
    if name not in FORMAT_ALIASES:
        raise AudioRejected(
            "audio_unsupported",
            f"unsupported audio format {declared[:40]!r}; accepted: {', '.join(ACCEPTED_FORMATS)}",
            415,
        )
    return FORMAT_ALIASES[name]


def sniff_format(data: bytes) -> str | None:
    """The container family from magic bytes, or None (raw PCM has no header)."""
    head = data[:12]
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "wav"
    if head[:4] == b"OggS":
        return "ogg"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if head[4:8] == b"ftyp":
        return "aac"
    if head.startswith(b"#!SILK_V3") or head.startswith(b"\x02#!SILK_V3"):
        return "silk"
    if head[:3] == b"ID3":
        return "mp3"
    if len(head) >= 2 and head[0] == 0xFF:
        if head[1] & 0xF6 == 0xF0:  # ADTS sync word, layer 00
            return "aac"
        if head[1] & 0xE0 == 0xE0 and (head[1] >> 1) & 0b11 != 0:  # MPEG audio frame
            return "mp3"
    return None


def decode_audio(
    data: bytes,
    *,
    declared: str | None,
    sample_rate: int | None = None,
    limits: AudioLimits = AudioLimits(),
) -> DecodedAudio:
    """Validate and decode one upload. Raises AudioRejected with a client-facing reason."""
    if not data:
        raise AudioRejected("audio_empty", "the audio file is empty")
    if len(data) > limits.max_bytes:
        raise AudioRejected(
            "audio_too_large", f"audio is larger than {limits.max_bytes} bytes", 413
        )
    declared_family = normalise_format(declared)
    detected = sniff_format(data)
    if declared_family == "pcm" and detected in ("mp3", "aac") and not data.startswith(b"ID3"):
        # Raw PCM has no header, and an MPEG frame sync is only two bytes: a recording that
        # starts with a sample like 0xE3FF would "look like" MP3. Only real magic overrules.
        detected = None
    if detected is None:
        if declared_family != "pcm":
            raise AudioRejected(
                "audio_corrupt", "the bytes are not a recognised audio file (corrupt?)"
            )
        detected = "pcm"
    elif declared_family is not None and declared_family != detected:
        raise AudioRejected(
            "audio_format_mismatch",
            f"declared format {declared_family!r} but the bytes are {detected!r}",
        )

    if detected == "pcm":
        rate = _check_rate(sample_rate, limits, required=True)
        samples, rate = _decode_pcm(data, rate, limits), rate
    elif detected == "silk":
        rate = _check_rate(sample_rate or TARGET_RATE, limits, required=True)
        samples = _decode_silk(data, rate, limits)
    else:
        if detected == "wav":
            _check_wav_header(data)
        samples, rate = _decode_av(data, detected, limits)
    return DecodedAudio(samples=samples, format=detected, source_sample_rate=rate)


def _check_rate(rate: int | None, limits: AudioLimits, *, required: bool) -> int:
    if rate is None:
        raise AudioRejected("audio_sample_rate", "raw PCM needs its sample_rate", 400)
    if not limits.min_sample_rate <= int(rate) <= limits.max_sample_rate:
        raise AudioRejected(
            "audio_sample_rate",
            f"sample rate {rate} Hz is outside {limits.min_sample_rate}-"
            f"{limits.max_sample_rate} Hz",
        )
    return int(rate)


def _too_long(limits: AudioLimits) -> AudioRejected:
    return AudioRejected(
        "audio_too_long", f"audio is longer than {limits.max_seconds:g} seconds", 413
    )


def _check_wav_header(data: bytes) -> None:
    """Refuse a RIFF header whose chunk sizes claim more than the file holds (e.g. gigabytes).

    FFmpeg would trust it and try to read on; a truthful recorder never writes it.
    0 and 0xFFFFFFFF ("unknown, streaming") are tolerated: decoding then stops at the limit.
    """
    offset = 12
    while offset + 8 <= len(data):
        chunk_id, size = struct.unpack_from("<4sI", data, offset)
        body = offset + 8
        if chunk_id == b"data":
            if size not in (0, 0xFFFFFFFF) and size > len(data) - body:
                raise AudioRejected(
                    "audio_corrupt",
                    f"WAV header claims {size} bytes of audio but the file has {len(data) - body}",
                )
            return
        if size > len(data) - body:
            raise AudioRejected("audio_corrupt", "WAV header chunk runs past the end of the file")
        offset = body + size + (size & 1)
    raise AudioRejected("audio_corrupt", "WAV file has no data chunk")


def _resampler():
    import av

    return av.AudioResampler(format="flt", layout="mono", rate=TARGET_RATE)


def _finish(chunks: list[np.ndarray]) -> np.ndarray:
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(chunks).astype(np.float32, copy=False)


def _resample_mono_int16(pcm: np.ndarray, rate: int) -> np.ndarray:
    import av

    if pcm.size == 0:
        return np.zeros(0, dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = rate
    resampler = _resampler()
    chunks = [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
    chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
    return _finish(chunks)


def _decode_pcm(data: bytes, rate: int, limits: AudioLimits) -> np.ndarray:
    if len(data) % 2:
        raise AudioRejected("audio_corrupt", "raw PCM must be 16-bit: odd number of bytes")
    if len(data) / 2 / rate > limits.max_seconds:
        raise _too_long(limits)
    return _resample_mono_int16(np.frombuffer(data, dtype="<i2"), rate)


def _silk_frames(data: bytes) -> int:
    """Count SILK frames (20 ms each) by walking the length-prefixed payloads."""
    offset = 10 if data[0] == 0x02 else 9
    frames = 0
    while offset + 2 <= len(data):
        (size,) = struct.unpack_from("<h", data, offset)
        if size < 0:  # 0xFFFF end marker
            break
        offset += 2 + size
        frames += 1
    if offset > len(data) + 0:
        raise AudioRejected("audio_corrupt", "SILK stream is truncated")
    return frames


def _decode_silk(data: bytes, rate: int, limits: AudioLimits) -> np.ndarray:
    import pilk

    frames = _silk_frames(data)
    if frames * 0.02 > limits.max_seconds:
        raise _too_long(limits)
    # pilk works on files only; both live in a private temporary folder.
    with tempfile.TemporaryDirectory(prefix="silk-") as tmp:
        src, dst = os.path.join(tmp, "in.silk"), os.path.join(tmp, "out.pcm")
        with open(src, "wb") as f:
            f.write(data)
        try:
            pilk.decode(src, dst, pcm_rate=rate)
            with open(dst, "rb") as f:
                pcm = np.frombuffer(f.read(), dtype="<i2")
        except Exception as exc:  # the C decoder reports corruption as a bare error
            raise AudioRejected("audio_corrupt", "the SILK stream could not be decoded") from exc
    if pcm.size / rate > limits.max_seconds + 0.1:
        raise _too_long(limits)
    return _resample_mono_int16(pcm, rate)


def _decode_av(data: bytes, family: str, limits: AudioLimits) -> tuple[np.ndarray, int]:
    import av

    max_samples = int(limits.max_seconds * TARGET_RATE) + TARGET_RATE // 10
    try:
        container = av.open(
            io.BytesIO(data),
            format=_AV_FORMAT[family],
            # Bound the probing FFmpeg does on hostile input.
            options={"probesize": "1000000", "analyzeduration": "2000000"},
        )
    except (av.error.FFmpegError, ValueError) as exc:
        raise AudioRejected("audio_corrupt", "the audio file could not be read (corrupt?)") from exc
    with container:
        streams = container.streams.audio
        if not streams:
            raise AudioRejected("audio_unsupported", "the file has no audio stream", 415)
        stream = streams[0]
        codec = stream.codec_context.name
        if codec not in _ALLOWED_CODECS[family]:
            raise AudioRejected(
                "audio_unsupported", f"codec {codec!r} is not supported in {family}", 415
            )
        rate = stream.codec_context.sample_rate or stream.rate or 0
        _check_rate(rate, limits, required=True)
        if stream.duration is not None and stream.time_base is not None:
            if float(stream.duration * stream.time_base) > limits.max_seconds + 0.5:
                raise _too_long(limits)
        resampler = _resampler()
        chunks: list[np.ndarray] = []
        total = 0
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunk = out.to_ndarray().reshape(-1)
                    total += chunk.size
                    if total > max_samples:
                        raise _too_long(limits)
                    chunks.append(chunk)
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            if not chunks:
                raise AudioRejected(
                    "audio_corrupt", "the audio stream could not be decoded"
                ) from exc
            # A damaged tail after good audio: keep what decoded (recorders cut off mid-frame).
    samples = _finish(chunks)
    if samples.size == 0:
        raise AudioRejected("audio_corrupt", "the audio file holds no audio frames")
    return samples, int(rate)
