"""`make smoke-prod`: the deployment recipe, proven on this machine.

Renders deploy/ into a temporary folder, makes a self-signed certificate, starts Debian's
Nginx with the rendered site, and starts the web process, a Celery worker (queue tts) and
beat with the command lines of the rendered systemd units (DEBUG off, dev login off) on real
PostgreSQL (a fresh database) and Redis. Then, through Nginx over HTTPS and WSS only:

  /readyz green; HTTP -> HTTPS; HTTP/2 offered; the customer logs in with WeChat (a local fake
  jscode2session server) - dev login answers 404; a voiced conversation: the bot reply's
  `message.audio_ready` arrives on the WebSocket and its audio is served by Nginx through
  X-Accel-Redirect (the web process itself answers with an empty body and the header);
  a /api/tts/ cache miss and a /ws/tts/ stream are rendered by the worker, and no web process
  has torch mapped afterwards;
  the internal location is not reachable from outside; the audit rows hold the client IP the
  load balancer sent (and not what an untrusted peer claims); JSON is gzipped; security
  headers appear once each; an oversized body is refused by Nginx (413).

Everything it started is stopped on the way out, whatever happens. Environment:
SMOKE_DATABASE_URL (default: TEST_DATABASE_URL with `_smoke` appended to the database name;
dropped and created), SMOKE_REDIS_URL (default TEST_REDIS_URL), SMOKE_KEEP=1 keeps the folder.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from accounts.tests.wechat_server import FakeWeChatServer  # noqa: E402

LB_CLIENT_IP = "203.0.113.7"  # what the trusted load balancer (127.0.0.1) says
SPOOFED_IP = "198.51.100.9"  # what an untrusted peer (127.0.0.2) claims
VOICED_TEXT = "你好，请问退款多久到账？"  # answered by a canned phrase, spoken by the worker
MISS_TEXT = "您好，您的快递单号已经更新，请注意查收。"
STREAM_TEXT = "您好。请稍等，马上为您查询。"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
STARTED = time.monotonic()


def say(text: str) -> None:
    print(f"[smoke-prod {time.monotonic() - STARTED:5.1f}s] {text}", flush=True)


class SmokeFailed(AssertionError):
    pass


def check(condition: object, what: str) -> None:
    if not condition:
        raise SmokeFailed(what)
    say(f"ok  {what}")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe, *, timeout: float, what: str, processes=()):
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        for name, process in processes:
            if process.poll() is not None:
                raise SmokeFailed(
                    f"{name} exited with {process.returncode} while waiting for {what}"
                )
        try:
            result = probe()
            if result:
                return result
        except Exception as exc:  # not up yet
            last = exc
        time.sleep(0.3)
    raise SmokeFailed(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def database_url() -> str:
    explicit = os.environ.get("SMOKE_DATABASE_URL")
    if explicit:
        return explicit
    base = os.environ.get("TEST_DATABASE_URL", "postgres://postgres@127.0.0.1:5432/cs_platform")
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "_smoke"))


def recreate_database(url: str) -> None:
    import psycopg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def make_certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "tls" / "cert.pem", folder / "tls" / "key.pem"
    cert.parent.mkdir()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def unit_commands(unit: Path, instance: str = "") -> list[list[str]]:
    """ExecStartPre/ExecStart of a rendered unit, as the process list systemd would run."""
    commands = []
    for line in unit.read_text().splitlines():
        key, _, value = line.partition("=")
        if key in ("ExecStartPre", "ExecStart"):
            value = value.replace("%i", instance).replace("%H", socket.gethostname())
            commands.append(shlex.split(value))
    return commands


class Processes:
    def __init__(self, folder: Path, env: dict[str, str]):
        self.folder, self.env, self.running = folder, env, []

    def run(self, command: list[str], what: str) -> None:
        result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True)
        if result.returncode:
            raise SmokeFailed(
                f"{what} failed ({result.returncode}): {result.stderr.strip()[-800:]}"
            )

    def start(self, name: str, command: list[str], **kwargs) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "ab")
        process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, **kwargs,
        )  # fmt: skip
        self.running.append((name, process, log))
        return process

    def start_units(self, units: list[tuple[str, Path, str]]) -> list[subprocess.Popen]:
        """Each unit's ExecStartPre (all units at once, like systemd), then its ExecStart."""
        pres = [
            (
                unit,
                subprocess.Popen(
                    command, cwd=ROOT, env=self.env, stderr=subprocess.PIPE, text=True
                ),
            )
            for _name, unit, instance in units
            for command in unit_commands(unit, instance)[:-1]
        ]
        for unit, process in pres:
            _out, err = process.communicate()
            if process.returncode:
                raise SmokeFailed(f"{unit.name} ExecStartPre failed: {err.strip()[-800:]}")
        return [
            self.start(name, unit_commands(unit, instance)[-1]) for name, unit, instance in units
        ]

    def stop_all(self) -> None:
        for _name, process, log in reversed(self.running):
            if process.poll() is None:
                with suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(20)
                except subprocess.TimeoutExpired:
                    with suppress(ProcessLookupError):
                        os.killpg(process.pid, signal.SIGKILL)
                    process.wait()
            log.close()
        self.running = []

    def tail(self, lines: int = 15) -> str:
        out = []
        for path in sorted(self.folder.glob("*.log")):
            text = path.read_text(errors="replace").splitlines()[-lines:]
            out.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(out)


def main() -> int:
    folder = Path(tempfile.mkdtemp(prefix="smoke-prod-"))
    os.chmod(folder, 0o755)  # noqa: S103 - Nginx's workers read the media folder under it
    with ExitStack() as stack:
        stack.callback(
            lambda: None if os.environ.get("SMOKE_KEEP") else shutil.rmtree(folder, True)
        )
        wechat = stack.enter_context(FakeWeChatServer())
        http_port, https_port, web_port = free_port(), free_port(), free_port()
        db_url = database_url()
        recreate_database(db_url)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "CELERY_"))},
            "DJANGO_SETTINGS_MODULE": "cs_platform.settings",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "CSRF_TRUSTED_ORIGINS": f"https://localhost:{https_port}",
            "DATABASE_URL": db_url,
            "REDIS_URL": os.environ.get(
                "SMOKE_REDIS_URL", os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
            ),
            "MEDIA_ROOT": str(folder / "media"),
            "AUDIO_DELIVERY": "accel",
            "TRUSTED_PROXIES": "127.0.0.1,::1",
            "WECHAT_APPID": "wxsmoke0000000000",
            "WECHAT_SECRET": "smoke-secret",
            "WECHAT_API_BASE": wechat.base_url,
            "WECHAT_DEV_LOGIN": "0",
            "TTS_NUM_THREADS": "1",
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }
        (folder / "media").mkdir()
        os.chmod(folder / "media", 0o755)  # noqa: S103 - read by Nginx's workers
        procs = Processes(folder, env)
        stack.callback(procs.stop_all)
        python = sys.executable
        say(
            f"folder {folder}; database {urlsplit(db_url).path[1:]}; ports {http_port}/{https_port}/{web_port}"
        )
        procs.run([python, "manage.py", "migrate", "--noinput", "-v0"], "migrate")
        say("migrated")
        procs.run([python, "manage.py", "collectstatic", "--noinput", "-v0"], "collectstatic")
        say("static files collected")

        cert, key = make_certificate(folder)
        procs.run(
            [python, "deploy/render.py", "--out", str(folder / "deploy"), "--standalone",
             "--server-name", "localhost", "--http-port", str(http_port),
             "--https-port", str(https_port), "--tls-cert", str(cert), "--tls-key", str(key),
             "--lb", "127.0.0.1", "--web-port", str(web_port), "--web-workers", "1",
             "--venv", str(Path(python).parent.parent), "--worker-concurrency", "1"],
            "render",
        )  # fmt: skip
        rendered = folder / "deploy"
        say("recipe rendered")
        nginx_conf = rendered / "nginx.conf"
        procs.run([NGINX, "-t", "-q", "-p", str(rendered), "-c", str(nginx_conf)], "nginx -t")
        nginx = procs.start(
            "nginx", [NGINX, "-p", str(rendered), "-c", str(nginx_conf), "-g", "daemon off;"]
        )
        units = rendered / "systemd"
        web, worker, beat = procs.start_units(
            [
                ("web", units / "cs-web.service", ""),
                ("worker-tts", units / "cs-worker@.service", "tts"),
                ("beat", units / "cs-beat.service", ""),
            ]
        )
        watched = [("nginx", nginx), ("web", web), ("worker", worker), ("beat", beat)]
        say("nginx, web, worker (tts) and beat started from the rendered units")

        os.environ.update(env)  # the audit checks read the stack's database through the ORM
        try:
            drive(folder, cert, http_port, https_port, web_port, watched)
        except BaseException:
            print(procs.tail(), file=sys.stderr)
            raise
    say(f"passed in {time.monotonic() - STARTED:.1f}s; everything it started is stopped")
    return 0


def drive(folder, cert, http_port, https_port, web_port, watched) -> None:
    web = dict(watched)["web"]
    base = f"https://localhost:{https_port}"
    tls = ssl.create_default_context(cafile=str(cert))
    lb = httpx.Client(
        base_url=base, verify=tls, timeout=30, headers={"X-Forwarded-For": LB_CLIENT_IP}
    )
    # A peer Nginx does not trust (127.0.0.2 is not in --lb): its header must be ignored.
    untrusted = httpx.Client(
        base_url=base, verify=tls, timeout=30, headers={"X-Forwarded-For": SPOOFED_IP},
        transport=httpx.HTTPTransport(verify=tls, local_address="127.0.0.2"),
    )  # fmt: skip

    ready = wait_for(
        lambda: (r := lb.get("/readyz")).status_code == 200 and r.json(),
        timeout=120, what="/readyz through Nginx", processes=watched,
    )  # fmt: skip
    check(ready["status"] == "ready", f"/readyz is green: {ready['checks']}")

    plain = httpx.get(f"http://localhost:{http_port}/api/me/", follow_redirects=False)
    check(
        plain.status_code == 301 and plain.headers["location"] == f"{base}/api/me/",
        "plain HTTP is redirected to HTTPS",
    )
    with socket.create_connection(("127.0.0.1", https_port)) as raw:
        context = ssl.create_default_context(cafile=str(cert))
        context.set_alpn_protocols(["h2", "http/1.1"])
        with context.wrap_socket(raw, server_hostname="localhost") as conn:
            check(conn.selected_alpn_protocol() == "h2", "HTTP/2 is offered (ALPN h2)")

    check(lb.post("/api/auth/dev-login/", json={}).status_code == 404, "dev login is off (404)")
    login = lb.post("/api/auth/wechat/", json={"code": "ok-smoke-customer"})
    check(
        login.status_code == 200,
        f"WeChat login through the fake jscode2session: {login.status_code}",
    )
    token = login.json()["access"]
    auth = {"Authorization": f"Bearer {token}"}
    spoofed = untrusted.post("/api/auth/wechat/", json={"code": "ok-smoke-other"})
    check(spoofed.status_code == 200, "a login from an untrusted peer works too")

    conversation = lb.post("/api/conversations/", headers=auth)
    check(conversation.status_code in (200, 201), "conversation opened")
    conversation_id = conversation.json()["id"]

    events = _listen(base, tls, conversation_id, token)
    posted = lb.post(
        f"/api/conversations/{conversation_id}/messages/",
        headers=auth, json={"text": VOICED_TEXT, "client_id": "smoke-1"},
    )  # fmt: skip
    check(posted.status_code == 201, f"message posted: {posted.status_code}")
    bot_reply = posted.json().get("bot_reply")
    check(bot_reply, "a canned bot reply was created")
    ready_event = events.wait_for(bot_reply["id"], timeout=180, processes=watched)
    audio = ready_event["message"].get("audio") or {}
    url = audio.get("url") or ready_event["message"].get("audio_url")
    check(url, "message.audio_ready arrived over WSS through Nginx")

    clip = lb.get(url)
    check(
        clip.status_code == 200 and clip.headers["content-type"] == "audio/mpeg"
        and clip.content[:1] == b"\xff" and len(clip.content) > 1000,
        f"the clip arrives through Nginx ({len(clip.content)} bytes of MP3)",
    )  # fmt: skip
    check("x-accel-redirect" not in clip.headers, "X-Accel-Redirect is not leaked to the client")
    direct = httpx.get(
        f"http://127.0.0.1:{web_port}{url}",
        headers={"X-Forwarded-Proto": "https", "Host": "localhost"},
    )
    target = direct.headers.get("x-accel-redirect", "")
    check(
        direct.status_code == 200 and direct.content == b"" and target.startswith("/_protected/media/"),
        f"the web process sends no bytes, only X-Accel-Redirect: {target}",
    )  # fmt: skip
    on_disk = folder / "media" / target.removeprefix("/_protected/media/")
    check(on_disk.read_bytes() == clip.content, "Nginx served exactly the stored file")
    check(lb.get(target).status_code == 404, "the internal location is not reachable from outside")
    for name in ("strict-transport-security", "x-content-type-options"):
        check(len(clip.headers.get_list(name)) == 1, f"audio: {name} sent once")

    # Texts no reply has spoken: both are rendered by the worker, never by the web process.
    speech = lb.post("/api/tts/", headers=auth, json={"text": MISS_TEXT, "format": "mp3"})
    check(
        speech.status_code == 200 and speech.content[:1] in (b"\xff", b"I"),
        f"/api/tts/ cache miss answered with audio: {speech.status_code}",
    )
    _stream_tts(base, tls, token)
    _check_web_has_no_engine(web)
    _check_audit()

    for n in range(2):  # enough messages for a body worth compressing (gzip_min_length 512)
        lb.post(
            f"/api/conversations/{conversation_id}/messages/",
            headers=auth, json={"text": f"好的，我再等等。{n}", "client_id": f"smoke-more-{n}"},
        )  # fmt: skip
    listing = lb.get(
        f"/api/conversations/{conversation_id}/messages/",
        headers={**auth, "Accept-Encoding": "gzip"},
    )
    check(listing.headers.get("content-encoding") == "gzip", "JSON is gzipped by Nginx")
    check(json.loads(listing.content)["results"], "the gzipped JSON decodes")
    for path, headers in (("/api/me/", auth), ("/static/admin/css/base.css", {})):
        response = lb.get(path, headers=headers)
        check(response.status_code == 200, f"{path}: 200")
        for name in ("strict-transport-security", "x-content-type-options"):
            count = len(response.headers.get_list(name))
            check(count == 1, f"{path}: {name} sent once (got {count})")
    too_big = lb.post("/api/conversations/", headers=auth, content=b"x" * (300 * 1024))
    check(
        too_big.status_code == 413 and "nginx" in too_big.text,
        "an oversized body is refused by Nginx (413)",
    )

    final = lb.get("/readyz")
    check(final.status_code == 200 and final.json()["status"] == "ready", "/readyz still green")


def _stream_tts(base: str, tls: ssl.SSLContext, token: str) -> None:
    from websockets.sync.client import connect

    uri = base.replace("https://", "wss://") + f"/ws/tts/?token={token}"
    with connect(uri, ssl=tls, origin=base, open_timeout=15) as connection:
        connection.send(json.dumps({"text": STREAM_TEXT, "format": "pcm"}))
        frames = []
        while not frames or isinstance(frames[-1], bytes) or frames[-1]["type"] == "start":
            frame = connection.recv(timeout=60)
            frames.append(frame if isinstance(frame, bytes) else json.loads(frame))
    audio = [frame for frame in frames if isinstance(frame, bytes)]
    end = frames[-1]
    check(
        end["type"] == "end" and end["chunks"] == len(audio) >= 2,
        f"/ws/tts/ streamed {len(audio)} chunks through Nginx: {end}",
    )


def _check_web_has_no_engine(web: subprocess.Popen) -> None:
    """The web process and its children (uvicorn's workers) after a miss and a stream: none
    has torch mapped (the worker rendered both)."""
    pids = [web.pid]
    for pid in pids:  # grows as children are found
        with suppress(FileNotFoundError):
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            pids.extend(int(child) for child in children)
    mapped = [pid for pid in pids if "libtorch" in Path(f"/proc/{pid}/maps").read_text()]
    check(not mapped, f"no web process loaded torch ({len(pids)} processes looked at)")


def _check_audit() -> None:
    import django

    django.setup()
    from accounts.models import AuthEvent
    from tts.models import SynthesisRecord

    logins = list(AuthEvent.objects.order_by("pk").values_list("ip", flat=True))
    check(
        LB_CLIENT_IP in logins, f"login audit holds the client IP the proxy sent ({LB_CLIENT_IP})"
    )
    check(
        "127.0.0.2" in logins and SPOOFED_IP not in logins,
        f"an untrusted peer's X-Forwarded-For is ignored (audited as 127.0.0.2): {logins}",
    )
    record = SynthesisRecord.objects.filter(source="api").order_by("-pk").first()
    check(record and record.client_ip == LB_CLIENT_IP, "synthesis audit holds the proxy-sent IP")


class _Events:
    def __init__(self, connection):
        self.connection = connection

    def wait_for(self, message_id: int, *, timeout: float, processes):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in processes:
                if process.poll() is not None:
                    raise SmokeFailed(f"{name} exited with {process.returncode}")
            try:
                frame = json.loads(self.connection.recv(timeout=1))
            except TimeoutError:
                continue
            if frame.get("type") == "message.audio_ready" and frame["message"]["id"] == message_id:
                self.connection.close()
                return frame
        raise SmokeFailed(f"no message.audio_ready for message {message_id} within {timeout}s")


def _listen(base: str, tls: ssl.SSLContext, conversation_id: int, token: str) -> _Events:
    from websockets.sync.client import connect

    uri = base.replace("https://", "wss://") + f"/ws/chat/{conversation_id}/?token={token}"
    connection = connect(uri, ssl=tls, origin=base, open_timeout=15)
    say("ok  WSS chat socket open through Nginx")
    return _Events(connection)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except SmokeFailed as exc:
        print(f"smoke-prod FAILED: {exc}", file=sys.stderr)
        sys.exit(1)
