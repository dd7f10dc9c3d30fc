"""API key material: generation, hashing, the IP allowlist and rate strings. No models here.

A key is ``csk_`` + 43 url-safe characters (256 random bits). Because the key itself is
high-entropy, a plain sha256 is the right storage hash (a slow password hash buys nothing and
would cost every request); the raw key exists only in the creator's hands.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _

from common.net import allowed_networks

KEY_MARKER = "csk_"
# Visible part kept in the database: the marker plus 8 characters (48 bits), enough to tell keys
# apart in the admin and to narrow the lookup to one row before the constant-time comparison.
PREFIX_LENGTH = len(KEY_MARKER) + 8
_RATE_RE = re.compile(r"^[1-9]\d*/\d*[smhd]$")


def key_generate() -> str:
    return KEY_MARKER + secrets.token_urlsafe(32)


def key_hash(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


def key_prefix(raw: str) -> str:
    return raw[:PREFIX_LENGTH]


def key_looks_valid(raw: str) -> bool:
    return raw.startswith(KEY_MARKER) and len(raw) > PREFIX_LENGTH


def key_hash_matches(raw: str, stored_hash: str) -> bool:
    return hmac.compare_digest(key_hash(raw), stored_hash)


def validate_allowed_ips(value: str) -> None:
    try:
        allowed_networks(value)
    except ValueError as exc:
        raise ValidationError(_("Not an IP address or CIDR network: %s") % exc) from exc


def validate_rate_limit(value: str) -> None:
    # The django-ratelimit syntax: count/[multiplier]unit, e.g. 60/m, 1000/h, 5/10s.
    if not _RATE_RE.match(value or ""):
        raise ValidationError(_('Use count/period, e.g. "60/m", "1000/h" or "5/10s".'))


def validate_scopes(value) -> None:
    from .models import ApiScope

    if not isinstance(value, list) or not all(v in ApiScope.values for v in value):
        raise ValidationError(_("Scopes must be a list of: %s") % ", ".join(ApiScope.values))
