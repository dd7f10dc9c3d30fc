"""The whole engine, measured: it speaks (ASR round trip), and its controls do what they say."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tts.engine import audio
from tts.engine.frontend import TextValidationError
from tts.engine.synthesizer import (
    ControlError,
    Controls,
    EngineConfig,
    batch_utterances_for,
    load,
)
from tts.tests.audio_measure import median_f0_hz, rms

REPO = Path(__file__).resolve().parents[3]
MODEL_DIR = Path(os.environ.get("TTS_MODEL_DIR", REPO / "var/models")) / "baker"
GREETING = "您好，请问有什么可以帮助您？"

# Customer-service sentences covering numbers, dates, money, codes and polyphones.
ROUND_TRIP_SENTENCES = [
    "您好，请问有什么可以帮助您？",
    "您的订单已经发货，预计明天下午3点送达。",
    "退款将在3到5个工作日内退还到您的银行卡。",
    "您的验证码是386512，请在五分钟内输入。",
    "这件商品现在打九五折，只要199.5元。",
    "请您重新登录后再试一次。",
    "我们的客服热线是400-820-8820。",
    "您尾号6789的银行卡已经还款成功。",
    "非常抱歉给您带来不便，我们会尽快处理。",
    "快递员会在2024年3月5日上午9:30联系您。",
    "您可以把行李寄存在前台。",
    "本次活动的优惠比例是35%。",
    "还有其他问题吗？我们随时为您服务。",
    "这个问题很重要，请您耐心等待。",
    "感谢您的支持，祝您生活愉快！",
]


@pytest.fixture(scope="module")
def engine():
    if not (MODEL_DIR / "config.json").exists():
        pytest.skip(f"no model in {MODEL_DIR}: run `python manage.py tts_install_model`")
    return load(EngineConfig(model_dir=MODEL_DIR, device="cpu"))


@pytest.mark.slow
def test_it_speaks_intelligible_mandarin_asr_round_trip(engine):
    from tts.tests.asr_support import levenshtein, toned_syllables, transcribe

    errors = total = 0
    for sentence in ROUND_TRIP_SENTENCES:
        speech = engine.synthesize(sentence)
        transcript = transcribe(speech.samples, speech.sample_rate)
        ref, hyp = toned_syllables(sentence), toned_syllables(transcript)
        errors += levenshtein(ref, hyp)
        total += len(ref)
        print(f"{sentence} -> {transcript}")
    rate = errors / total
    print(
        f"toned-pinyin syllable error rate over {len(ROUND_TRIP_SENTENCES)} sentences: {rate:.3f}"
    )
    assert rate < 0.15


def test_it_is_deterministic(engine):
    first = engine.synthesize(GREETING).samples
    second = engine.synthesize(GREETING).samples

    assert np.array_equal(first, second)


def test_stream_pieces_concatenate_to_the_whole(engine):
    text = "您好，订单已发货。预计明天送达，请注意查收。还有其他问题吗？"

    pieces = list(engine.stream(text))
    whole = engine.synthesize(text)

    assert len(pieces) >= 3
    assert np.array_equal(np.concatenate([p.samples for p in pieces]), whole.samples)


def test_on_cpu_a_batch_is_rendered_one_utterance_at_a_time(engine):
    # Padded batches are slower than one by one on CPU (bench/tts_bench.py), so the CPU
    # strategy is the `synthesize` path itself: the very same samples, not merely close ones.
    assert batch_utterances_for(torch.device("cpu")) == 1
    assert batch_utterances_for(torch.device("cuda")) > 1
    texts = ["您好。", "您的订单已经发货，预计明天送达。还有其他问题吗？", GREETING]
    controls = [Controls(), Controls(speed=1.2), Controls(pitch=5, pause=1.5)]

    batch = engine.synthesize_batch(texts, controls=controls)
    single = [engine.synthesize(t, controls=c) for t, c in zip(texts, controls, strict=True)]

    assert engine.device.type == "cpu"
    for b, s in zip(batch, single, strict=True):
        assert np.array_equal(b.samples, s.samples)


def test_a_padded_batch_equals_one_by_one(engine):
    # The CUDA strategy (padded batches), exercised on CPU: padding must not change the audio.
    texts = ["您好。", "您的订单已经发货，预计明天送达。", GREETING]
    controls = [Controls(), Controls(speed=1.2), Controls(pitch=2)]

    batch = engine.synthesize_batch(texts, controls=controls, max_batch_utterances=16)
    single = [engine.synthesize(t, controls=c) for t, c in zip(texts, controls, strict=True)]

    for b, s in zip(batch, single, strict=True):
        assert len(b.samples) == len(s.samples)
        assert np.max(np.abs(b.samples - s.samples)) < 1e-3


def test_slower_speed_lengthens_the_audio(engine):
    normal = engine.synthesize(GREETING)
    slow = engine.synthesize(GREETING, controls=Controls(speed=0.8))

    ratio = len(slow.samples) / len(normal.samples)
    print(f"speed 0.8 -> length x{ratio:.3f}")
    assert 1.15 < ratio < 1.35


@pytest.mark.parametrize("semitones", [3, -3, 6])
def test_pitch_moves_the_median_f0(engine, semitones):
    text = "您的订单已经发货，预计明天下午三点送达。"
    base = median_f0_hz(engine.synthesize(text).samples, audio.SAMPLE_RATE)
    shifted = median_f0_hz(
        engine.synthesize(text, controls=Controls(pitch=semitones)).samples, audio.SAMPLE_RATE
    )

    ratio, want = shifted / base, 2 ** (semitones / 12)
    print(f"pitch {semitones:+d} st -> median f0 x{ratio:.3f} (want x{want:.3f})")
    assert abs(ratio - want) < 0.04


def test_energy_changes_the_level(engine):
    soft = rms(engine.synthesize(GREETING, controls=Controls(energy=0.5)).samples)
    normal = rms(engine.synthesize(GREETING).samples)
    loud = rms(engine.synthesize(GREETING, controls=Controls(energy=1.5)).samples)

    assert soft < normal * 0.6
    assert loud > normal * 1.1


def test_pause_scale_lengthens_pauses_only(engine):
    text = "您好，欢迎光临，请问需要什么帮助？"
    normal = engine.synthesize(text)
    longer = engine.synthesize(text, controls=Controls(pause=2.0))

    assert len(longer.samples) > len(normal.samples) * 1.05


@pytest.mark.parametrize("fmt", ["wav", "mp3", "pcm"])
def test_each_format_decodes_to_the_same_sample_count(engine, fmt):
    speech = engine.synthesize(GREETING)

    data = audio.encode(speech.samples, sample_rate=speech.sample_rate, fmt=fmt)
    decoded, rate = audio.decode(data, fmt, num_samples=len(speech.samples))

    assert rate == speech.sample_rate
    assert len(decoded) == len(speech.samples)


def test_16khz_output(engine):
    speech = engine.synthesize(GREETING)

    resampled = audio.resample(speech.samples, speech.sample_rate, 16000)

    assert abs(len(resampled) - len(speech.samples) * 2 / 3) <= 1


@pytest.mark.parametrize(
    ("text", "code"),
    [("", "empty"), ("   ", "empty"), ("😀😀!!??", "no_speakable_text"), ("好" * 2001, "too_long")],
)
def test_bad_text_is_a_clear_error(engine, text, code):
    with pytest.raises(TextValidationError) as caught:
        engine.synthesize(text)

    assert caught.value.code == code


@pytest.mark.parametrize(
    "kwargs",
    [
        {"speed": 0.3},
        {"speed": 2.5},
        {"pitch": 7},
        {"pitch": -6.5},
        {"energy": 2},
        {"pause": 0.1},
        {"speed": float("nan")},
    ],
)
def test_out_of_range_controls_are_refused(kwargs):
    with pytest.raises(ControlError):
        Controls(**kwargs)


def test_mixed_text_with_latin_and_emoji_still_speaks(engine):
    speech = engine.synthesize("您的WiFi密码是ABC123😀，请查收。")

    assert speech.duration_ms > 1000
    assert np.isfinite(speech.samples).all()


def test_status_reports_the_engine(engine):
    status = engine.status()

    assert status["ok"] is True
    assert status["device"] == "cpu"
    assert status["engine_version"].startswith("baker-")
