"""Loopback HTTP servers speaking each remote engine's protocol (no Django).

They parse requests the way the real servers do (JSON bodies, multipart form fields and files)
and answer in the real shapes: WAV / base64 JSON (IndexTTS2), raw int16 PCM streamed in chunks
(CosyVoice runtime server), {success, audio_url} then the file (relay), OpenAI audio bytes.
A ``behaviour`` switch makes them slow, fail with 500, refuse the key or send garbage.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import io
import json
import threading
import time
import urllib.parse
import wave
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

RATE = 24000


def speech_like(seconds: float = 1.0, rate: int = RATE, pitch: float = 180.0) -> np.ndarray:
    """A voiced tone with pauses: passes the 'quiet frames exist' check like speech does."""
    t = np.arange(int(seconds * rate)) / rate
    y = 0.3 * np.sin(2 * np.pi * pitch * t) * (np.sin(2 * np.pi * 2.0 * t) > 0)
    return y.astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = RATE) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes((samples * 32767).astype("<i2").tobytes())
    return buf.getvalue()


class FakeEngine:
    def __init__(self, kind: str, *, api_key: str = "", chunk_seconds: float = 0.25) -> None:
        self.kind = kind
        self.api_key = api_key
        self.behaviour = "ok"  # ok | slow | error | garbage | html
        self.slow_seconds = 3.0
        self.chunk_seconds = chunk_seconds
        self.requests: list[dict] = []  # parsed requests that reached the protocol handler
        self.hits = 0  # every HTTP request, whatever the answer
        self.clips: dict[str, bytes] = {}
        engine = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_POST(self):
                engine._handle(self, "POST")

            def do_GET(self):
                engine._handle(self, "GET")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # --- request parsing ---

    @staticmethod
    def _body(handler) -> bytes:
        return handler.rfile.read(int(handler.headers.get("Content-Length") or 0))

    @staticmethod
    def _form(handler, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
        """Form fields as FastAPI's Form()/File() see them: urlencoded or multipart."""
        ctype = handler.headers["Content-Type"]
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in urllib.parse.parse_qs(body.decode()).items()}, {}
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {ctype}\r\n\r\n".encode() + body
        )
        fields, files = {}, {}
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                files[name] = part.get_payload(decode=True)
            else:
                fields[name] = part.get_payload(decode=True).decode()
        return fields, files

    def _send(self, handler, status: int, data: bytes, ctype: str, headers=None) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", ctype)
        handler.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            handler.send_header(k, v)
        handler.end_headers()
        handler.wfile.write(data)

    def _json(self, handler, status: int, payload) -> None:
        self._send(handler, status, json.dumps(payload).encode(), "application/json")

    # --- protocols ---

    def _handle(self, handler, method: str) -> None:
        self.hits += 1
        body = self._body(handler) if method == "POST" else b""
        if self.api_key and handler.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self._json(handler, 401, {"error": {"message": "bad key"}})
        if self.behaviour == "slow":
            time.sleep(self.slow_seconds)
        if self.behaviour == "error":
            return self._json(handler, 500, {"error": "internal", "detail": "GPU out of memory"})
        if method == "GET" and handler.path in self.clips:
            return self._send(handler, 200, self.clips[handler.path], "audio/wav")
        speech = speech_like()
        if self.behaviour == "garbage":
            noise = np.random.default_rng(0).integers(-32768, 32767, RATE, dtype=np.int16)
            speech_bytes = noise.astype("<i2").tobytes()
            wav = b"RIFF" + speech_bytes[:1000]  # a broken header
        else:
            speech_bytes = (speech * 32767).astype("<i2").tobytes()
            wav = wav_bytes(speech)
        if self.behaviour == "html":
            return self._send(handler, 200, b"<html>Bad gateway</html>", "text/html")

        if self.kind == "indextts2" and handler.path == "/api/tts":
            req = json.loads(body)
            self.requests.append(req)
            if req.get("output_type") == "base64":
                return self._json(handler, 200, {"audio": base64.b64encode(wav).decode()})
            return self._send(handler, 200, wav, "audio/wav")

        if self.kind == "cosyvoice" and handler.path.startswith("/inference_"):
            fields, files = self._form(handler, body)
            self.requests.append({"path": handler.path, **fields, "files": files})
            required = {
                "/inference_sft": ({"tts_text", "spk_id"}, set()),
                "/inference_zero_shot": ({"tts_text", "prompt_text"}, {"prompt_wav"}),
                "/inference_instruct2": ({"tts_text", "instruct_text"}, {"prompt_wav"}),
            }.get(handler.path)
            if required is None:
                return self._json(handler, 404, {"detail": "Not Found"})
            if not required[0] <= set(fields) or not required[1] <= set(files):
                return self._json(handler, 422, {"detail": "field required"})
            # StreamingResponse: chunked transfer, raw int16 PCM, one model chunk at a time
            handler.send_response(200)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            step = int(self.chunk_seconds * RATE) * 2
            data = speech_bytes if self.behaviour != "garbage" else speech_bytes + b"\x01"
            for i in range(0, len(data), step):
                part = data[i : i + step]
                handler.wfile.write(f"{len(part):x}\r\n".encode() + part + b"\r\n")
                handler.wfile.flush()
                time.sleep(0.05)
            handler.wfile.write(b"0\r\n\r\n")
            return None

        if self.kind == "relay" and handler.path == "/tts":
            req = json.loads(body)
            self.requests.append(req)
            if len(req.get("text", "")) > 200:
                return self._json(handler, 400, {"error": "text too long", "detail": "max 200"})
            path = f"/static/audio/{len(self.clips)}.wav"
            self.clips[path] = wav
            return self._json(
                handler,
                200,
                {"success": True, "audio_url": path, "task_id": "t1", "duration": 1.0},
            )

        if self.kind == "openai" and handler.path == "/v1/audio/speech":
            req = json.loads(body)
            self.requests.append({**req, "accept": handler.headers.get("Accept")})
            return self._send(handler, 200, wav, "audio/wav")

        return self._json(handler, 404, {"detail": "Not Found"})
