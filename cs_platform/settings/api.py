"""DRF, JWT, OpenAPI and rate-limit settings."""

from datetime import timedelta

from .base import CACHES, JWT_SIGNING_KEY
from .env import env

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["common.json_bounded.BoundedJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "common.pagination.DefaultCursorPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "common.errors.api_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", default=15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", default=14)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
    "TOKEN_OBTAIN_SERIALIZER": "accounts.serializers.StaffTokenObtainSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Customer-service voice platform API",
    "DESCRIPTION": "WeChat mini-program API: login, conversations, messages, TTS.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/",
    # Several components have a "status" field with different choices: name the enums.
    "ENUM_NAME_OVERRIDES": {
        "ConversationStatusEnum": "dialogs.models.ConversationStatus",
        "AudioStatusEnum": "dialogs.models.AudioStatus",
        # The payload types' choice fields carry bare values (no labels): a message's audio
        # and a voice message's transcript share this set, and keep the name it had.
        "MessageAudioStatusEnum": ["none", "pending", "ready", "failed"],
        "PresenceEnum": "dialogs.models.Presence",
        "HandoffReasonEnum": "dialogs.models.HandoffReason",
    },
}

# django-ratelimit counts in Redis in production (the `ratelimit` cache: one round trip a
# request, common/cache.py), in process memory under `make run`; limits are settings.
RATELIMIT_USE_CACHE = "ratelimit" if "ratelimit" in CACHES else "default"
RATELIMIT_VIEW = "common.errors.ratelimited_view"
RATELIMIT_IP_META_KEY = "common.net.ratelimit_client_ip"
RATELIMIT_LOGIN_PER_IP = env.str("RATELIMIT_LOGIN_PER_IP", default="20/m")

# Peers whose X-Forwarded-For is believed for API-key IP allowlists (the reverse proxy).
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
