"""Latin letters, spelled the way Mandarin speakers usually say them.

The Baker model has no English phones, so every letter is read as one to three
Mandarin syllables (written here as toned pinyin, with the hanzi that a reader
would write for it in the comment). Words are spelled letter by letter, which is
also how customer-service speakers read "VIP", "APP" or "OK"; a handful of
common words that are *not* spelled out in speech get a whole-word reading.
"""

LETTER_PINYIN: dict[str, tuple[str, ...]] = {
    "A": ("ei1",),  # 诶
    "B": ("bi4",),  # 必
    "C": ("xi1",),  # 西
    "D": ("di4",),  # 地
    "E": ("yi4",),  # 意
    "F": ("ai4", "fu5"),  # 艾弗
    "G": ("ji4",),  # 吉
    "H": ("ai4", "qu1"),  # 艾曲
    "I": ("ai4",),  # 爱
    "J": ("jie4",),  # 杰
    "K": ("kai4",),  # 开
    "L": ("ai4", "lou5"),  # 艾楼
    "M": ("ai4", "mu5"),  # 艾姆
    "N": ("en1",),  # 恩
    "O": ("ou1",),  # 欧
    "P": ("pi1",),  # 批
    "Q": ("qiu1",),  # 丘: the closest Mandarin syllable to /kju:/
    "R": ("a1", "er5"),  # 阿尔
    "S": ("ai4", "si1"),  # 艾丝
    "T": ("ti4",),  # 替
    "U": ("you1",),  # 优
    "V": ("wei1",),  # 维
    "W": ("da2", "bu5", "liu5"),  # 达布溜
    "X": ("ai4", "ke4", "si1"),  # 艾克斯
    "Y": ("wai4",),  # 外
    "Z": ("zei4",),  # 贼
}

# Whole-word readings for Latin words that speakers do not spell out.
WORD_PINYIN: dict[str, tuple[str, ...]] = {
    "WIFI": ("wai4", "fei1"),  # 歪飞 ("fai" is not a Mandarin syllable)
    "OK": ("ou1", "kei4"),  # 欧剋
}


def is_latin_letter(ch: str) -> bool:
    return ("a" <= ch <= "z") or ("A" <= ch <= "Z")


def spell_word(word: str) -> list[tuple[str, ...]]:
    """Pinyin for a run of Latin letters, one tuple per *speakable unit*.

    A unit is a letter (or the whole word for WORD_PINYIN entries) so callers
    can count and chunk by units.
    """
    upper = word.upper()
    if upper in WORD_PINYIN:
        return [WORD_PINYIN[upper]]
    return [LETTER_PINYIN[c] for c in upper]
