"""What only a real ASGI server shows (issue 13): bodies are limited while they are read, before
any authentication (item 6), and the access log and request warnings never carry a signed audio
URL (item 5)."""

import http.client
import socket
import time

import pytest
from django.core.files.base import ContentFile

from cs_platform.tests.live_server import uvicorn_server
from tts import selectors
from tts.models import AudioClip, Voice

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]

READ_TIMEOUT = 1.5


def _raw_request(server, head: bytes, body_pieces=(), pause: float = 0.0) -> tuple[bytes, float]:
    """Send a request by hand (bodies that lie about their length, chunked uploads); return
    the raw answer and the seconds it took. Stops sending once the server has answered."""
    started = time.monotonic()
    with socket.create_connection((server.host, server.port), timeout=15) as sock:
        sock.sendall(head)
        for piece in body_pieces:
            try:
                sock.sendall(piece)
            except (BrokenPipeError, ConnectionResetError):
                break
            time.sleep(pause)
        answer = b""
        try:
            while chunk := sock.recv(65536):
                answer += chunk
                if b"\r\n\r\n" in answer and b'"error"' in answer:
                    break
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, time.monotonic() - started


def _status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1]) if answer.startswith(b"HTTP/") else 0


def test_bodies_are_limited_while_read_before_authentication():
    with uvicorn_server(
        log_level="warning", REQUEST_BODY_READ_TIMEOUT_SECONDS=str(READ_TIMEOUT)
    ) as s:
        # 1. A chunked upload with no length, no login: cut off at the cap (256 KiB), 413.
        chunk = b"x" * 65536
        pieces = [b"%x\r\n%s\r\n" % (len(chunk), chunk)] * 960  # 60 MB if it were all read
        answer, _ = _raw_request(
            s,
            b"POST /api/auth/token/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            pieces,
        )
        assert _status(answer) == 413, answer[:300]
        assert b'"payload_too_large"' in answer

        # 2. A declared 10 MB body: refused before a byte of it is read.
        answer, took = _raw_request(
            s,
            b"POST /api/tts/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 10485760\r\n\r\n",
        )
        assert _status(answer) == 413 and took < READ_TIMEOUT, (answer[:300], took)

        # 3. A body that promises 100 KB and stalls after 1 KB: 408 after the read timeout,
        # not a worker held until the client gives up.
        answer, took = _raw_request(
            s,
            b"POST /api/auth/wechat/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            [b"{" + b" " * 1023],
        )
        assert _status(answer) == 408, answer[:300]
        assert READ_TIMEOUT <= took < READ_TIMEOUT + 5
        assert b'"request_timeout"' in answer
        assert "请求体未能按时送达" in answer.decode()  # zh-hans by default

        # 4. A multipart upload over its own cap (10 MiB by default) is 413 while read too.
        piece = b"y" * 262144
        answer, _ = _raw_request(
            s,
            b"POST /api/conversations/1/messages/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=zz\r\nTransfer-Encoding: chunked\r\n\r\n",
            [b"%x\r\n%s\r\n" % (len(piece), piece)] * 60,
        )
        assert _status(answer) == 413, answer[:300]

        # And an ordinary small request still reaches Django (401: no login).
        conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
        conn.request(
            "POST",
            "/api/tts/",
            body=b'{"text": "hi"}',
            headers={"Content-Type": "application/json"},
        )
        assert conn.getresponse().status == 401


def test_signed_audio_urls_never_reach_the_access_log_or_request_warnings(tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    clip = AudioClip(
        cache_key="cd" * 32,
        text="测试",
        voice=Voice.objects.get(engine_voice_id="baker"),
        engine_version="v",
        format="wav",
        duration_ms=10,
        size_bytes=4,
    )
    clip.file.save("t.wav", ContentFile(b"RIFF"), save=False)
    clip.save()
    url = selectors.clip_url(clip)
    token = url.rsplit("/", 1)[-1]
    expired = selectors.clip_url(clip, ttl_seconds=-10)  # -> 404, logged as a warning

    for debug in ("0", "1"):
        with uvicorn_server(log_level="info", MEDIA_ROOT=str(tmp_path), DEBUG=debug) as s:
            conn = http.client.HTTPConnection(s.host, s.port, timeout=10)
            conn.request("GET", url)
            assert conn.getresponse().read() == b"RIFF"
            conn.request("GET", expired)
            assert conn.getresponse().status == 404
            time.sleep(0.3)
            log = s.log()
        assert "/media/audio/[redacted]" in log, log  # the lines were written...
        assert "Not Found" in log, log
        for secret in (token, token.split(":")[0], expired.rsplit("/", 1)[-1].split(":")[0]):
            assert secret not in log, f"DEBUG={debug}: {log}"  # ...without the capability
