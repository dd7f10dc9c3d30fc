"""Core Django settings."""

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import BASE_DIR, LOOPBACK_HOSTS, VAR_DIR, env, env_bool, key_weakness

DEBUG = env_bool("DEBUG", False)

_INSECURE_KEY_PREFIX = "django-insecure"
_PLACEHOLDER_KEYS = {"", "change-me", "changeme", "secret"}
_DEV_KEY = f"{_INSECURE_KEY_PREFIX}-dev-only-not-for-production"
SECRET_KEY = env.str("SECRET_KEY", default="")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])


def _refuse_weak_key(name: str, key: str) -> str:
    """`key` if it may sign things here, else ImproperlyConfigured - at start, not only in
    `check --deploy`. Signed audio URLs, JWTs and sessions all hang off these keys: one forged
    JWT is an admin. With DEBUG on, a weak or development key is tolerated only while every
    allowed host is loopback, so it never signs anything reachable from another machine."""
    weakness = (
        "missing or a development default"
        if key in _PLACEHOLDER_KEYS or key.startswith(_INSECURE_KEY_PREFIX)
        else key_weakness(key)
    )
    if weakness is None:
        return key
    if DEBUG and set(ALLOWED_HOSTS) <= LOOPBACK_HOSTS:
        return key or _DEV_KEY
    raise ImproperlyConfigured(
        f"{name} is too weak ({weakness})"
        + (" while DEBUG is off. " if not DEBUG else " and ALLOWED_HOSTS is not loopback only. ")
        + f'Set {name} to a long random value (e.g. `python -c "import secrets; '
        'print(secrets.token_urlsafe(50))"`), or set DEBUG=1 for local development.'
    )


SECRET_KEY = _refuse_weak_key("SECRET_KEY", SECRET_KEY)
# JWTs may have their own key (rotate it without logging everyone out of the admin, or the other
# way round); unset, they use SECRET_KEY. Checked like SECRET_KEY.
JWT_SIGNING_KEY = _refuse_weak_key(
    "JWT_SIGNING_KEY", env.str("JWT_SIGNING_KEY", default=SECRET_KEY)
)

CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "drf_spectacular",
    "channels",
    "simple_history",
    "accounts",
    "dialogs",
    "tts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "common.i18n.DefaultLanguageLocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    "django_ratelimit.middleware.RatelimitMiddleware",
]

ROOT_URLCONF = "cs_platform.urls"
WSGI_APPLICATION = None
ASGI_APPLICATION = "cs_platform.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# --- database -------------------------------------------------------------------------------
# PostgreSQL (psycopg 3) in production and tests; a SQLite file under var/ only as the
# embedded default for `make run`.
DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Under ASGI every request may run in a different thread, and a persistent connection per
    # thread piles up until PostgreSQL refuses more (measured: 72 connections, half the requests
    # 503 under load with 60 s). So no persistent connections: each process keeps a small psycopg
    # pool instead (DB_POOL_MAX per process; a request borrows a connection and returns it when it
    # ends), which saves the ~4 ms connect of every request and bounds the connections to
    # processes x DB_POOL_MAX; requests beyond that wait up to DB_POOL_TIMEOUT seconds (then 503).
    # DB_POOL_MAX=0: a new connection per request (CONN_MAX_AGE applies). Health checks (one
    # round trip per checkout) let both survive a PostgreSQL restart, and the short connect
    # timeout makes an outage fail fast (503) instead of hanging workers.
    _pool_max = env.int("DB_POOL_MAX", default=8)
    DATABASES["default"].setdefault(
        "CONN_MAX_AGE", 0 if _pool_max else env.int("DB_CONN_MAX_AGE", default=0)
    )
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault(
        "connect_timeout", env.int("DB_CONNECT_TIMEOUT", default=3)
    )
    if _pool_max:
        DATABASES["default"]["OPTIONS"]["pool"] = {
            "min_size": min(2, _pool_max),
            "max_size": _pool_max,
            "timeout": env.float("DB_POOL_TIMEOUT", default=3),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- cache ----------------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            # Per-process memory while Redis is down: rate limits keep working, no 500s.
            "BACKEND": "common.cache.FailoverRedisCache",
            "LOCATION": REDIS_URL,
            # Fail fast when Redis is down so requests degrade instead of hanging.
            "OPTIONS": {
                "socket_connect_timeout": 1,
                "socket_timeout": 1,
                # One pool per process, not one per request (see common/redis_pool.py).
                "pool_class": "common.redis_pool.SharedConnectionPool",
            },
        }
    }
    # django-ratelimit's counters: the same Redis, counted in one round trip (common/cache.py).
    CACHES["ratelimit"] = {**CACHES["default"], "BACKEND": "common.cache.RateLimitRedisCache"}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- i18n: Simplified Chinese first, English available ------------------------------------
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", _("Simplified Chinese")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Asia/Shanghai"
USE_I18N = True
USE_TZ = True

# --- static and media -----------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
MEDIA_ROOT = env.str("MEDIA_ROOT", default=str(VAR_DIR / "media"))
MEDIA_URL = "/media/"  # never served as a folder: audio goes through signed URLs
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_AUTOREFRESH = DEBUG

# --- security -------------------------------------------------------------------------------
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
# Behind a TLS-terminating proxy in production; off for `make run` on plain http.
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = not DEBUG
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", not DEBUG)

# --- WeChat ---------------------------------------------------------------------------------
WECHAT_APPID = env.str("WECHAT_APPID", default="")
WECHAT_SECRET = env.str("WECHAT_SECRET", default="")
WECHAT_API_BASE = env.str("WECHAT_API_BASE", default="https://api.weixin.qq.com")
WECHAT_TIMEOUT_SECONDS = env.float("WECHAT_TIMEOUT_SECONDS", default=5.0)
# The dev login exists only when BOTH are set; checked again at request time.
WECHAT_DEV_LOGIN = env_bool("WECHAT_DEV_LOGIN", False)

# --- logging: customer text never goes to logs (see SECURITY.md) --------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}
