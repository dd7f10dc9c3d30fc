"""One function per protocol, one shape out: mono float32 samples and their sample rate.

Every failure becomes RemoteEngineError with a short code (unreachable, timeout, auth,
http_error, bad_audio, bad_response) so callers can fall back and record why. Audio is checked
before it is returned: an error page or random bytes answered with 200 is ``bad_audio``,
never cached as speech.
"""

from __future__ import annotations

import base64
import hashlib
import io
import wave
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import urljoin

import httpx
import numpy as np

ENGINES = ("indextts2", "cosyvoice", "cosyvoice-relay", "openai")
COSYVOICE_MODES = ("sft", "zero_shot", "instruct2")
# CosyVoice yields one model chunk at a time; relay that much at once (0.1 s at 24 kHz).
_PCM_CHUNK_BYTES = 4800


class RemoteEngineError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RemoteVoice:
    engine: str
    base_url: str
    api_key: str = field(default="", repr=False)  # never in logs or reprs
    timeout: float = 30.0
    speaker: str = ""  # IndexTTS2 speaker_id, CosyVoice spk_id, OpenAI voice name
    sample_rate: int = 24000  # CosyVoice raw PCM (22050 for CosyVoice 1)
    mode: str = "sft"  # CosyVoice: sft | zero_shot | instruct2
    prompt_wav: bytes = field(default=b"", repr=False)  # 16 kHz mono WAV (prompt.prepare_prompt)
    prompt_text: str = ""
    prompt_prefix: str = ""  # e.g. "You are a helpful assistant.<|endofprompt|>" (CosyVoice 3)
    model: str = "tts-1"  # OpenAI-compatible servers

    def identity(self) -> str:
        """What makes this voice sound like itself: part of every clip cache key."""
        material = "|".join(
            [
                self.engine,
                self.base_url.rstrip("/"),
                self.speaker,
                str(self.sample_rate),
                self.mode,
                self.model,
                hashlib.sha256(self.prompt_wav).hexdigest() if self.prompt_wav else "",
                self.prompt_text,
                self.prompt_prefix,
            ]
        )
        return hashlib.sha256(material.encode()).hexdigest()


@dataclass
class RemoteAudio:
    samples: np.ndarray
    sample_rate: int


def _url(voice: RemoteVoice, path: str) -> str:
    return urljoin(voice.base_url.rstrip("/") + "/", path.lstrip("/"))


def _headers(voice: RemoteVoice) -> dict[str, str]:
    return {"Authorization": f"Bearer {voice.api_key}"} if voice.api_key else {}


def _check(response: httpx.Response) -> None:
    if response.status_code in (401, 403):
        raise RemoteEngineError("auth", f"the engine refused our key ({response.status_code})")
    if response.status_code >= 400:
        raise RemoteEngineError("http_error", f"the engine answered {response.status_code}")


def _checked_samples(samples: np.ndarray, rate: int) -> RemoteAudio:
    samples = np.asarray(samples, dtype=np.float32).reshape(-1)
    if not len(samples) or not rate or not np.all(np.isfinite(samples)):
        raise RemoteEngineError("bad_audio", "the engine sent no usable audio")
    # White noise (random bytes read as PCM) has a crest factor near 1.7 and no quiet frames;
    # speech has pauses. Refuse audio in which no 20 ms frame is quiet.
    frame = max(1, rate // 50)
    n = len(samples) // frame
    if n >= 5:
        rms = np.sqrt(np.mean(samples[: n * frame].reshape(n, frame) ** 2, axis=1))
        if rms.min() > 0.25:
            raise RemoteEngineError("bad_audio", "the engine sent noise, not speech")
    return RemoteAudio(samples, rate)


def _decode_file(data: bytes, content_type: str = "") -> RemoteAudio:
    """WAV or MP3 bytes (as IndexTTS2 / relays / OpenAI servers send) -> samples."""
    if content_type.startswith(("text/", "application/json")):
        raise RemoteEngineError("bad_audio", f"the engine sent {content_type}, not audio")
    try:
        if data[:4] == b"RIFF":
            with wave.open(io.BytesIO(data), "rb") as w:
                width, channels, rate = w.getsampwidth(), w.getnchannels(), w.getframerate()
                raw = w.readframes(w.getnframes())
            if width != 2:
                raise RemoteEngineError("bad_audio", f"unsupported WAV sample width {width}")
            pcm = np.frombuffer(raw, dtype="<i2").reshape(-1, channels).mean(axis=1)
            return _checked_samples(pcm / 32767.0, rate)
        if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
            import miniaudio

            decoded = miniaudio.decode(
                data, output_format=miniaudio.SampleFormat.SIGNED16, nchannels=1
            )
            pcm = np.asarray(decoded.samples, dtype=np.int16)
            return _checked_samples(pcm / 32767.0, decoded.sample_rate)
    except RemoteEngineError:
        raise
    except Exception as exc:  # wave.Error, miniaudio.DecodeError, ...: the bytes are not audio
        raise RemoteEngineError("bad_audio", "the engine's audio cannot be decoded") from exc
    raise RemoteEngineError("bad_audio", "the engine's answer is neither WAV nor MP3")


def _client(voice: RemoteVoice) -> httpx.Client:
    return httpx.Client(timeout=httpx.Timeout(voice.timeout, connect=min(5.0, voice.timeout)))


def _transport_errors(exc: Exception) -> RemoteEngineError:
    if isinstance(exc, httpx.TimeoutException):
        return RemoteEngineError("timeout", "the engine did not answer in time")
    return RemoteEngineError("unreachable", f"cannot reach the engine ({type(exc).__name__})")


# --- IndexTTS2 ---------------------------------------------------------------------------


def _indextts2(voice, text, *, speed, pitch, emotion, instruction) -> RemoteAudio:
    body = {
        "text": text,
        "speaker_id": int(voice.speaker) if voice.speaker.isdigit() else voice.speaker or 0,
        "speed": speed,
        "emotion": emotion or "calm",
        "pitch": pitch,
        "output_type": "base64",
    }
    with _client(voice) as client:
        response = client.post(_url(voice, "/api/tts"), json=body, headers=_headers(voice))
    _check(response)
    try:
        payload = response.json()
        data = base64.b64decode(payload["audio"], validate=True)
    except Exception as exc:
        raise RemoteEngineError("bad_response", "IndexTTS2 answer has no base64 audio") from exc
    return _decode_file(data)


# --- CosyVoice runtime server --------------------------------------------------------------


def _cosyvoice_request(voice: RemoteVoice, text: str, instruction: str):
    mode = voice.mode
    if mode not in COSYVOICE_MODES:
        raise RemoteEngineError("bad_config", f"unknown CosyVoice mode {mode!r}")
    form = {"tts_text": text}
    files = None
    if mode == "sft":
        form["spk_id"] = voice.speaker
    if mode in ("zero_shot", "instruct2"):
        if not voice.prompt_wav:
            raise RemoteEngineError("bad_config", "this CosyVoice voice has no prompt recording")
        files = {"prompt_wav": ("prompt.wav", voice.prompt_wav, "audio/wav")}
    if mode == "zero_shot":
        form["prompt_text"] = voice.prompt_prefix + voice.prompt_text
    if mode == "instruct2":
        form["instruct_text"] = voice.prompt_prefix + (instruction or "用自然的语气说")
    return f"/inference_{mode}", form, files


def _cosyvoice_stream(voice, text, *, instruction) -> Iterator[np.ndarray]:
    path, form, files = _cosyvoice_request(voice, text, instruction)
    carry = b""
    with _client(voice) as client:
        try:
            with client.stream(
                "POST", _url(voice, path), data=form, files=files, headers=_headers(voice)
            ) as response:
                _check(response)
                ctype = response.headers.get("content-type", "")
                if ctype.startswith(("text/html", "application/json")):
                    raise RemoteEngineError("bad_audio", f"CosyVoice sent {ctype}, not PCM")
                for part in response.iter_bytes(_PCM_CHUNK_BYTES):
                    data = carry + part
                    usable = len(data) - len(data) % 2
                    carry = data[usable:]
                    if usable:
                        yield np.frombuffer(data[:usable], dtype="<i2").astype(np.float32) / 32767.0
        except httpx.HTTPError as exc:
            raise _transport_errors(exc) from exc
    if carry:
        raise RemoteEngineError("bad_audio", "CosyVoice sent a partial sample (odd byte count)")


# --- the seed design's CosyVoice relay --------------------------------------------------------


def _relay(voice, text, *, instruction) -> RemoteAudio:
    body = {"text": text, "mode": "instruct" if instruction else "zero_shot"}
    if voice.prompt_wav:
        body["prompt_audio"] = base64.b64encode(voice.prompt_wav).decode()
    if instruction:
        body["instruct"] = instruction
    with _client(voice) as client:
        response = client.post(_url(voice, "/tts"), json=body, headers=_headers(voice))
        if response.status_code == 504:
            raise RemoteEngineError("timeout", "the relay timed out upstream (504)")
        _check(response)
        try:
            payload = response.json()
        except ValueError as exc:
            raise RemoteEngineError("bad_response", "the relay did not answer JSON") from exc
        if not payload.get("success") or not payload.get("audio_url"):
            raise RemoteEngineError("bad_response", str(payload.get("error") or "no audio_url"))
        audio_response = client.get(_url(voice, payload["audio_url"]), headers=_headers(voice))
    _check(audio_response)
    return _decode_file(audio_response.content, audio_response.headers.get("content-type", ""))


# --- OpenAI-compatible --------------------------------------------------------------------------


def _openai(voice, text, *, speed) -> RemoteAudio:
    body = {
        "model": voice.model,
        "input": text,
        "voice": voice.speaker or "alloy",
        "response_format": "wav",
        "speed": speed,
    }
    with _client(voice) as client:
        response = client.post(
            _url(voice, "/v1/audio/speech"),
            json=body,
            headers={**_headers(voice), "Accept": "application/octet-stream"},
        )
    _check(response)
    return _decode_file(response.content, response.headers.get("content-type", ""))


# --- entry points ---------------------------------------------------------------------------------


def synthesize(
    voice: RemoteVoice,
    text: str,
    *,
    speed: float = 1.0,
    pitch: float = 0.0,
    emotion: str = "",
    instruction: str = "",
) -> RemoteAudio:
    """Speak ``text`` (already normalised by our frontend) on the remote engine."""
    if voice.engine == "cosyvoice":
        chunks = list(stream(voice, text, instruction=instruction))
        return _checked_samples(
            np.concatenate(chunks) if chunks else np.zeros(0), voice.sample_rate
        )
    try:
        if voice.engine == "indextts2":
            return _indextts2(
                voice, text, speed=speed, pitch=pitch, emotion=emotion, instruction=instruction
            )
        if voice.engine == "cosyvoice-relay":
            return _relay(voice, text, instruction=instruction)
        if voice.engine == "openai":
            return _openai(voice, text, speed=speed)
    except httpx.HTTPError as exc:
        raise _transport_errors(exc) from exc
    raise RemoteEngineError("bad_config", f"unknown engine {voice.engine!r}")


def stream(
    voice: RemoteVoice, text: str, *, instruction: str = "", **controls
) -> Iterator[np.ndarray]:
    """Chunks as the engine produces them (CosyVoice); other engines yield the whole clip once."""
    if voice.engine == "cosyvoice":
        yield from _cosyvoice_stream(voice, text, instruction=instruction)
        return
    yield synthesize(voice, text, instruction=instruction, **controls).samples
