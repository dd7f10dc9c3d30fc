"""Log hygiene: customer text and secrets stay out of application logs.

The code logs identifiers and exception *types*, never message text (see SECURITY.md). This
module is the safety net for what slips through - a third-party library logging a URL with a
secret in it, a database error quoting a row, a traceback whose exception message repeats the
text that broke the engine.
"""

from __future__ import annotations

import logging
import re
import traceback

REDACTED = "[redacted]"

# Customer messages are Chinese; our own log messages are English. A run of CJK characters
# (with CJK punctuation and full-width forms inside it) is therefore almost certainly content.
# Short runs are kept: single characters appear in e.g. "no pinyin for U+xxxx" style lines.
_CJK_RUN = re.compile(
    r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef]"
    r"[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\w\s,.!?]*"
    r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]"
)
MIN_CJK_RUN = 4

# key=value / "key": "value" pairs whose value is a secret or customer content.
_SENSITIVE_KEYS = (
    "password|passwd|secret|appsecret|api_key|apikey|token|refresh|js_code|session_key|"
    "authorization|text|input"
)
_KEY_VALUE = re.compile(
    rf"""(?ix)
    (?P<key>["']?\b(?:{_SENSITIVE_KEYS})\b["']?\s*[:=]\s*)
    (?!\[redacted)
    (?P<value>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|[^\s&,;}}\])]+)
    """
)
# JWTs anywhere (access/refresh tokens, the ?token= of WebSocket URLs): header.payload.sig.
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")
# Our API keys (csk_ + random) and Bearer credentials.
_API_KEY = re.compile(r"\bcsk_[A-Za-z0-9_-]{8,}")
_BEARER = re.compile(r"(?i)\bBearer\s+[A-Za-z0-9._~+/=-]{8,}")
# Signed audio URLs: the path segment after /media/audio/ is a bearer capability (anyone holding
# it hears the clip until it expires), whatever its encoding (":" raw or %3A, compressed or not).
_AUDIO_URL = re.compile(r"(/media/audio/)[^\s\"'?#<>]+")
# Any other django.core.signing value (base64 JSON "eyJ..." + ":" + signature): the ":" kept
# these out of the JWT pattern.
_SIGNED = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}(?::[A-Za-z0-9_-]+)+")


def _cjk(match: re.Match[str]) -> str:
    run = match.group(0)
    if len(run) < MIN_CJK_RUN:
        return run
    return f"[redacted {len(run)} chars]"


def redact(text: str) -> str:
    """Return `text` with secrets, tokens and long CJK runs replaced by placeholders."""
    text = _AUDIO_URL.sub(lambda m: m.group(1) + REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _SIGNED.sub(REDACTED, text)
    text = _API_KEY.sub(REDACTED, text)
    text = _BEARER.sub(f"Bearer {REDACTED}", text)
    text = _KEY_VALUE.sub(lambda m: m.group("key") + REDACTED, text)
    return _CJK_RUN.sub(_cjk, text)


class RedactingFormatter(logging.Formatter):
    """Formats a record as usual, then passes the whole line (message, arguments, traceback,
    stack) through `redact`.

    Redacting the *output* and leaving the record alone matters: a filter that rewrote records
    in place also hid what our code logged from every other handler, tests included - code that
    logged customer text would pass a test that reads records after the rewrite.
    """

    def format(self, record: logging.LogRecord) -> str:
        try:
            return redact(super().format(record))
        except Exception:  # a broken format string: the raw template, no arguments
            return redact(f"{record.levelname} {record.name} {record.msg}")


def traceback_summary(exc: BaseException, limit: int = 12) -> str:
    """Where an exception came from (file:line in function), without its message.

    For logging failures whose exception message may quote customer text (the engine failing
    on a sentence): the location is what an operator needs to debug, the text is not.
    """
    frames = traceback.extract_tb(exc.__traceback__)[-limit:]
    chain = " <- ".join(
        f"{frame.filename.rsplit('/', 2)[-2:][-1]}:{frame.lineno} in {frame.name}"
        for frame in reversed(frames)
    )
    return f"{type(exc).__module__}.{type(exc).__qualname__} at {chain or '?'}"
