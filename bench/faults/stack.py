"""A private, disposable stack for fault scripts: PostgreSQL, Redis, uvicorn, Celery workers.

Everything runs on its own ports and in its own temporary directory, so a script can stop,
restart or SIGKILL any piece without touching the shared services (PostgreSQL 5432, Redis 6379)
that other people's test runs use. `Stack` is a context manager: whatever happens inside the
`with` block, every process it started is stopped and the directory removed on exit.

    with Stack("redis") as stack:
        stack.start_server(); stack.start_worker()
        stack.django()  # the script's own ORM access to the stack's database
        ...

Ports are overridable with FAULTS_PG_PORT / FAULTS_REDIS_PORT / FAULTS_HTTP_PORT.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
PG_BIN = Path(os.environ.get("FAULTS_PG_BIN", "/usr/lib/postgresql/15/bin"))
PG_USER = "postgres"  # initdb/postgres refuse to run as root


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def wait_for(check: Callable[[], object], *, timeout: float, interval: float = 0.2, what: str):
    """Poll `check` until it returns something truthy; its exceptions count as 'not yet'."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
        except Exception as exc:  # the thing is still coming up
            last_error = exc
        else:
            if result:
                return result
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what} (last error: {last_error})")


def _as_postgres(command: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", PG_USER, "--", *command]
    return command


class Stack:
    def __init__(
        self,
        name: str,
        *,
        pg_port: int | None = None,
        redis_port: int | None = None,
        http_port: int | None = None,
        env: dict[str, str] | None = None,
    ):
        self.name = name
        self.pg_port = pg_port or int(os.environ.get("FAULTS_PG_PORT", 5447))
        self.redis_port = redis_port or int(os.environ.get("FAULTS_REDIS_PORT", 6397))
        self.http_port = http_port or int(os.environ.get("FAULTS_HTTP_PORT", 8797))
        self.extra_env = env or {}
        # Children get the environment as it was, not what django() adds for this process.
        self._base_environ = dict(os.environ)
        self.dir: Path | None = None
        self.redis: subprocess.Popen | None = None
        self.server: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self._others: list[subprocess.Popen] = []
        self._pg_started = False
        self._logs: list = []

    # --- environment ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def database_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.pg_port}/cs_faults"

    @property
    def env(self) -> dict[str, str]:
        assert self.dir is not None
        return {
            **self._base_environ,
            "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
            "DATABASE_URL": self.database_url,
            "REDIS_URL": f"redis://127.0.0.1:{self.redis_port}/0",
            "SECRET_KEY": "faults-secret-key-not-for-production-0123456789abcdefghij",
            "DEBUG": "0",
            "SECURE_SSL_REDIRECT": "0",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CHAT_RATE_LIMIT": "100000/m",
            "WECHAT_APPID": "wx-faults-bench",  # /readyz needs WeChat configured
            "WECHAT_SECRET": "faults-bench-secret",
            "MEDIA_ROOT": str(self.dir / "media"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
            "TTS_NUM_THREADS": "1",
            **self.extra_env,
        }

    def log_path(self, name: str) -> Path:
        assert self.dir is not None
        return self.dir / f"{name}.log"

    # --- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> Stack:
        for port in (self.pg_port, self.redis_port, self.http_port):
            if not port_free(port):
                raise RuntimeError(f"port {port} is busy: set FAULTS_*_PORT to free ports")
        self.dir = Path(tempfile.mkdtemp(prefix=f"faults-{self.name}-"))
        os.chmod(self.dir, 0o777)  # the postgres user writes its cluster and log here
        self._previous_sigterm = signal.signal(signal.SIGTERM, self._on_sigterm)
        try:
            self.pg_init()
            self.pg_start()
            self.redis_start()
            self._migrate()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def _on_sigterm(self, signum, frame):
        raise KeyboardInterrupt("SIGTERM")  # unwinds through __exit__, which cleans up

    def close(self) -> None:
        for process in [*self.workers, self.server, *self._others]:
            if process is not None:
                self._stop(process)
        self.workers, self.server, self._others = [], None, []
        if self.redis is not None:
            self._stop(self.redis)
            self.redis = None
        if self._pg_started:
            self.pg_stop(mode="immediate")
        for log in self._logs:
            log.close()
        if self.dir is not None and not os.environ.get("FAULTS_KEEP"):
            shutil.rmtree(self.dir, ignore_errors=True)
        signal.signal(signal.SIGTERM, getattr(self, "_previous_sigterm", signal.SIG_DFL))

    @staticmethod
    def _stop(process: subprocess.Popen, timeout: float = 10) -> None:
        if process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def _spawn(self, command: list[str], log_name: str, env: dict | None = None):
        log = open(self.log_path(log_name), "ab")
        self._logs.append(log)
        return subprocess.Popen(
            command, cwd=ROOT, env=env or self.env, stdout=log, stderr=subprocess.STDOUT
        )

    # --- PostgreSQL -------------------------------------------------------------------------

    @property
    def pg_data(self) -> Path:
        assert self.dir is not None
        return self.dir / "pgdata"

    def pg_init(self) -> None:
        subprocess.run(
            _as_postgres(
                [str(PG_BIN / "initdb"), "-D", str(self.pg_data), "-A", "trust", "-U", PG_USER]
            ),
            check=True,
            capture_output=True,
        )

    def pg_start(self) -> None:
        options = f"-p {self.pg_port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off"
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_ctl"),
                    "-D",
                    str(self.pg_data),
                    "-o",
                    options,
                    "-l",
                    str(self.log_path("postgres")),
                    "-w",
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
        )
        self._pg_started = True

    def pg_stop(self, mode: str = "fast") -> None:
        subprocess.run(
            [
                *_as_postgres([str(PG_BIN / "pg_ctl"), "-D", str(self.pg_data), "-m", mode, "-w"]),
                "stop",
            ],
            check=False,
            capture_output=True,
        )
        self._pg_started = False

    def _migrate(self) -> None:
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres", autocommit=True
        ) as db:
            db.execute("create database cs_faults")
        subprocess.run(
            [PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=self.env,
            check=True,
        )

    # --- Redis ------------------------------------------------------------------------------

    def redis_start(self) -> None:
        assert self.dir is not None
        # No persistence: a restart loses everything in Redis, queued tasks included (the
        # worst case the recovery sweep must cover).
        self.redis = self._spawn(
            [
                "redis-server",
                "--port",
                str(self.redis_port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.dir),
            ],
            "redis",
        )
        wait_for(lambda: not port_free(self.redis_port), timeout=10, what="redis")

    def redis_stop(self) -> None:
        if self.redis is not None:
            self._stop(self.redis)
            self.redis = None

    # --- uvicorn and Celery -----------------------------------------------------------------

    def start_server(self, env: dict | None = None) -> subprocess.Popen:
        self.server = self._spawn(
            [
                PYTHON,
                "-m",
                "uvicorn",
                "cs_platform.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.http_port),
                "--log-level",
                "warning",
                "--no-access-log",
            ],
            "uvicorn",
            env,
        )
        wait_for(self._healthz, timeout=60, what="uvicorn /healthz")
        return self.server

    def _healthz(self) -> bool:
        import httpx

        assert self.server is not None
        if self.server.poll() is not None:
            raise RuntimeError(f"uvicorn exited: {self.log_path('uvicorn').read_text()[-2000:]}")
        return httpx.get(f"{self.base_url}/healthz", timeout=2).status_code == 200

    def start_worker(self, *, name: str = "", env: dict | None = None) -> subprocess.Popen:
        node = name or f"faults-{uuid.uuid4().hex[:6]}"
        worker = self._spawn(
            [
                PYTHON,
                "-m",
                "celery",
                "-A",
                "cs_platform",
                "worker",
                "-Q",
                "tts,default",
                "--concurrency",
                "1",
                "--pool",
                "prefork",
                "-l",
                "info",
                "-n",
                f"{node}@%h",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            f"worker-{node}",
            env,
        )
        self.workers.append(worker)
        wait_for(
            lambda: "ready." in self.log_path(f"worker-{node}").read_text(errors="replace"),
            timeout=60,
            what=f"celery worker {node}",
        )
        worker.node = node  # type: ignore[attr-defined]
        return worker

    def stop_server_and_workers(self) -> None:
        for process in [*self.workers, self.server]:
            if process is not None:
                self._stop(process)
        self.workers, self.server = [], None

    def worker_log(self, worker: subprocess.Popen) -> str:
        return self.log_path(f"worker-{worker.node}").read_text(errors="replace")  # type: ignore[attr-defined]

    def worker_children(self, worker: subprocess.Popen) -> list[int]:
        out = subprocess.run(
            ["pgrep", "-P", str(worker.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]

    def kill_worker(self, worker: subprocess.Popen) -> None:
        """SIGKILL the worker and its pool children (a machine crash / OOM kill)."""
        for pid in self.worker_children(worker):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        worker.kill()
        worker.wait()
        self.workers.remove(worker)

    # --- the script's own Django ------------------------------------------------------------

    def django(self) -> None:
        """Set up Django in this process against the stack's database and Redis."""
        os.environ.update(self.env)
        # The script is the instrument: a plain connection per use, so its own reads right
        # after a PostgreSQL restart do not wait on a pool that is still reconnecting.
        os.environ["DB_POOL_MAX"] = "0"
        sys.path.insert(0, str(ROOT))
        import django

        django.setup()


def run(main: Callable[[], bool]) -> None:
    """Run a scenario: exit 0 on PASS, 1 on FAIL (also when it raised)."""
    started = time.monotonic()
    try:
        passed = main()
    except KeyboardInterrupt:
        say("interrupted")
        passed = False
    except Exception as exc:
        import traceback

        traceback.print_exc()
        say(f"error: {type(exc).__name__}: {exc}")
        passed = False
    say(f"{'PASS' if passed else 'FAIL'} in {time.monotonic() - started:.0f}s")
    sys.exit(0 if passed else 1)


# --- fixtures made through our own services (after Stack.django()) -------------------------


def customer_token(openid: str) -> tuple[int, str]:
    """(user id, JWT access token) for a customer, as the WeChat login would issue it."""
    from accounts.services import customer_get_or_create, tokens_for_user

    user = customer_get_or_create(openid=openid)
    return user.pk, tokens_for_user(user=user)["access"]


def staff_session(username: str) -> str:
    """A logged-in superuser's session id (cookie `sessionid`) for the console and the admin."""
    from django.contrib.auth import (
        BACKEND_SESSION_KEY,
        HASH_SESSION_KEY,
        SESSION_KEY,
        get_user_model,
    )
    from django.contrib.sessions.backends.db import SessionStore

    from accounts.models import Role
    from accounts.services import staff_user_set_role

    user_model = get_user_model()
    user = user_model.objects.filter(username=username).first()
    if user is None:
        user = user_model.objects.create_superuser(username=username, password=None)
        user = staff_user_set_role(user=user, role=Role.ADMIN)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return session.session_key


def db_close() -> None:
    """Drop the script's own database connection (before/after a PostgreSQL restart)."""
    from django.db import connections

    connections.close_all()


def start_beat(stack: Stack) -> subprocess.Popen:
    """`celery beat` (the periodic recovery sweep), its schedule file in the stack's folder."""
    assert stack.dir is not None
    schedule = str(stack.dir / "beat-schedule")
    beat = stack._spawn(
        [PYTHON, "-m", "celery", "-A", "cs_platform", "beat", "-s", schedule, "--pidfile", ""],
        "beat",
    )
    stack._others.append(beat)
    return beat
