"""Property tests: the frontend never fails on hostile text and always yields
well-formed utterances."""

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tts.engine.frontend import BAKER_SYMBOLS, TextValidationError, text_to_utterances

HANZI = st.characters(min_codepoint=0x4E00, max_codepoint=0x9FFF)
HOSTILE = st.one_of(
    st.characters(),  # any code point, including controls and surrogates' neighbours
    HANZI,
    st.sampled_from("😀👍🏽🇨🇳\u200d\u0301\u0308\u202e\u200f\u0000\x1b\ufeff"),  # emoji, marks, bidi
    st.characters(min_codepoint=0x0590, max_codepoint=0x06FF),  # Hebrew, Arabic
    st.sampled_from("0123456789.,:%-~¥$元折年月日号点，。！？、：；…\n 　"),
    st.sampled_from(string.ascii_letters),
)

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str, limit: int = 40, max_chars: int = 2000) -> None:
    try:
        utts = text_to_utterances(text, max_chars=max_chars, max_utterance_chars=limit)
    except TextValidationError as exc:
        assert exc.code in {"empty", "too_long", "no_speakable_text"}
        return
    assert utts
    for u in utts:
        assert all(0 <= i < len(BAKER_SYMBOLS) for i in u.ids)
        assert u.ids == tuple(BAKER_SYMBOLS.index(s) for s in u.symbols)
        assert u.symbols[0] == "sil" and u.symbols[-2:] == ("sil", "eos")
        assert "pad" not in u.symbols
        assert len(u.text.replace("，", "")) <= limit
        assert u.pinyin


@FAST
@given(st.text(HOSTILE, max_size=120), st.integers(min_value=1, max_value=50))
def test_hostile_text_never_crashes(text, limit):
    check(text, limit)


@FAST
@given(st.text(st.characters(), max_size=80))
def test_arbitrary_unicode(text):
    check(text)


@FAST
@given(st.text(st.sampled_from(string.digits), min_size=1, max_size=40))
def test_only_digits(text):
    check(text)
    # every digit string is speakable
    assert text_to_utterances(text)


@FAST
@given(st.text(st.sampled_from(string.ascii_letters + " "), min_size=1, max_size=60))
def test_only_latin(text):
    check(text, limit=8)


@FAST
@given(st.text(HANZI, min_size=1, max_size=300), st.integers(min_value=1, max_value=60))
def test_every_hanzi_is_kept_when_chunking(text, limit):
    try:
        utts = text_to_utterances(text, max_utterance_chars=limit)
    except TextValidationError as exc:
        assert exc.code == "no_speakable_text"
        return
    spoken = "".join(u.text.replace("，", "") for u in utts)
    # characters pypinyin has no reading for are the only ones allowed to drop
    assert len(spoken) <= len(text)
    assert all(len(u.text) <= limit for u in utts)
    assert spoken == "".join(c for c in text if c in spoken)


def test_ten_thousand_hanzi_without_punctuation():
    text = ("您好欢迎光临我们的店铺请问有什么可以帮您" * 500)[:10_000]
    utts = text_to_utterances(text, max_chars=20_000, max_utterance_chars=40)
    assert "".join(u.text for u in utts) == text
    assert all(len(u.text) <= 40 for u in utts)
    assert sum(len(u.pinyin) for u in utts) == 10_000
