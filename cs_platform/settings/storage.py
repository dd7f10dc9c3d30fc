"""Where audio files live (synthesised clips and uploaded voice messages) and how they reach
the client. See docs/deploy.md "Shared storage".

Local disk is the default (one machine, `make run`). With more than one machine every process
must see the same files, so they go to S3-compatible object storage (MinIO, Tencent COS,
Aliyun OSS, AWS) through django-storages. Either way a client only ever gets a signed,
expiring URL of ours; the view checks the token, then hands delivery to the proxy or the
object store so Python never streams audio bytes in production.
"""

from django.core.exceptions import ImproperlyConfigured

from .base import DEBUG, STORAGES
from .env import env

STORAGE_BACKENDS = {
    "local": "django.core.files.storage.FileSystemStorage",
    "s3": "storages.backends.s3.S3Storage",
}
STORAGE_BACKEND = env.str("STORAGE_BACKEND", default="local")
if STORAGE_BACKEND not in STORAGE_BACKENDS:
    raise ImproperlyConfigured(
        f"STORAGE_BACKEND={STORAGE_BACKEND!r} is unknown: use one of {', '.join(STORAGE_BACKENDS)}"
    )

# How the signed audio URL delivers the file once the token checked out:
#   app      - Django streams it (the default: make run, tests, one machine without Nginx)
#   accel    - (deploy/ sets it) an `X-Accel-Redirect` to Nginx's internal location: local files from disk, S3
#              objects through Nginx's proxy to a presigned URL (the client never sees S3)
#   redirect - 302 to a short-lived presigned S3 URL (the client fetches from the object store)
AUDIO_DELIVERY_MODES = ("app", "accel", "redirect")
AUDIO_DELIVERY = env.str("AUDIO_DELIVERY", default="app")
if AUDIO_DELIVERY not in AUDIO_DELIVERY_MODES:
    raise ImproperlyConfigured(
        f"AUDIO_DELIVERY={AUDIO_DELIVERY!r} is unknown: use one of {', '.join(AUDIO_DELIVERY_MODES)}"
    )
if AUDIO_DELIVERY == "redirect" and STORAGE_BACKEND != "s3":
    raise ImproperlyConfigured("AUDIO_DELIVERY=redirect needs STORAGE_BACKEND=s3")
# Nginx's `internal` locations (deploy/nginx/site.conf.template): clients cannot request them.
AUDIO_ACCEL_PREFIX = "/_protected/"

# --- S3-compatible object storage (STORAGE_BACKEND=s3) ------------------------------------
AWS_STORAGE_BUCKET_NAME = env.str("AWS_STORAGE_BUCKET_NAME", default="")
AWS_S3_ENDPOINT_URL = env.str("AWS_S3_ENDPOINT_URL", default="") or None
AWS_S3_REGION_NAME = env.str("AWS_S3_REGION_NAME", default="") or None
AWS_ACCESS_KEY_ID = env.str("AWS_ACCESS_KEY_ID", default="") or None
AWS_SECRET_ACCESS_KEY = env.str("AWS_SECRET_ACCESS_KEY", default="") or None
# path (MinIO, moto) or virtual (AWS, COS, OSS).
AWS_S3_ADDRESSING_STYLE = env.str("AWS_S3_ADDRESSING_STYLE", default="path")
# Prefix inside the bucket, so one bucket can hold several environments.
AWS_LOCATION = env.str("AWS_LOCATION", default="")
# Lifetime of a presigned URL handed out after our token check: only long enough to start
# playback; our own signed URL (TTS_AUDIO_URL_TTL_SECONDS) stays the gate.
AWS_QUERYSTRING_EXPIRE = env.int("AWS_QUERYSTRING_EXPIRE", default=60)

if STORAGE_BACKEND == "s3":
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
    STORAGES = {
        **STORAGES,
        "default": {
            "BACKEND": STORAGE_BACKENDS["s3"],
            "OPTIONS": {
                "bucket_name": AWS_STORAGE_BUCKET_NAME,
                "endpoint_url": AWS_S3_ENDPOINT_URL,
                "region_name": AWS_S3_REGION_NAME,
                "access_key": AWS_ACCESS_KEY_ID,
                "secret_key": AWS_SECRET_ACCESS_KEY,
                "addressing_style": AWS_S3_ADDRESSING_STYLE,
                "signature_version": "s3v4",
                "location": AWS_LOCATION,
                "querystring_auth": True,
                "querystring_expire": AWS_QUERYSTRING_EXPIRE,
                "default_acl": None,
                "file_overwrite": True,  # clip names are content hashes: same name, same bytes
            },
        },
    }

# Checks every process runs when it starts (common/startup.py): a bad configuration stops
# it with one clear line instead of failing the first request.
STARTUP_CHECKS = env.str("STARTUP_CHECKS", default="" if DEBUG else "storage,broker")
