"""Render the deployment recipe (Nginx site, systemd units) from the app's own settings.

    python deploy/render.py --out /tmp/cs-deploy --server-name cs.example.com \
        --tls-cert /etc/ssl/cs/fullchain.pem --tls-key /etc/ssl/cs/privkey.pem

Values that must agree between the proxy and the app (body limits, media root, object-store
endpoint, HSTS, the internal audio location) are read from the settings the processes will
use (the same environment, e.g. `set -a; . /etc/cs-platform/env; set +a` first), so they
cannot drift. `--standalone` adds an nginx.conf that runs the site from the output folder
(`nginx -p OUT -c nginx.conf`), which `make smoke-prod` uses.

Bad input (missing TLS files, S3 without an endpoint Nginx can reach) stops with one line
and exit 78, like the app's own start-up checks.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
EX_CONFIG = 78
PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")


class RenderError(Exception):
    pass


def fill(template: str, values: dict[str, str]) -> str:
    """Replace ${UPPER_NAME} only; Nginx's $host and friends are left alone."""

    def one(match: re.Match) -> str:
        name = match.group(1)
        if name not in values:
            raise RenderError(f"template placeholder ${{{name}}} has no value")
        return str(values[name])

    return PLACEHOLDER.sub(one, template)


def _settings():
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    import django
    from django.conf import settings

    django.setup()
    return settings


def _listen(port: int) -> str:
    return f"{port}"


def site_values(args, settings) -> dict[str, str]:
    for label, path in (("certificate", args.tls_cert), ("key", args.tls_key)):
        if not Path(path).is_file():
            flag = "--tls-cert" if label == "certificate" else "--tls-key"
            raise RenderError(f"TLS {label} file {path} ({flag}) does not exist")
    prefix = settings.AUDIO_ACCEL_PREFIX
    values = {
        "SERVER_NAME": args.server_name,
        "HTTP_LISTEN": _listen(args.http_port),
        "HTTPS_LISTEN": _listen(args.https_port),
        "HTTPS_PORT_SUFFIX": "" if args.https_port == 443 else f":{args.https_port}",
        "TLS_CERT_FILE": str(Path(args.tls_cert).resolve()),
        "TLS_KEY_FILE": str(Path(args.tls_key).resolve()),
        "UPSTREAM_SERVERS": "\n".join(f"    server {u};" for u in args.upstream),
        "SET_REAL_IP_FROM": "\n".join(f"    set_real_ip_from {p};" for p in args.lb)
        or "    # no load balancer in front: client X-Forwarded-For headers are ignored",
        "BODY_MAX_BYTES": str(settings.DATA_UPLOAD_MAX_MEMORY_SIZE),
        "VOICE_BODY_MAX_BYTES": str(
            getattr(settings, "VOICE_UPLOAD_MAX_BODY", settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        ),
        "STATIC_ROOT": str(Path(settings.STATIC_ROOT).resolve()),
        "MEDIA_ROOT": str(Path(settings.MEDIA_ROOT).resolve()),
        "ACCEL_PREFIX": prefix,
        "HSTS_SECONDS": str(settings.SECURE_HSTS_SECONDS),
        "S3_LOCATION": "",
    }
    if settings.STORAGE_BACKEND == "s3":
        endpoint = settings.AWS_S3_ENDPOINT_URL or (
            f"https://s3.{settings.AWS_S3_REGION_NAME or 'us-east-1'}.amazonaws.com"
        )
        if settings.AWS_S3_ADDRESSING_STYLE != "path":
            raise RenderError(
                "AUDIO_DELIVERY=accel through Nginx needs AWS_S3_ADDRESSING_STYLE=path "
                "(or use AUDIO_DELIVERY=redirect)"
            )
        s3 = (HERE / "nginx" / "s3-location.template").read_text()
        values["S3_LOCATION"] = fill(
            s3,
            {
                "ACCEL_PREFIX": prefix,
                "S3_ENDPOINT": endpoint.rstrip("/"),
                "S3_HOST": urlsplit(endpoint).netloc,
                "HSTS_SECONDS": values["HSTS_SECONDS"],
            },
        )
    return values


def unit_values(args) -> dict[str, str]:
    venv = Path(args.venv)
    return {
        "RUN_USER": args.run_user,
        "APP_DIR": str(Path(args.app_dir).resolve()),
        "ENV_FILE": args.env_file,
        "VENV": str(venv),
        "PYTHON": str(venv / "bin" / "python"),
        "VAR_DIR": str(Path(args.app_dir).resolve() / "var"),
        "WEB_BIND": args.web_bind,
        "WEB_PORT": str(args.web_port),
        "WEB_WORKERS": str(args.web_workers),
        "WORKER_CONCURRENCY": str(args.worker_concurrency),
    }


STANDALONE = """\
# Runs the site from this folder: nginx -p {out} -c nginx.conf (make smoke-prod).
worker_processes 1;
pid {out}/nginx.pid;
error_log {out}/nginx-error.log warn;
{user}
events {{ worker_connections 256; }}
http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {out}/nginx-access.log;
    client_body_temp_path {out}/tmp/body;
    proxy_temp_path {out}/tmp/proxy;
    fastcgi_temp_path {out}/tmp/fastcgi;
    uwsgi_temp_path {out}/tmp/uwsgi;
    scgi_temp_path {out}/tmp/scgi;
    sendfile on;
    server_tokens off;
    include {out}/nginx/cs-platform.conf;
}}
"""


def render(args) -> list[Path]:
    settings = _settings()
    out = Path(args.out).resolve()
    (out / "nginx").mkdir(parents=True, exist_ok=True)
    (out / "systemd").mkdir(parents=True, exist_ok=True)
    written = []
    site = fill((HERE / "nginx" / "site.conf.template").read_text(), site_values(args, settings))
    path = out / "nginx" / "cs-platform.conf"
    path.write_text(site)
    written.append(path)
    units = unit_values(args)
    for template in sorted((HERE / "systemd").glob("*.service.template")):
        path = out / "systemd" / template.name.removesuffix(".template")
        path.write_text(fill(template.read_text(), units))
        written.append(path)
    if args.standalone:
        (out / "tmp").mkdir(exist_ok=True)
        user = "user root;" if os.geteuid() == 0 else ""
        path = out / "nginx.conf"
        path.write_text(STANDALONE.format(out=out, user=user))
        written.append(path)
    return written


def parse(argv: list[str] | None = None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--server-name", default="_")
    parser.add_argument("--http-port", type=int, default=80)
    parser.add_argument("--https-port", type=int, default=443)
    parser.add_argument("--tls-cert", required=True)
    parser.add_argument("--tls-key", required=True)
    parser.add_argument(
        "--upstream", action="append", help="uvicorn address, repeatable (default 127.0.0.1:8001)"
    )
    parser.add_argument(
        "--lb",
        action="append",
        default=[],
        help="address/CIDR of a load balancer in front of Nginx whose X-Forwarded-For is "
        "believed (repeatable; none: Nginx is the edge)",
    )
    parser.add_argument("--app-dir", default=str(ROOT))
    parser.add_argument("--venv", default=str(ROOT / ".venv"))
    parser.add_argument("--env-file", default="/etc/cs-platform/env")
    parser.add_argument("--run-user", default="cs")
    parser.add_argument("--web-bind", default="127.0.0.1")
    parser.add_argument("--web-port", type=int, default=8001)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--worker-concurrency", type=int, default=1)
    parser.add_argument("--standalone", action="store_true")
    args = parser.parse_args(argv)
    args.upstream = args.upstream or [f"{args.web_bind}:{args.web_port}"]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    try:
        written = render(args)
    except RenderError as exc:
        print(f"render: configuration error: {exc}", file=sys.stderr)
        return EX_CONFIG
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
