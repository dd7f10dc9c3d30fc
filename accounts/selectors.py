"""Account reads."""

from . import api_keys
from .models import ApiKey


def api_key_from_raw(raw: str) -> ApiKey | None:
    """The key a raw secret names, revoked or not (the caller decides), or None.

    The lookup goes by the visible prefix and the hash is then compared in constant time, so
    the response time says nothing about how much of a guessed key was right.
    """
    if not api_keys.key_looks_valid(raw):
        return None
    for candidate in ApiKey.objects.filter(prefix=api_keys.key_prefix(raw)):
        if api_keys.key_hash_matches(raw, candidate.key_hash):
            return candidate
    return None
