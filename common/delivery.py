"""Hand a stored audio file to the client once a view has checked the caller may have it.

One serving path for every stored file (TTS clips, uploaded voice messages): the view checks
its signed token, then calls `stored_file_response`. AUDIO_DELIVERY (settings/storage.py)
decides who moves the bytes:

- app:      Django streams the file (make run, tests).
- accel:    an empty response with `X-Accel-Redirect`; Nginx serves the file from its
            `internal` location: /_protected/media/<name> from MEDIA_ROOT on disk, or
            /_protected/s3/<bucket>/<key>?<presigned query> proxied to the object store.
- redirect: 302 to a presigned object-store URL that lives AWS_QUERYSTRING_EXPIRE seconds.

A file the storage no longer has raises FileNotFoundError in every mode, so the caller can
render it again instead of sending the client to a 404 at the proxy.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from django.conf import settings
from django.core.files.storage import Storage, default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect


def _object_url(storage: Storage, name: str) -> str:
    return storage.url(name, expire=settings.AWS_QUERYSTRING_EXPIRE)


def _accel_target(storage: Storage, name: str) -> str:
    prefix = settings.AUDIO_ACCEL_PREFIX
    if settings.STORAGE_BACKEND == "s3":
        # Path-style presigned URL: <endpoint>/<bucket>/<key>?X-Amz-...; Nginx proxies
        # /_protected/s3/ to <endpoint>/, so the signed path and query arrive unchanged.
        url = urlsplit(_object_url(storage, name))
        return f"{prefix}s3{url.path}?{url.query}"
    return f"{prefix}media/{quote(name)}"


def stored_file_response(
    *, name: str, content_type: str, storage: Storage | None = None, max_age: int = 3600
) -> HttpResponse:
    storage = storage or default_storage
    mode = settings.AUDIO_DELIVERY
    # Checked first, in every mode: neither Nginx nor the client can tell us afterwards, and an
    # S3 file opens lazily (a missing object would fail mid-response).
    if not storage.exists(name):
        raise FileNotFoundError(name)
    if mode == "app":
        response: HttpResponse = FileResponse(storage.open(name, "rb"), content_type=content_type)
    elif mode == "redirect":
        response = HttpResponseRedirect(_object_url(storage, name))
        max_age = 0  # the presigned URL expires; never cache the redirect
    else:
        response = HttpResponse(content_type=content_type)
        response["X-Accel-Redirect"] = _accel_target(storage, name)
    response["Cache-Control"] = f"private, max-age={max_age}"
    response["X-Content-Type-Options"] = "nosniff"
    return response
