"""Start-up checks: a process with a bad configuration stops at once with one clear line,
instead of starting and failing the first request (or the first task) that needs the piece.

Which checks run is the STARTUP_CHECKS setting (comma-separated; empty = none; on by default
when DEBUG is off). Entry points: cs_platform/asgi.py (web), the worker_init / beat_init
signals (cs_platform/celery.py), and `manage.py startup_check` (systemd ExecStartPre).
Settings errors (unknown STORAGE_BACKEND, placeholder SECRET_KEY) are ImproperlyConfigured
at import time and go through the same one-line exit (`exit_on_error`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

CONNECT_TIMEOUT_SECONDS = 3


class StartupCheckFailed(Exception):
    """One sentence an operator can act on; never a traceback."""


def _redact_url(url: str) -> str:
    from kombu.utils.url import maybe_sanitize_url

    return maybe_sanitize_url(url)


def check_storage() -> None:
    if settings.STORAGE_BACKEND == "local":
        from pathlib import Path

        root = Path(settings.MEDIA_ROOT)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StartupCheckFailed(
                f"media folder {root} (MEDIA_ROOT) cannot be created: {exc.strerror}"
            ) from None
        import os

        if not os.access(root, os.W_OK):
            raise StartupCheckFailed(f"media folder {root} (MEDIA_ROOT) is not writable")
        return
    import boto3
    from botocore.config import Config
    from botocore.exceptions import BotoCoreError, ClientError

    client = boto3.client(
        "s3",
        endpoint_url=settings.AWS_S3_ENDPOINT_URL,
        region_name=settings.AWS_S3_REGION_NAME,
        aws_access_key_id=settings.AWS_ACCESS_KEY_ID,
        aws_secret_access_key=settings.AWS_SECRET_ACCESS_KEY,
        config=Config(
            connect_timeout=CONNECT_TIMEOUT_SECONDS,
            read_timeout=CONNECT_TIMEOUT_SECONDS,
            retries={"max_attempts": 1},
            s3={"addressing_style": settings.AWS_S3_ADDRESSING_STYLE},
        ),
    )
    where = settings.AWS_S3_ENDPOINT_URL or "AWS"
    bucket = settings.AWS_STORAGE_BUCKET_NAME
    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise StartupCheckFailed(
            f"bucket {bucket!r} at {where} (AWS_STORAGE_BUCKET_NAME) is not usable: {code}"
        ) from None
    except BotoCoreError as exc:
        raise StartupCheckFailed(
            f"object storage {where} (AWS_S3_ENDPOINT_URL) is unreachable: {type(exc).__name__}"
        ) from None


def check_broker() -> None:
    url = settings.CELERY_BROKER_URL
    if url.startswith("memory://"):
        return
    from kombu import Connection

    try:
        with Connection(url, connect_timeout=CONNECT_TIMEOUT_SECONDS) as connection:
            connection.ensure_connection(max_retries=1, timeout=CONNECT_TIMEOUT_SECONDS)
    except Exception as exc:
        raise StartupCheckFailed(
            f"Celery broker {_redact_url(url)} (CELERY_BROKER_URL) is unreachable: "
            f"{type(exc).__name__}"
        ) from None


CHECKS: dict[str, Callable[[], None]] = {"storage": check_storage, "broker": check_broker}


def configured_checks() -> list[str]:
    return [n.strip() for n in settings.STARTUP_CHECKS.split(",") if n.strip()]


def startup_check(names: list[str] | None = None) -> None:
    names = configured_checks() if names is None else names
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        raise StartupCheckFailed(
            f"STARTUP_CHECKS names unknown checks {unknown}: use some of {', '.join(CHECKS)}"
        )
    for name in names:
        CHECKS[name]()


@contextmanager
def exit_on_error(process: str) -> Iterator[None]:
    """Turn a configuration error into `<process>: configuration error: <line>` and exit 78
    (EX_CONFIG; systemd units do not restart on it, see deploy/systemd)."""
    try:
        yield
    except (StartupCheckFailed, ImproperlyConfigured) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        sys.stderr.write(f"{process}: configuration error: {first_line}\n")
        sys.stderr.flush()
        raise SystemExit(78) from None
