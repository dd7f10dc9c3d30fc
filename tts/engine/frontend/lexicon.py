"""Phrase tables that override pypinyin: our curated one and the admin lexicon.

Both are applied the same way: greedy longest match over a run of hanzi, each
match overwriting the pinyin of the characters it covers. The admin lexicon is
applied last, so it wins over everything.
"""

import hashlib
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._logonce import log_once
from .symbols import toned_to_symbols

# Customer-service words that pypinyin 0.55 reads wrongly (or, for 朝阳 and
# 当天, reads in the sense a customer-service agent does not mean), plus
# guard entries: a greedy matcher reading "获得很多" must consume 获得 before
# the particle entry 得很 can claim its 得.
CURATED_PHRASES: dict[str, tuple[str, ...]] = {
    "还款": ("huan2", "kuan3"),
    "还款日": ("huan2", "kuan3", "ri4"),
    "行李": ("xing2", "li5"),
    "朝阳": ("chao2", "yang2"),
    "发卡": ("fa1", "ka3"),
    "差价": ("cha1", "jia4"),
    "当天": ("dang1", "tian1"),
    "当日": ("dang1", "ri4"),
    # 为 meaning "is" (wei2) after an amount noun; pypinyin reads wei4
    "金额为": ("jin1", "e2", "wei2"),
    "价格为": ("jia4", "ge2", "wei2"),
    "重量为": ("zhong4", "liang4", "wei2"),
    "运费为": ("yun4", "fei4", "wei2"),
    "时间为": ("shi2", "jian1", "wei2"),
    "改为": ("gai3", "wei2"),
    "分为": ("fen1", "wei2"),
    # structural particle 地 after an adverbial (pypinyin: di4)
    "耐心地": ("nai4", "xin1", "de5"),
    "认真地": ("ren4", "zhen1", "de5"),
    "尽快地": ("jin3", "kuai4", "de5"),
    "仔细地": ("zi3", "xi4", "de5"),
    "及时地": ("ji2", "shi2", "de5"),
    "积极地": ("ji1", "ji2", "de5"),
    "热情地": ("re4", "qing2", "de5"),
    "主动地": ("zhu3", "dong4", "de5"),
    "慢慢地": ("man4", "man4", "de5"),
    # complement particle 得 (pypinyin reads a lone 得 as de2)
    "得很": ("de5", "hen3"),
    "得好": ("de5", "hao3"),
    "得快": ("de5", "kuai4"),
    "得慢": ("de5", "man4"),
    "得太": ("de5", "tai4"),
    "得更": ("de5", "geng4"),
    "得挺": ("de5", "ting3"),
    "得真": ("de5", "zhen1"),
    "得非常": ("de5", "fei1", "chang2"),
    "得不错": ("de5", "bu4", "cuo4"),
    "得比较": ("de5", "bi3", "jiao4"),
    "获得": ("huo4", "de2"),
    "取得": ("qu3", "de2"),
    "赢得": ("ying2", "de2"),
    "难得": ("nan2", "de2"),
    "心得": ("xin1", "de2"),
    "所得": ("suo3", "de2"),
    "使得": ("shi3", "de5"),
    "记得": ("ji4", "de5"),
    "觉得": ("jue2", "de5"),
    "懂得": ("dong3", "de5"),
    "值得": ("zhi2", "de5"),
    "显得": ("xian3", "de5"),
    "省得": ("sheng3", "de5"),
    "免得": ("mian3", "de5"),
}


def lexicon_fingerprint(lexicon: Mapping[str, Sequence[str]] | None) -> str:
    """Stable sha256 of a lexicon, for keying caches of frontend results."""
    items = sorted((str(k), [str(s) for s in v]) for k, v in (lexicon or {}).items())
    blob = json.dumps(items, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


_HANZI_KEY = re.compile(r"^[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f〇]+$")


@dataclass(frozen=True)
class PhraseTable:
    """A validated phrase -> pinyin table ready for longest-match lookup."""

    entries: dict[str, tuple[str, ...]]
    max_len: int

    def matches(self, run: str):
        """Yield (start, pinyin) for greedy longest, non-overlapping matches."""
        i, n = 0, len(run)
        while i < n:
            for length in range(min(self.max_len, n - i), 0, -1):
                hit = self.entries.get(run[i : i + length])
                if hit is not None:
                    yield i, hit
                    i += length
                    break
            else:
                i += 1


def build_table(raw: Mapping[str, Sequence[str]], *, source: str) -> PhraseTable:
    """Validate entries; a bad entry is logged (once) and skipped, never raised."""
    entries: dict[str, tuple[str, ...]] = {}
    for word, syllables in raw.items():
        if isinstance(syllables, str):
            syllables = syllables.split()
        try:
            sylls = tuple(str(s).strip().lower() for s in syllables)
        except TypeError:
            sylls = ()
        ok = (
            isinstance(word, str)
            and _HANZI_KEY.match(word) is not None
            and len(sylls) == len(word)
            and all(toned_to_symbols(s) is not None for s in sylls)
        )
        if not ok:
            log_once(
                logging.WARNING,
                "lexicon",
                f"{source}:{word!r}",
                "%s lexicon entry %r skipped: needs hanzi and one toned pinyin per character",
                source,
                word,
            )
            continue
        entries[word] = tuple(_with_tone(s) for s in sylls)
    return PhraseTable(entries, max((len(w) for w in entries), default=0))


def _with_tone(syllable: str) -> str:
    syllable = syllable.replace("ü", "v").replace("u:", "v")
    if syllable[-1] == "0":
        return syllable[:-1] + "5"
    return syllable if syllable[-1].isdigit() else syllable + "5"


CURATED_TABLE = build_table(CURATED_PHRASES, source="curated")
EMPTY_TABLE = PhraseTable({}, 0)

# Compiled admin lexicons keyed by fingerprint: the admin may edit the lexicon
# at any time, and a new fingerprint simply compiles a new table.
_compiled: OrderedDict[str, PhraseTable] = OrderedDict()
_compiled_lock = threading.Lock()
_MAX_COMPILED = 8


def compile_lexicon(lexicon: Mapping[str, Sequence[str]] | None) -> PhraseTable:
    if not lexicon:
        return EMPTY_TABLE
    key = lexicon_fingerprint(lexicon)
    with _compiled_lock:
        table = _compiled.get(key)
        if table is not None:
            _compiled.move_to_end(key)
            return table
    table = build_table(lexicon, source="admin")
    with _compiled_lock:
        _compiled[key] = table
        while len(_compiled) > _MAX_COMPILED:
            _compiled.popitem(last=False)
    return table
