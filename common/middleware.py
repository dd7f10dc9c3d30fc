"""Security middleware: the CSP header, the request-body cap and the admin login rate limit."""

from __future__ import annotations

import io
import re

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.core.exceptions import DisallowedHost
from django.http import HttpResponse
from django.urls import reverse
from django.utils.translation import gettext as _
from django_ratelimit.core import is_ratelimited

from common.errors import RATE_LIMIT_RETRY_AFTER_SECONDS, json_error, wants_json
from common.net import ratelimit_client_ip

ADMIN_LOGIN_RATE_GROUP = "admin.login"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    """django-csp, plus the page's own host for WebSockets in connect-src.

    CSP Level 3 lets 'self' cover ws:/wss: on the same host, but older Safari does not, and the
    console and chat pages need their socket: name the host explicitly (it was validated
    against ALLOWED_HOSTS by then; a request with a bad Host gets no extra source).
    """

    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        try:
            host = request.get_host()
        except DisallowedHost:
            return parts
        sockets = [f"wss://{host}"] if request.is_secure() else [f"ws://{host}", f"wss://{host}"]
        update = dict(parts.update or {})
        update["connect-src"] = [*update.get("connect-src", []), *sockets]
        parts.update = update
        return parts


def _too_large(request) -> HttpResponse:
    message = _("The request body is too large.")
    if wants_json(request):
        return json_error(413, "payload_too_large", message)
    return HttpResponse(message, status=413, content_type="text/plain; charset=utf-8")


def _content_length(request) -> int:
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class RequestLimitsMiddleware:
    """Answers 413 before a view reads an oversized body.

    Django's own check (DATA_UPLOAD_MAX_MEMORY_SIZE) raises RequestDataTooBig, which becomes a
    generic 400 - or a 500 once DRF has caught it inside a view. Checking the declared
    Content-Length up front gives the client the right status and never touches the body.
    Multipart uploads are left to Django's upload handlers (files do not count toward the cap).
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._voice_path = re.compile(settings.VOICE_UPLOAD_PATH_RE)

    def __call__(self, request):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if request.method == "POST" and self._voice_path.match(request.path):
            # Voice messages: the audio limit (with base64 overhead) applies to every content
            # type, multipart too, so a huge upload is refused before it is spooled to disk.
            limit = settings.VOICE_UPLOAD_MAX_BODY
            if _content_length(request) > limit:
                return _too_large(request)
            if not request.content_type.startswith("multipart/"):
                # JSON (audio_base64): read it here, bounded, so that Django's global cap
                # (DATA_UPLOAD_MAX_MEMORY_SIZE, enforced by `request.body`) does not apply to
                # this one route; a body without a length cannot slip past the bound either.
                body = request.read(limit + 1)
                if len(body) > limit:
                    return _too_large(request)
                request._body = body
                request._stream = io.BytesIO(body)
            return self.get_response(request)
        if limit is not None and not request.content_type.startswith("multipart/"):
            try:
                length = int(request.META.get("CONTENT_LENGTH") or 0)
            except ValueError:
                length = 0
            if length > limit:
                return _too_large(request)
        return self.get_response(request)


class AdminLoginRateLimitMiddleware:
    """ADMIN_LOGIN_RATE_LIMIT (e.g. "10/m") login POSTs per client IP on the admin login page.

    Counted before authentication, so a guesser is slowed down whether the guesses are right or
    wrong; the client IP honours X-Forwarded-For only from TRUSTED_PROXIES.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self._login_path: str | None = None

    def __call__(self, request):
        if request.method == "POST" and request.path == self._path():
            if is_ratelimited(
                request,
                group=ADMIN_LOGIN_RATE_GROUP,
                key=lambda group, req: ratelimit_client_ip(req),
                rate=settings.ADMIN_LOGIN_RATE_LIMIT,
                method="POST",
                increment=True,
            ):
                response = HttpResponse(
                    _("Too many login attempts, please wait a minute and try again."),
                    status=429,
                    content_type="text/plain; charset=utf-8",
                )
                response["Retry-After"] = str(RATE_LIMIT_RETRY_AFTER_SECONDS)
                return response
        return self.get_response(request)

    def _path(self) -> str:
        if self._login_path is None:
            self._login_path = reverse("admin:login")
        return self._login_path


__all__ = [
    "AdminLoginRateLimitMiddleware",
    "ContentSecurityPolicyMiddleware",
    "RequestLimitsMiddleware",
]
