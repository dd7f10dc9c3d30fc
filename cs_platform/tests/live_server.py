"""A real uvicorn serving the ASGI application on the test database, for tests about what only
a real server shows: how bodies are read, what the access log writes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LiveServer:
    host: str
    port: int
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


@contextmanager
def uvicorn_server(*, log_level: str = "info", **env_overrides: str) -> Iterator[LiveServer]:
    db = connection.settings_dict
    port = free_port()
    env = dict(
        os.environ,
        DJANGO_SETTINGS_MODULE="cs_platform.settings_test",
        DATABASE_URL=(
            f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
        ),
        CELERY_TASK_ALWAYS_EAGER="1",
        TTS_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
        **env_overrides,
    )
    log = tempfile.NamedTemporaryFile(prefix="uvicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "uvicorn", "cs_platform.asgi:application"),
            *("--host", "127.0.0.1", "--port", str(port), "--log-level", log_level),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server = LiveServer("127.0.0.1", port, Path(log.name))
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert process.poll() is None, f"uvicorn exited:\n{server.log()}"
                time.sleep(0.2)
        else:
            raise AssertionError(f"uvicorn did not start:\n{server.log()}")
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        os.unlink(log.name)
