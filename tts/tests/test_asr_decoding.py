"""Upload decoding: real audio from our engine in every accepted format, and every bad input."""

import struct

import numpy as np
import pytest

from tts.asr.decoding import AudioLimits, AudioRejected, decode_audio, sniff_format
from tts.asr.encoding import CLIENT_RATES, ROUND_TRIP_FORMATS, encode_as, wav_bytes

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fmt", ROUND_TRIP_FORMATS)
def test_each_client_format_decodes_to_16k_mono_of_the_right_length(spoken_request, fmt):
    samples, rate, _text = spoken_request
    data = encode_as(samples, rate, fmt)
    decoded = decode_audio(data, declared=fmt, sample_rate=CLIENT_RATES[fmt])
    expected_ms = 1000 * samples.size / rate
    assert decoded.samples.dtype == np.float32 and decoded.samples.ndim == 1
    # Codec padding (AAC priming, Opus pre-skip, SILK 20 ms frames) stays well under 150 ms.
    assert abs(decoded.duration_ms - expected_ms) < 150
    assert 0.05 < float(np.sqrt(np.mean(decoded.samples**2))) < 0.5


@pytest.mark.parametrize("fmt", [f for f in ROUND_TRIP_FORMATS if f != "pcm"])
def test_format_is_detected_from_the_bytes_and_a_wrong_declaration_is_refused(spoken_request, fmt):
    samples, rate, _ = spoken_request
    data = encode_as(samples, rate, fmt)
    family = {"m4a": "aac"}.get(fmt, fmt)
    assert sniff_format(data) == family
    assert decode_audio(data, declared=None).format == family
    other = "mp3" if family != "mp3" else "wav"
    with pytest.raises(AudioRejected) as exc:
        decode_audio(data, declared=other)
    assert exc.value.code == "audio_format_mismatch" and exc.value.status == 400


def _rejected(data, **kwargs) -> AudioRejected:
    with pytest.raises(AudioRejected) as exc:
        decode_audio(data, **kwargs)
    return exc.value


def test_bad_inputs_are_refused_with_a_code_and_status(spoken_request):
    samples, rate, _ = spoken_request
    wav = encode_as(samples, rate, "wav")
    assert _rejected(b"", declared="wav").code == "audio_empty"
    assert _rejected(b"\x00garbage-bytes" * 50, declared="mp3").code == "audio_corrupt"
    # a RIFF/WAVE header followed by noise that is no chunk structure
    assert _rejected(wav[:12] + b"\xff" * 300, declared="wav").code == "audio_corrupt"
    assert _rejected(wav, declared="flac").status == 415
    big = _rejected(wav, declared="wav", limits=AudioLimits(max_bytes=len(wav) - 1))
    assert (big.code, big.status) == ("audio_too_large", 413)
    long = _rejected(wav, declared="wav", limits=AudioLimits(max_seconds=1.0))
    assert (long.code, long.status) == ("audio_too_long", 413)
    assert _rejected(b"\x01\x02" * 800, declared="pcm").code == "audio_sample_rate"
    assert _rejected(b"\x01\x02" * 800, declared="pcm", sample_rate=96000).code == (
        "audio_sample_rate"
    )
    assert _rejected(b"\x01\x02\x03", declared="pcm", sample_rate=16000).code == "audio_corrupt"


def test_a_wav_header_claiming_gigabytes_is_refused_before_decoding():
    pcm = np.zeros(1600, dtype="<i2")
    wav = bytearray(wav_bytes(pcm, 16000))
    struct.pack_into("<I", wav, 40, 0xFFFF0000)  # data chunk size: ~4 GB
    rejected = _rejected(bytes(wav), declared="wav")
    assert rejected.code == "audio_corrupt" and "claims" in rejected.message


def test_an_unsupported_codec_in_an_accepted_container_is_refused():
    import io

    import av

    out = io.BytesIO()
    with av.open(out, mode="w", format="wav") as box:  # ADPCM inside RIFF/WAVE
        stream = box.add_stream("adpcm_ms", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 16000), dtype=np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 16000
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            box.mux(packet)
    rejected = _rejected(out.getvalue(), declared="wav")
    assert (rejected.code, rejected.status) == ("audio_unsupported", 415)


def test_a_decompression_bomb_stops_at_the_duration_limit():
    # 10 minutes of silence squeezed by Opus DTX-like low bit rate into a small file:
    # small enough for the byte limit, far beyond the duration limit.
    silence = np.zeros(16000 * 600, dtype=np.float32)
    data = encode_as(silence, 16000, "ogg")
    assert len(data) < 2 * 1024 * 1024
    rejected = _rejected(data, declared="ogg")
    assert (rejected.code, rejected.status) == ("audio_too_long", 413)


def test_silk_frame_count_bounds_the_duration_before_decoding():
    silence = np.zeros(16000 * 90, dtype=np.float32)
    data = encode_as(silence, 16000, "silk")
    assert _rejected(data, declared="silk").code == "audio_too_long"


def test_raw_pcm_that_starts_like_an_mpeg_frame_sync_is_still_pcm():
    # Found by the round-trip bench: int16 -7169 is b"\xff\xe3" little-endian.
    pcm = np.full(16000, -7169, dtype="<i2").tobytes()
    assert pcm[:2] == b"\xff\xe3"
    decoded = decode_audio(pcm, declared="pcm", sample_rate=16000)
    assert decoded.format == "pcm" and decoded.duration_ms == 1000
