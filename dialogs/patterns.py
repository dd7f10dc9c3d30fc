"""Intent patterns: RE2, not Python's backtracking `re`.

Patterns are written by supervisors and run inside the request on every customer message. With
`re`, `^(a+)+$` against 29 characters took 25 s (catastrophic backtracking). RE2 matches in time
linear in the text, whatever the pattern, and refuses at compile time what it cannot do that way
(backreferences, lookaround) and programs too big for its memory budget: such patterns are
rejected when the intent is saved, with the reason.
"""

from __future__ import annotations

from functools import lru_cache

import re2

MAX_PATTERN_CHARS = 300
MAX_PROGRAM_BYTES = 1 << 20  # per compiled pattern


class PatternError(ValueError):
    pass


def _options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # RE2 would print the pattern to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    return options


@lru_cache(maxsize=1024)
def pattern_compile(pattern: str):
    """The compiled pattern (case-insensitive); PatternError says why one cannot be used."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise PatternError(f"longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _options())
    except re2.error as exc:
        detail = exc.args[0] if exc.args else exc
        if isinstance(detail, bytes):
            detail = detail.decode("utf-8", "replace")
        raise PatternError(str(detail)) from None


def pattern_search(pattern: str, text: str) -> bool:
    return pattern_compile(pattern).search(text) is not None
