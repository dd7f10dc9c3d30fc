"""The sensitive-word matcher: folding, separators, masking on the original text."""

import pytest

from tts.moderation import WordEntry, WordMatcher


@pytest.fixture
def matcher():
    return WordMatcher(
        [
            WordEntry("傻瓜", "insult", "mask"),
            WordEntry("VPN", "politics", "block"),
            WordEntry("微信号", "ads", "flag"),
        ]
    )


def test_plain_text_passes_untouched(matcher):
    result = matcher.check("请问我的订单什么时候发货？")
    assert not result.flagged and not result.blocked
    assert result.masked_text == "请问我的订单什么时候发货？"


@pytest.mark.parametrize(
    ("text", "word"),
    [
        ("你这个傻瓜", "傻瓜"),
        ("你这个傻 瓜", "傻瓜"),
        ("傻-瓜", "傻瓜"),
        ("傻*瓜", "傻瓜"),
        ("傻　瓜", "傻瓜"),  # ideographic space
        ("翻墙用ｖｐｎ吗", "VPN"),  # full-width, lower case
        ("v.p.n", "VPN"),
        ("V_P_N", "VPN"),
        ("加我微·信·号", "微信号"),
    ],
)
def test_evasions_are_caught(matcher, text, word):
    assert [hit.word for hit in matcher.check(text).hits] == [word]


def test_actions_decide_block_mask_and_flag(matcher):
    blocked = matcher.check("用VPN")
    assert blocked.blocked and blocked.categories == ["politics"]
    masked = matcher.check("你是傻 瓜吗")
    assert not masked.blocked and masked.flagged
    assert masked.masked_text == "你是* *吗"  # the separator stays, the characters go
    flagged = matcher.check("加我微信号")
    assert flagged.flagged and not flagged.masked and flagged.masked_text == "加我微信号"


def test_hits_map_back_to_original_spans(matcher):
    text = "好的，ＶＰＮ不行，傻 瓜"
    spans = {hit.word: text[hit.start : hit.end] for hit in matcher.check(text).hits}
    assert spans == {"VPN": "ＶＰＮ", "傻瓜": "傻 瓜"}


def test_words_are_folded_too_and_an_empty_list_matches_nothing():
    assert WordMatcher([WordEntry("ＡＢ　Ｃ", "x", "flag")]).check("abc").flagged
    assert not WordMatcher([]).check("anything").flagged
    with pytest.raises(ValueError):
        WordMatcher([WordEntry("x", "c", "delete")])


def test_characters_beyond_the_basic_plane_and_overlaps(matcher):
    m = WordMatcher([WordEntry("𠀀好", "x", "mask"), WordEntry("好人", "y", "flag")])
    result = m.check("𠀀好人")
    assert sorted(hit.word for hit in result.hits) == ["好人", "𠀀好"]
    assert result.masked_text == "**人"
