"""Bad configuration stops a process at start with one clear line (exit 78, EX_CONFIG), not at
the first request: unknown storage backend, bucket unreachable or missing, broker unreachable.
Real processes (manage.py, uvicorn, celery) against real services; missing TLS files are the
proxy's part (deploy/tests)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tts.tests.s3_server import ACCESS_KEY, REGION, SECRET_KEY, S3Server

ROOT = Path(__file__).resolve().parents[2]
EX_CONFIG = 78


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]  # nothing listens once the socket closes


def _env(**overrides: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "STORAGE_", "STARTUP_", "CELERY_", "AUDIO_"))
    }
    env.update(
        DJANGO_SETTINGS_MODULE="cs_platform.settings",
        DEBUG="0",
        SECRET_KEY="startup-test-secret-key-0123456789abcdefghijklmnopqrstuvwxyz",
        ALLOWED_HOSTS="127.0.0.1",
        DATABASE_URL=os.environ["DATABASE_URL"],
        REDIS_URL=os.environ["REDIS_URL"],
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def _run(command: list[str], env: dict[str, str], timeout: float = 60):
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def _check(**overrides: str):
    return _run([sys.executable, "manage.py", "startup_check"], _env(**overrides))


def _one_line(result) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


def _s3_env(s3: S3Server, bucket: str, **more: str) -> dict[str, str]:
    return {
        "STORAGE_BACKEND": "s3",
        "AWS_STORAGE_BUCKET_NAME": bucket,
        "AWS_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_S3_REGION_NAME": REGION,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        **more,
    }


def test_a_good_configuration_passes(s3):
    bucket = f"ok-{uuid.uuid4().hex[:8]}"
    s3.client().create_bucket(Bucket=bucket)

    result = _check(**_s3_env(s3, bucket))

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "startup checks passed: storage, broker"


def test_an_unknown_storage_backend_is_one_line():
    result = _check(STORAGE_BACKEND="nfs")

    assert result.returncode == EX_CONFIG
    assert _one_line(result) == (
        "manage.py: configuration error: STORAGE_BACKEND='nfs' is unknown: use one of local, s3"
    )


def test_an_unreachable_object_store_is_one_line(s3):
    endpoint = f"http://127.0.0.1:{_closed_port()}"

    result = _check(**_s3_env(s3, "audio", AWS_S3_ENDPOINT_URL=endpoint))

    assert result.returncode == EX_CONFIG
    assert _one_line(result) == (
        f"startup_check: configuration error: object storage {endpoint} (AWS_S3_ENDPOINT_URL) "
        "is unreachable: EndpointConnectionError"
    )


def test_a_missing_bucket_is_one_line(s3):
    result = _check(**_s3_env(s3, "no-such-bucket"))

    assert result.returncode == EX_CONFIG
    line = _one_line(result)
    assert "bucket 'no-such-bucket'" in line and "(AWS_STORAGE_BUCKET_NAME)" in line
    assert line.endswith("is not usable: 404")


def test_an_unreachable_broker_is_one_line_with_the_password_hidden():
    port = _closed_port()

    result = _check(CELERY_BROKER_URL=f"amqp://cs:hunter2@127.0.0.1:{port}//")

    assert result.returncode == EX_CONFIG
    line = _one_line(result)
    assert line.startswith(
        f"startup_check: configuration error: Celery broker amqp://cs:**@127.0.0.1:{port}//"
    )
    assert "(CELERY_BROKER_URL) is unreachable" in line and "hunter2" not in line


def test_the_web_process_refuses_to_start_with_an_unreachable_broker():
    port = _closed_port()
    env = _env(CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/0")

    result = _run(
        [sys.executable, "-m", "uvicorn", "cs_platform.asgi:application", "--port", "0"], env
    )

    assert result.returncode == EX_CONFIG
    assert _one_line(result) == (
        f"web: configuration error: Celery broker redis://127.0.0.1:{port}/0 "
        "(CELERY_BROKER_URL) is unreachable: OperationalError"
    )


def test_the_worker_refuses_to_start_with_an_unusable_bucket(s3):
    env = _env(**_s3_env(s3, "no-such-bucket"))

    result = _run(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cs_platform",
            "worker",
            "-Q",
            "tts",
            "--pool",
            "solo",
            "--without-mingle",
            "--without-gossip",
        ],
        env,
    )

    assert result.returncode == EX_CONFIG
    assert "worker: configuration error: bucket 'no-such-bucket'" in result.stderr
