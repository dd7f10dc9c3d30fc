"""Mandarin text frontend for the Baker FastSpeech2 model (no Django here).

text_to_utterances("您好，订单已发货。") -> [Utterance(text, pinyin, symbols, ids), ...]
"""

from .errors import TextValidationError
from .lexicon import lexicon_fingerprint
from .normalize import normalise_text
from .pipeline import Utterance, text_to_utterances
from .symbols import BAKER_SYMBOLS, PAUSE_SYMBOL_IDS, SYMBOL_TO_ID

__all__ = [
    "BAKER_SYMBOLS",
    "PAUSE_SYMBOL_IDS",
    "SYMBOL_TO_ID",
    "TextValidationError",
    "Utterance",
    "lexicon_fingerprint",
    "normalise_text",
    "text_to_utterances",
]
