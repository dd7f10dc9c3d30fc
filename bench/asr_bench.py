"""Speech recognition round trip: our TTS speaks, every upload format carries it, Whisper hears.

Usage:  .venv/bin/python bench/asr_bench.py [--threads 2] [--device cpu|cuda] [--limit N]
Models: `manage.py tts_install_model` and `manage.py asr_install_model` first.

For each of the customer-service sentences below (numbers, dates, times, codes, money,
polyphones) the in-process TTS engine renders the audio; it is encoded to every accepted upload
format (tts/asr/encoding.py: the shapes wx.getRecorderManager, WeChat SILK and MediaRecorder
produce), decoded by the production path (tts/asr/decoding.py) and transcribed by the
production recogniser (tts/asr/recognizer.py). Reported per format: character error rate
(edit distance over hanzi after both sides are read the same way: numbers spelled out by the
TTS normaliser, punctuation dropped, Traditional -> Simplified) and real-time factor (wall
seconds of recognition / seconds of audio; also process CPU seconds / audio seconds, which is
what a dedicated core would see on this shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SENTENCES = [
    "您好，请问有什么可以帮您？",
    "我的订单号是二零二六一二零三八八，一直没有发货。",
    "我想申请退款，金额是三百五十八元。",
    "快递单号是SF一二三四五六七八九零。",
    "请在十二月五日下午三点以前完成付款。",
    "您的验证码是六七八九，五分钟内有效。",
    "这件衣服的尺码偏大，我想换小一号的。",
    "我上周三买的耳机，今天收到发现坏了。",
    "请问退货运费由谁承担？",
    "会员积分可以抵扣百分之十的货款。",
    "我的手机号是一三八零零一三八零零零。",
    "优惠券满两百减三十，明天就过期了。",
    "银行卡尾号四五六七的账户扣款两次。",
    "发票抬头写公司名称，税号稍后发给你们。",
    "这个问题我已经反映了三次，还没有解决。",
    "我要投诉，客服态度太差了。",
    "请帮我转人工客服。",
    "商品是二零二五年八月一日生产的，保质期一年。",
    "麻烦把收货地址改成北京市朝阳区建国路八十八号。",
    "这个长款外套还有长一点的吗？",
    "我们银行的行长明天会来处理。",
    "他把重要的文件重新打印了一遍。",
    "这家店的东西质量好，我很喜欢。",
    "麻烦你们尽快处理，我着急用。",
    "差不多等了一个小时，还是没有人回复。",
    "请问晚上九点以后还能下单吗？",
    "每月十五号自动续费二十五元。",
    "我想把套餐从五十九元改成三十九元。",
    "订单里少发了两件，一共应该是五件。",
    "谢谢你的帮助，问题已经解决了。",
    "请问周末可以送货上门吗？",
    "我要开增值税专用发票。",
]


def _reading(text: str) -> str:
    """Both sides read alike: numbers spelled by the TTS normaliser, only hanzi kept."""
    from tts.asr.recognizer import to_simplified
    from tts.engine.frontend import normalise_text

    spoken = normalise_text(to_simplified(text))
    return "".join(re.findall(r"[\u4e00-\u9fff]", spoken))


def _edit_distance(ref: str, hyp: str) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, start=1):
        cur = [i]
        for j, h in enumerate(hyp, start=1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h)))
        prev = cur
    return prev[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--beam", type=int, default=5, help="beam size (production: ASR_BEAM_SIZE)")
    parser.add_argument("--limit", type=int, default=0, help="only the first N sentences")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--formats", default="", help="comma-separated subset (default: all)")
    args = parser.parse_args()

    from tts.asr.decoding import decode_audio
    from tts.asr.encoding import CLIENT_RATES, ROUND_TRIP_FORMATS, encode_as
    from tts.asr.recognizer import RecognizerConfig, WhisperRecognizer
    from tts.engine.synthesizer import EngineConfig, load

    model_dir = Path(os.environ.get("TTS_MODEL_DIR", REPO / "var" / "models"))
    asr_dir = Path(os.environ.get("ASR_MODEL_DIR", model_dir / "whisper-base"))
    tts = load(EngineConfig(model_dir=model_dir / "baker", num_threads=args.threads))
    recognizer = WhisperRecognizer(
        RecognizerConfig(
            model_dir=asr_dir, device=args.device, cpu_threads=args.threads, beam_size=args.beam
        )
    )
    sentences = SENTENCES[: args.limit] if args.limit else SENTENCES
    speech = [tts.synthesize(text) for text in sentences]
    recognizer.transcribe(speech[0].samples[::3] * 0, prompt="")  # warm-up

    rows = []
    formats = [f for f in args.formats.split(",") if f] or list(ROUND_TRIP_FORMATS)
    for fmt in formats:
        errors = chars = 0
        wall = cpu = audio_s = 0.0
        size = 0
        worst = (0.0, "", "")
        for text, spoken in zip(sentences, speech, strict=True):
            data = encode_as(spoken.samples, spoken.sample_rate, fmt)
            size += len(data)
            decoded = decode_audio(data, declared=fmt, sample_rate=CLIENT_RATES[fmt])
            c0, w0 = time.process_time(), time.perf_counter()
            result = recognizer.transcribe(decoded.samples)
            wall += time.perf_counter() - w0
            cpu += time.process_time() - c0
            audio_s += result.audio_seconds
            ref, hyp = _reading(text), _reading(result.text)
            dist = _edit_distance(ref, hyp)
            errors += dist
            chars += len(ref)
            if dist / len(ref) > worst[0]:
                worst = (dist / len(ref), text, result.text)
        row = {
            "format": fmt,
            "sentences": len(sentences),
            "audio_s": round(audio_s, 1),
            "kbytes_per_s": round(size / 1024 / audio_s, 1),
            "cer": round(errors / chars, 4),
            "rtf_wall": round(wall / audio_s, 3),
            "rtf_cpu": round(cpu / audio_s, 3),
            "worst": {"cer": round(worst[0], 3), "ref": worst[1], "hyp": worst[2]},
        }
        rows.append(row)
        print(json.dumps(row, ensure_ascii=False), flush=True)

    # Whisper's encoder always runs over a 30 s window, so a 3 s message pays for 30 s: the
    # same speech as one ~30 s message shows how much of the RTF is that fixed cost.
    import numpy as np

    rate = speech[0].sample_rate
    joined, count = [], 0
    for spoken in speech:
        if sum(x.size for x in joined) + spoken.samples.size > 28 * rate:
            break
        joined.append(spoken.samples)
        count += 1
    long = decode_audio(
        encode_as(np.concatenate(joined), rate, "wav"), declared="wav", sample_rate=16000
    )
    c0, w0 = time.process_time(), time.perf_counter()
    result = recognizer.transcribe(long.samples)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    ref = "".join(_reading(t) for t in sentences[:count])
    long_row = {
        "format": f"wav, {count} sentences as one message",
        "audio_s": round(result.audio_seconds, 1),
        "cer": round(_edit_distance(ref, _reading(result.text)) / len(ref), 4),
        "rtf_wall": round(wall / result.audio_seconds, 3),
        "rtf_cpu": round(cpu / result.audio_seconds, 3),
        "kbytes_per_s": 31.3,
    }
    print(json.dumps(long_row, ensure_ascii=False), flush=True)

    wav = next((r for r in rows if r["format"] == "wav"), {"cer": float("nan")})
    print()
    print(
        f"threads={args.threads} device={args.device} beam={args.beam} model={asr_dir.name} "
        f"load={os.getloadavg()[0]:.1f}"
    )
    print("| format | CER | vs wav | RTF (wall) | RTF (CPU) | kB/s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in [*rows, long_row]:
        print(
            f"| {r['format']} | {r['cer']:.3f} | {r['cer'] - wav['cer']:+.3f} | "
            f"{r['rtf_wall']:.3f} | {r['rtf_cpu']:.3f} | {r['kbytes_per_s']} |"
        )
    if args.json:
        args.json.write_text(json.dumps([*rows, long_row], ensure_ascii=False, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
