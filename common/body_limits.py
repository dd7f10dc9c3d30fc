"""Request-body limits enforced while the body is read, before Django (and authentication).

Django's ASGI handler reads the whole body - spooling big ones to a temporary file - before any
middleware runs, and waits for it as long as the client likes. So a chunked 60 MB upload was
read in full just to be answered 400, and a request declaring 10 MB but sending 1 KB held a
worker until the client gave up. This wrapper sits in front of Django: it refuses a declared
length over the limit at once (413), counts bytes as they arrive (413 as soon as the limit is
passed, chunked or not), and gives each wait for the next piece of body a deadline (408).
Only then does Django see the request, with the body replayed from memory.
"""

from __future__ import annotations

import asyncio
import json

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext_lazy as _

MULTIPART = b"multipart/"


def body_limit_for(scope: dict) -> int:
    """Bytes a request body may have: small JSON documents, or an upload (voice message)."""
    content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
    if content_type.lower().startswith(MULTIPART):
        return settings.REQUEST_UPLOAD_MAX_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


class _Refused(Exception):
    def __init__(self, status: int, code: str, message: str):
        self.status = status
        self.code = code
        self.message = message


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit_for(scope)
        try:
            body, disconnected = await self._read_body(scope, receive, limit)
        except _Refused as refused:
            return await _send_error(send, refused)
        if disconnected:
            return None  # the client went away: no one to answer
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: http.disconnect, when it comes

        return await self.app(scope, replay, send)

    async def _read_body(self, scope, receive, limit: int) -> tuple[bytes, bool]:
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                declared_length = int(declared)
            except ValueError:
                declared_length = -1
            if declared_length < 0:
                raise _Refused(400, "bad_request", _("Invalid Content-Length header."))
            if declared_length > limit:
                raise _Refused(413, "payload_too_large", _("The request body is too large."))
        timeout = settings.REQUEST_BODY_READ_TIMEOUT_SECONDS
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await asyncio.wait_for(receive(), timeout=timeout)
            except TimeoutError:
                raise _Refused(
                    408, "request_timeout", _("The request body did not arrive in time.")
                ) from None
            if message["type"] == "http.disconnect":
                return b"", True
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise _Refused(413, "payload_too_large", _("The request body is too large."))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks), False


async def _send_error(send, refused: _Refused) -> None:
    with translation.override(settings.LANGUAGE_CODE):
        message = str(refused.message)
    body = json.dumps(
        {"error": {"code": refused.code, "message": message, "fields": {}}}, ensure_ascii=False
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                # The rest of the body was not read: the connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
