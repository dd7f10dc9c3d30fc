"""The decoder prompt that tells Whisper which product words to expect.

Whisper treats ``initial_prompt`` as text that came before the audio, so names and terms in it
("退款", "工单号", a product name) win over homophones. Its context is short (half of 448
tokens), so the prompt keeps the most useful terms first: intent keywords, then phrase texts,
each once, cut to ``max_chars``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_SEPARATORS = re.compile(r"[\s,，、;；|/]+")
DEFAULT_MAX_CHARS = 180


def prompt_build(
    *, keywords: Iterable[str], phrases: Iterable[str], max_chars: int = DEFAULT_MAX_CHARS
) -> str:
    """``"以下是客服对话，可能提到：退款、发票、…。" + phrase texts``, or "" with no input."""
    terms: list[str] = []
    seen: set[str] = set()
    for raw in keywords:
        for term in _SEPARATORS.split(raw or ""):
            term = term.strip()
            if term and term not in seen:
                seen.add(term)
                terms.append(term)
    parts: list[str] = []
    if terms:
        parts.append("可能提到：" + "、".join(terms) + "。")
    for text in phrases:
        text = (text or "").strip()
        if text and text not in seen:
            seen.add(text)
            parts.append(text)
    if not parts:
        return ""
    prompt = "以下是普通话的客服对话。" + "".join(parts)
    return prompt[:max_chars]
