"""The deployment recipe (deploy/): the env-file template cannot drift from the settings, the
rendered Nginx site passes `nginx -t` with the app's own limits, and missing TLS files stop the
renderer and Nginx with one clear line. The whole recipe running is `make smoke-prod`."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings

from deploy import envfile

ROOT = Path(__file__).resolve().parents[2]
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"


@pytest.fixture(scope="module")
def nginx() -> str:
    if not Path(NGINX).exists():
        pytest.fail("Debian's nginx is needed: apt-get install nginx (.ci/run installs it)")
    return NGINX


def test_the_env_template_lists_every_setting_with_its_default():
    assert envfile.differences() == []


def test_the_env_check_catches_a_new_setting_and_a_changed_default(tmp_path):
    (tmp_path / "extra.py").write_text(
        'from .env import env, env_bool\nNEW_THING = env.int("NEW_THING", default=5)\n'
        'CHAT_RATE_LIMIT = env.str("CHAT_RATE_LIMIT", default="99/m")\n'
        'FLAG = env_bool("SOME_FLAG", True)\n'
    )
    reads = envfile.settings_reads(tmp_path)
    entries = {"CHAT_RATE_LIMIT": ("30/m", True), "SOME_FLAG": ("1", True), "GONE": ("", True)}

    problems = envfile.differences(reads, entries)

    assert problems == [
        "NEW_THING (extra.py:2) is read by the settings but not listed",
        "GONE is listed but no setting reads it",
        "CHAT_RATE_LIMIT is listed as '30/m' but the settings default is '99/m' (extra.py:3)",
    ]


def _certificate(folder: Path) -> tuple[Path, Path]:
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


def _render(out: Path, cert: Path, key: Path, *more: str):
    return subprocess.run(
        [sys.executable, "deploy/render.py", "--out", str(out), "--standalone",
         "--tls-cert", str(cert), "--tls-key", str(key), "--http-port", "8680",
         "--https-port", "8643", *more],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )  # fmt: skip


def test_the_rendered_site_passes_nginx_t_with_the_app_limits(tmp_path, nginx):
    cert, key = _certificate(tmp_path)
    out = tmp_path / "deploy"

    result = _render(out, cert, key, "--lb", "10.0.0.0/8")

    assert result.returncode == 0, result.stderr
    site = (out / "nginx" / "cs-platform.conf").read_text()
    assert f"client_max_body_size {settings.DATA_UPLOAD_MAX_MEMORY_SIZE};" in site
    assert f"client_max_body_size {settings.VOICE_UPLOAD_MAX_BODY};" in site
    assert "set_real_ip_from 10.0.0.0/8;" in site
    assert f"alias {Path(settings.MEDIA_ROOT).resolve()}/;" in site
    assert "${" not in site  # every placeholder filled
    checked = subprocess.run(
        [nginx, "-t", "-p", str(out), "-c", str(out / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert checked.returncode == 0, checked.stderr
    unit = (out / "systemd" / "cs-web.service").read_text()
    assert "ExecStartPre=" in unit and "manage.py startup_check" in unit
    assert "RestartPreventExitStatus=78" in unit


def test_missing_tls_files_stop_the_renderer_with_one_line(tmp_path):
    result = _render(tmp_path / "out", tmp_path / "nope.pem", tmp_path / "nope.key")

    assert result.returncode == 78
    assert result.stderr.strip() == (
        f"render: configuration error: TLS certificate file {tmp_path / 'nope.pem'} "
        "(--tls-cert) does not exist"
    )


def test_nginx_refuses_a_site_whose_certificate_vanished(tmp_path, nginx):
    cert, key = _certificate(tmp_path)
    out = tmp_path / "deploy"
    assert _render(out, cert, key).returncode == 0
    cert.unlink()

    checked = subprocess.run(
        [nginx, "-t", "-q", "-p", str(out), "-c", str(out / "nginx.conf")],
        capture_output=True,
        text=True,
        check=False,
    )

    assert checked.returncode != 0
    emerg = [line for line in checked.stderr.splitlines() if "[emerg]" in line]
    assert len(emerg) == 1 and str(cert) in emerg[0], checked.stderr
