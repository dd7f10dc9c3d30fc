"""Text -> utterances of Baker symbol ids.

Steps: validate, normalise (numbers to hanzi), split into sentences, G2P per
run of hanzi (whole sentence context), split long sentences into utterances
at clause punctuation and, failing that, at a hard character limit, then map
every utterance to ``sil ... sil eos`` like the original Baker processor.

Prosody marks: inside an utterance syllables are joined by "#0" exactly as
the original inference does, and clause punctuation becomes "#3" (a pause).
We do not add "#1" at word boundaries: the published model was only ever
driven with "#0" at inference, lexical-word boundaries are not the prosodic
words that Baker's "#1" labels mark, and we have no listening test to show
that guessed "#1" marks help.
"""

import logging
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ._logonce import log_once
from .errors import TextValidationError
from .g2p import run_to_syllables
from .letters import is_latin_letter, spell_word
from .lexicon import compile_lexicon
from .normalize import normalise_text
from .symbols import SYMBOL_TO_ID, toned_to_symbols

# Sentence ends: the utterance boundary. "\n" too: replies are often lists.
_SENTENCE_END = frozenset("。！？；…!?;\n\r\u2028\u2029")
# Clause punctuation: a "#3" pause inside an utterance, and where long
# sentences may be split.
_CLAUSE_BREAK = frozenset("，,、：:—–-~～/|（）()【】[]{}《》<>·.")


def _is_hanzi(ch: str) -> bool:
    return (
        "\u4e00" <= ch <= "\u9fff"
        or "\u3400" <= ch <= "\u4dbf"
        or "\uf900" <= ch <= "\ufaff"
        or "\U00020000" <= ch <= "\U0003134f"
        or ch == "〇"
    )


@dataclass(frozen=True)
class Utterance:
    """One chunk of speech: the model's input for a single synthesis call."""

    text: str
    pinyin: tuple[str, ...]
    symbols: tuple[str, ...]
    ids: tuple[int, ...]


@dataclass
class _Unit:
    """A speakable unit: one hanzi, one Latin letter or one whole Latin word."""

    text: str
    phones: list[str]  # Baker symbols, without "#0" joins
    pinyin: list[str]
    fused: bool = False  # erhua: no "#0" before it

    @property
    def size(self) -> int:
        return len(self.text)


_BREAK = None  # a clause break in a token list


def _letters_units(word: str, max_chars: int) -> list[_Unit]:
    units = []
    readings = spell_word(word) if len(word) <= max_chars else None
    if readings is None or len(readings) != len(word):
        # Spelled letter by letter: one unit per letter.
        pieces = [(c, spell_word(c)[0]) for c in word]
    else:
        pieces = list(zip(word, readings, strict=True))
    if readings is not None and len(readings) == 1 and len(word) > 1:
        pieces = [(word, readings[0])]  # whole-word reading (WIFI, OK)
    for text, sylls in pieces:
        phones = []
        for k, syl in enumerate(sylls):
            parts = toned_to_symbols(syl)
            if parts is None:  # our own table is tested; keep going regardless
                continue
            if k:
                phones.append("#0")
            phones.extend(parts)
        units.append(_Unit(text, phones, list(sylls)))
    return units


def _hanzi_units(run: str, lexicon, sandhi: bool) -> list[_Unit]:
    units = []
    for syl in run_to_syllables(run, lexicon, sandhi=sandhi):
        if syl.erhua and units:
            units.append(_Unit(syl.char, ["er5"], [syl.pinyin], fused=True))
            continue
        parts = toned_to_symbols(syl.pinyin)
        if parts is None:
            log_once(
                logging.INFO,
                "unmappable",
                syl.pinyin,
                "pinyin %r (for %r) has no Baker symbols, skipped",
                syl.pinyin,
                syl.char,
            )
            continue
        units.append(_Unit(syl.char, list(parts), [syl.pinyin]))
    return units


def _sentence_tokens(sentence: str, lexicon, sandhi: bool, max_chars: int) -> list:
    """Units and clause breaks (``_BREAK``) of one sentence."""
    tokens: list = []
    i, n = 0, len(sentence)
    while i < n:
        ch = sentence[i]
        if _is_hanzi(ch):
            j = i
            while j < n and _is_hanzi(sentence[j]):
                j += 1
            tokens.extend(_hanzi_units(sentence[i:j], lexicon, sandhi))
            i = j
        elif is_latin_letter(ch):
            j = i
            while j < n and is_latin_letter(sentence[j]):
                j += 1
            tokens.extend(_letters_units(sentence[i:j], max_chars))
            i = j
        else:
            if ch in _CLAUSE_BREAK:
                tokens.append(_BREAK)
            elif not ch.isspace():
                _log_skipped(ch)
            i += 1
    return tokens


def _log_skipped(ch: str) -> None:
    category = unicodedata.category(ch)
    # Ordinary punctuation and quotes are expected; only log the unexpected.
    if category.startswith("P"):
        return
    log_once(
        logging.DEBUG, "skipped", ch, "unspeakable character U+%04X (%s) skipped", ord(ch), category
    )


def _chunk(tokens: list, limit: int) -> list[list]:
    """Split a sentence's tokens into pieces of at most ``limit`` speakable chars.

    Prefer clause breaks, packing whole clauses greedily; a clause longer than
    the limit is cut at the limit. Every unit lands in exactly one piece.
    """
    total = sum(t.size for t in tokens if t is not _BREAK)
    if total <= limit:
        return [tokens]
    clauses: list[list] = [[]]
    for t in tokens:
        if t is _BREAK:
            clauses.append([])
        else:
            clauses[-1].append(t)
    pieces: list[list] = []
    current: list = []
    current_size = 0
    for clause in clauses:
        size = sum(u.size for u in clause)
        if not clause:
            continue
        if size > limit:
            if current:
                pieces.append(current)
                current, current_size = [], 0
            pieces.extend(_hard_split(clause, limit))
            continue
        if current and current_size + size > limit:
            pieces.append(current)
            current, current_size = [], 0
        if current:
            current.append(_BREAK)
        current.extend(clause)
        current_size += size
    if current:
        pieces.append(current)
    return pieces


def _hard_split(units: list[_Unit], limit: int) -> list[list]:
    pieces: list[list] = [[]]
    size = 0
    for u in units:
        # Keep an erhua 儿 with its syllable when the piece has room for it.
        if size + u.size > limit and pieces[-1] and not (u.fused and size + u.size <= limit):
            pieces.append([])
            size = 0
        pieces[-1].append(u)
        size += u.size
    return pieces


def _to_utterance(tokens: list) -> Utterance | None:
    units = [t for t in tokens if t is not _BREAK and t.phones]
    if not units:
        return None
    symbols = ["sil"]
    text = []
    pinyin: list[str] = []
    pending_break = False
    for t in tokens:
        if t is _BREAK:
            pending_break = len(symbols) > 1
            text.append("，")
            continue
        if not t.phones:
            continue
        if len(symbols) > 1:
            if pending_break:
                symbols.append("#3")
            elif not t.fused:
                symbols.append("#0")
        pending_break = False
        symbols.extend(t.phones)
        text.append(t.text)
        pinyin.extend(t.pinyin)
    symbols += ["sil", "eos"]
    return Utterance(
        text="".join(text).strip("，"),
        pinyin=tuple(pinyin),
        symbols=tuple(symbols),
        ids=tuple(SYMBOL_TO_ID[s] for s in symbols),
    )


def _sentences(text: str) -> list[str]:
    out, start = [], 0
    for i, ch in enumerate(text):
        if ch in _SENTENCE_END:
            out.append(text[start:i])
            start = i + 1
    out.append(text[start:])
    return [s for s in out if s.strip()]


def text_to_utterances(
    text: str,
    *,
    lexicon: Mapping[str, Sequence[str]] | None = None,
    max_chars: int = 2000,
    max_utterance_chars: int = 40,
    sandhi: bool = True,
) -> list[Utterance]:
    """Turn customer-service text into Baker-model utterances.

    Raises only TextValidationError ("empty", "too_long", "no_speakable_text").
    ``lexicon`` maps a hanzi word to one toned pinyin per character and wins
    over every other reading. ``sandhi`` applies tone sandhi (see g2p).
    """
    if not isinstance(text, str) or not text.strip():
        raise TextValidationError("empty", "文本为空 / The text is empty.")
    if len(text) > max_chars:
        raise TextValidationError(
            "too_long",
            f"文本过长（最多 {max_chars} 字）/ The text is too long (at most {max_chars} characters).",
        )
    limit = max(1, int(max_utterance_chars))
    table = compile_lexicon(lexicon)
    normalised = normalise_text(text)
    utterances = []
    for sentence in _sentences(normalised):
        tokens = _sentence_tokens(sentence, table, sandhi, limit)
        for piece in _chunk(tokens, limit):
            utt = _to_utterance(piece)
            if utt is not None:
                utterances.append(utt)
    if not utterances:
        raise TextValidationError(
            "no_speakable_text",
            "文本中没有可朗读的内容 / The text contains nothing that can be spoken.",
        )
    return utterances
