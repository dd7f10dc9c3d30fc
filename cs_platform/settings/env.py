"""The single environment reader, plus strict helpers (fail loudly on typos)."""

from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False) -> bool:
    raw = env.str(name, default=str(default)).strip().lower()
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0/true/false/yes/no/on/off, got {raw!r}")


# Signing keys (SECRET_KEY, JWT_SIGNING_KEY): a short or repetitive key can be brute-forced
# offline from one signed value (a JWT, an audio URL), and then anything can be forged.
MIN_KEY_LENGTH = 50  # what `check --deploy` (security.W009) asks for
MIN_KEY_DISTINCT_CHARS = 12
MIN_KEY_ENTROPY_BITS = 128
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]", ".localhost"}


def key_weakness(key: str) -> str | None:
    """Why `key` is too weak to sign anything, or None. An estimate from the key itself
    (length, distinct characters, per-character Shannon entropy): it cannot see that a long
    random-looking key was published somewhere, but it refuses every guessable shape."""
    import math
    from collections import Counter

    if len(key) < MIN_KEY_LENGTH:
        return f"shorter than {MIN_KEY_LENGTH} characters"
    counts = Counter(key)
    if len(counts) < MIN_KEY_DISTINCT_CHARS:
        return f"fewer than {MIN_KEY_DISTINCT_CHARS} distinct characters"
    per_char = -sum(n / len(key) * math.log2(n / len(key)) for n in counts.values())
    if per_char * len(key) < MIN_KEY_ENTROPY_BITS:
        return f"less than {MIN_KEY_ENTROPY_BITS} bits of estimated entropy"
    return None
