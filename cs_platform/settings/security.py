"""Security settings beyond Django's basics (those stay in base.py): CSP, request limits, the
admin login rate limit, offline API docs and log redaction. The why is in SECURITY.md.

Imported last by the settings package: it extends lists and dicts defined by the others.
"""

from csp import constants as csp

from .api import SPECTACULAR_SETTINGS
from .base import INSTALLED_APPS, LOGGING, MIDDLEWARE
from .env import env

INSTALLED_APPS = [*INSTALLED_APPS, "csp", "drf_spectacular_sidecar"]

# Right after SecurityMiddleware: the body cap must run before CSRF reads request.POST, the
# login limit before anything spends work on the attempt, and the CSP nonce must exist before
# any view renders a template.
_after_security = MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1
MIDDLEWARE = [
    *MIDDLEWARE[:_after_security],
    "common.middleware.ContentSecurityPolicyMiddleware",
    "common.middleware.RequestLimitsMiddleware",
    "common.middleware.AdminLoginRateLimitMiddleware",
    *MIDDLEWARE[_after_security:],
]

# --- Content-Security-Policy (django-csp) ---------------------------------------------------
# Scripts: our own files plus inline blocks carrying this response's nonce - an injected
# <script> or on*= handler does not run. Styles allow inline: the admin and Swagger UI set
# style attributes, and CSS injection is a far smaller risk than script (a nonce would disable
# 'unsafe-inline', so styles get none). connect-src also gets ws(s)://<this host> per request
# (see ContentSecurityPolicyMiddleware). Nothing is loaded from another origin: the platform
# works offline.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [csp.SELF],
        "script-src": [csp.SELF, csp.NONCE],
        "style-src": [csp.SELF, csp.UNSAFE_INLINE],
        "img-src": [csp.SELF, "data:"],
        "font-src": [csp.SELF, "data:"],
        "media-src": [csp.SELF, "blob:"],
        "connect-src": [csp.SELF],
        "object-src": [csp.NONE],
        "base-uri": [csp.SELF],
        "form-action": [csp.SELF],
        "frame-ancestors": [csp.NONE],
    },
}

# Swagger UI and ReDoc from the pinned drf-spectacular-sidecar package, served as our own static
# files: no CDN (offline operation, and no third-party script on a page holding a JWT).
SPECTACULAR_SETTINGS.update(
    {
        "SWAGGER_UI_DIST": "SIDECAR",
        "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
        "REDOC_DIST": "SIDECAR",
    }
)

# --- request limits ----------------------------------------------------------------------------
# Every API body is a small JSON document (a message is at most a few thousand characters):
# 256 KiB is generous. Bigger bodies get 413 (RequestLimitsMiddleware) without being read.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("DATA_UPLOAD_MAX_MEMORY_SIZE", default=256 * 1024)
DATA_UPLOAD_MAX_NUMBER_FIELDS = 200
# Under ASGI the cap is enforced while the body arrives, before Django and authentication
# (common/body_limits.py): uploads (multipart: voice messages) get their own cap, and a
# body that stalls longer than the read timeout between two pieces is answered 408.
REQUEST_UPLOAD_MAX_BYTES = env.int("REQUEST_UPLOAD_MAX_BYTES", default=10 * 1024 * 1024)
REQUEST_BODY_READ_TIMEOUT_SECONDS = env.float("REQUEST_BODY_READ_TIMEOUT_SECONDS", default=10.0)

# Admin login POSTs per client IP (django-ratelimit rate syntax); over it -> 429.
ADMIN_LOGIN_RATE_LIMIT = env.str("ADMIN_LOGIN_RATE_LIMIT", default="10/m")

# --- log hygiene -------------------------------------------------------------------------------
# The redacting formatter formats every handler we configure (caplog and other foreign handlers
# are not ours, and see the records as logged). httpx logs each request URL at INFO - jscode2session URLs carry the WeChat app
# secret - so HTTP client libraries log warnings only. uvicorn's loggers go through the same
# handler, so the JWT in /ws/...?token= never reaches the access log.
LOGGING["formatters"]["plain"]["()"] = "common.redaction.RedactingFormatter"
LOGGING["loggers"].update(
    {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # No level: uvicorn's --log-level still decides; only the handler (and formatter) change.
        "uvicorn.access": {"handlers": ["console"], "propagate": False},
        "uvicorn.error": {"handlers": ["console"], "propagate": False},
        # Django's own "django" logger (request warnings such as "Not Found: /media/audio/<token>")
        # otherwise keeps the handler of Django's DEFAULT_LOGGING, which redacts nothing.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
    }
)
