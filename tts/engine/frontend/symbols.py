"""Baker symbol inventory and the pinyin -> (initial, final) rules of the Baker recipe.

The inventory and its order are fixed by the trained model's embedding table
(219 rows): pad, pauses, 22 initials, 38 finals x 5 tones, eos. The syllable
rules reproduce the recipe's PINYIN_DICT (zero initial "^", ii/iii after
dental/retroflex sibilants, ü written "v", contracted finals expanded to
uei/uen/iou); a test checks them against every entry of ``baker_mapper.json``.
"""

import re

PAD = "pad"
SIL = "sil"
EOS = "eos"
PAUSES = ("sil", "#0", "#1", "#2", "#3")
INITIALS = (
    "^", "b", "c", "ch", "d", "f", "g", "h", "j", "k", "l",
    "m", "n", "p", "q", "r", "s", "sh", "t", "x", "z", "zh",
)  # fmt: skip
FINALS = (
    "a", "ai", "an", "ang", "ao", "e", "ei", "en", "eng", "er",
    "i", "ia", "ian", "iang", "iao", "ie", "ii", "iii", "in", "ing",
    "iong", "iou", "o", "ong", "ou", "u", "ua", "uai", "uan", "uang",
    "uei", "uen", "ueng", "uo", "v", "van", "ve", "vn",
)  # fmt: skip
TONES = ("1", "2", "3", "4", "5")

BAKER_SYMBOLS: tuple[str, ...] = (
    PAD,
    *PAUSES,
    *INITIALS,
    *(f + t for f in FINALS for t in TONES),
    EOS,
)
SYMBOL_TO_ID: dict[str, int] = {s: i for i, s in enumerate(BAKER_SYMBOLS)}

# Symbols whose predicted duration is silence or a phrase break; a pause-scale
# control may stretch these. "#0" is excluded on purpose: it separates syllables
# inside a phrase and carries no pause in the training labels.
PAUSE_SYMBOL_IDS: tuple[int, ...] = tuple(SYMBOL_TO_ID[s] for s in ("sil", "#1", "#2", "#3"))

_FINAL_SET = frozenset(FINALS)
# Longest first so that "zh" wins over "z".
_SPELLED_INITIALS = ("zh", "ch", "sh", "b", "p", "m", "f", "d", "t", "n", "l",
                     "g", "k", "h", "j", "q", "x", "r", "z", "c", "s")  # fmt: skip

# Syllables spelled with y/w have no initial; their final is rewritten.
_Y_FINALS = {
    "yi": "i", "ya": "ia", "yan": "ian", "yang": "iang", "yao": "iao", "ye": "ie",
    "yin": "in", "ying": "ing", "yo": "iou", "yong": "iong", "you": "iou",
    "yu": "v", "yuan": "van", "yue": "ve", "yun": "vn",
}  # fmt: skip
_W_FINALS = {
    "wu": "u", "wa": "ua", "wo": "uo", "wai": "uai", "wei": "uei", "wan": "uan",
    "wen": "uen", "wang": "uang", "weng": "ueng",
}  # fmt: skip
# Interjection syllables without a vowel (嗯 n/ng, 呣 m, 哼 hng); the recipe
# reads n/ng as "en".
_SYLLABIC_NASALS = {"n": "en", "ng": "en", "m": "en", "hm": "en", "hng": "en"}

_TONED = re.compile(r"^([a-zü:]+)([0-5]?)$")


def split_syllable(syllable: str) -> tuple[str, str] | None:
    """Toneless pinyin -> (initial, final) in the Baker inventory, or None."""
    s = syllable.lower().replace("ü", "v").replace("u:", "v")
    if s in _SYLLABIC_NASALS:
        return "^", _SYLLABIC_NASALS[s]
    if s in _Y_FINALS:
        return "^", _Y_FINALS[s]
    if s in _W_FINALS:
        return "^", _W_FINALS[s]
    if s and s[0] in "yw":
        return None
    initial = next((i for i in _SPELLED_INITIALS if s.startswith(i)), "^")
    final = s[len(initial) if initial != "^" else 0 :]
    if initial == "^" and final not in {"a", "ai", "an", "ang", "ao", "e", "ei",
                                        "en", "eng", "er", "o", "ou"}:  # fmt: skip
        return None
    if initial in ("j", "q", "x") and final.startswith("u"):
        final = "v" + final[1:]
    elif initial in ("z", "c", "s") and final == "i":
        final = "ii"
    elif initial in ("zh", "ch", "sh", "r") and final == "i":
        final = "iii"
    elif final == "ui":
        final = "uei"
    elif final == "un":
        final = "uen"
    elif final == "iu":
        final = "iou"
    elif initial in ("l", "n") and final == "ue":
        final = "ve"
    if initial != "^" and final == "er":
        return None
    if final in ("v", "van", "ve", "vn") and initial not in ("j", "q", "x", "l", "n", "^"):
        return None
    if final not in _FINAL_SET:
        return None
    return initial, final


def toned_to_symbols(toned: str) -> tuple[str, str] | None:
    """ "hao3" -> ("h", "ao3"); a missing or 0 tone counts as neutral (5)."""
    m = _TONED.match(toned.lower())
    if m is None:
        return None
    parts = split_syllable(m.group(1))
    if parts is None:
        return None
    tone = m.group(2)
    if tone in ("", "0"):
        tone = "5"
    return parts[0], parts[1] + tone
