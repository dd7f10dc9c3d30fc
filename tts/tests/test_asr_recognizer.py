"""The recogniser on real speech from our engine, carried by every upload format."""

import numpy as np
import pytest

from tts.asr.decoding import decode_audio
from tts.asr.encoding import CLIENT_RATES, ROUND_TRIP_FORMATS, encode_as
from tts.asr.prompt import prompt_build
from tts.asr.recognizer import encoder_window_frames
from tts.tests.asr_support import text_syllable_error_rate

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("fmt", ROUND_TRIP_FORMATS)
def test_round_trip_through_each_format_is_understood(recognizer, spoken_request, fmt):
    samples, rate, text = spoken_request
    decoded = decode_audio(
        encode_as(samples, rate, fmt), declared=fmt, sample_rate=CLIENT_RATES[fmt]
    )
    transcript = recognizer.transcribe(decoded.samples)
    assert "退款" in transcript.text
    assert text_syllable_error_rate(text, transcript.text) <= 0.2, transcript.text


def test_silence_gives_an_empty_transcript_quickly(recognizer):
    transcript = recognizer.transcribe(np.zeros(16000 * 3, dtype=np.float32))
    assert transcript.empty and transcript.text == ""
    assert transcript.speech_seconds < 0.5


def test_output_is_simplified_chinese(recognizer, engine):
    speech = engine.synthesize("请问这个问题什么时候能够解决？")
    decoded = decode_audio(encode_as(speech.samples, speech.sample_rate, "wav"), declared="wav")
    text = recognizer.transcribe(decoded.samples).text
    assert "问题" in text and "問題" not in text and "決" not in text


def test_prompt_keeps_keywords_first_once_and_bounded():
    prompt = prompt_build(
        keywords=["退款，退货", "发票", "退款"], phrases=["您好，请问有什么可以帮您？"] * 3
    )
    assert prompt.startswith("以下是普通话的客服对话。可能提到：退款、退货、发票。")
    assert prompt.count("您好") == 1
    assert (
        len(prompt_build(keywords=["词"] * 1 + [f"词{i}" for i in range(500)], phrases=[])) <= 180
    )
    assert prompt_build(keywords=[], phrases=[]) == ""


LONG_MESSAGE = [
    "您好，我上个月在你们店里买了一台洗衣机。",
    "用了不到两个星期，滚筒就开始发出很大的噪音。",
    "我已经打过三次电话，每次都说会派师傅上门检查。",
    "可是到现在还没有人联系我，我觉得非常失望。",
    "我希望你们尽快给我换一台新的，或者直接退款。",
    "另外我想知道，这段时间的损失能不能给一些补偿。",
    "请你们今天之内给我一个明确的答复，谢谢。",
]


def test_a_long_message_is_transcribed_to_its_end_even_with_the_longest_prompt(recognizer, engine):
    # A fixed 220-token cap cut a 25 s message's transcript by a third; the room left by the
    # prompt is now computed per call, and a maximal domain prompt must not be refused either.
    pieces = [engine.synthesize(sentence) for sentence in LONG_MESSAGE]
    rate = pieces[0].sample_rate
    gap = np.zeros(rate // 3, dtype=np.float32)
    speech = np.concatenate([part for piece in pieces for part in (piece.samples, gap)])
    decoded = decode_audio(encode_as(speech, rate, "wav"), declared="wav")
    assert decoded.samples.size / 16000 > 20
    prompt = prompt_build(keywords=[f"关键词{i}号" for i in range(200)], phrases=[])

    text = recognizer.transcribe(decoded.samples, prompt=prompt).text

    spoken = "".join(LONG_MESSAGE)
    assert "答复" in text, text  # the last sentence is there
    assert text_syllable_error_rate(spoken, text) <= 0.25, text


def test_the_encoder_window_covers_the_audio_plus_a_second_at_least_ten_seconds():
    def chunk(content_frames: int) -> np.ndarray:
        features = np.zeros((80, 3000), dtype=np.float32)
        features[:, :content_frames] = -1.5  # what digital silence normalises to
        return features

    assert encoder_window_frames(chunk(300)) == 1000  # a 3 s note: 10 s, not 30 s
    assert encoder_window_frames(chunk(1234)) == 1400
    assert encoder_window_frames(chunk(2950)) == 3000
    assert encoder_window_frames(chunk(3000)) == 3000
    assert encoder_window_frames(chunk(0)) == 1000
    assert encoder_window_frames(chunk(1234)[np.newaxis]) == 1400  # batched shape


def test_a_short_message_is_encoded_over_a_short_window(recognizer, spoken_request):
    samples, rate, _ = spoken_request
    decoded = decode_audio(encode_as(samples, rate, "wav"), declared="wav")
    model = recognizer._model.model  # CTranslate2's Whisper: what the encoder really gets
    shapes, encode = [], model.encode

    class Spy:
        def __getattr__(self, name):
            return getattr(model, name)

        def encode(self, features, *args, **kwargs):
            shapes.append(tuple(features.shape))
            return encode(features, *args, **kwargs)

    recognizer._model.model = Spy()
    try:
        text = recognizer.transcribe(decoded.samples).text
    finally:
        recognizer._model.model = model
    assert "退款" in text
    assert shapes and all(shape[-1] < 3000 for shape in shapes), shapes
