"""The WAV container around 16-bit mono PCM: standard library only, so a web process can wrap
relayed PCM without the audio stack (numpy, scipy, the encoders) that tts.engine.audio loads."""

import io
import wave


def pcm16_wav(pcm: bytes, *, sample_rate: int) -> bytes:
    """A WAV file of 16-bit little-endian mono samples."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm)
    return buf.getvalue()
