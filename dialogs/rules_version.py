"""The version of the reply rules (intents, canned phrase triggers, emotion rules) that each
process's snapshot (`dialogs.selectors.snapshot`) is checked against. Moved by model signals
and by the bulk writes of `RulesQuerySet`, at once (this process reads its own write) and again
after commit (no other process can have cached the rows as they were before it)."""

import logging
import uuid

from django.core.cache import cache
from django.db import transaction

from common.cache import cache_get_read_once

logger = logging.getLogger(__name__)

RULES_VERSION_KEY = "dialogs:rules:version"


def rules_version() -> str | None:
    """A random token, replaced on every change. Not a counter: a counter restarts at 0 when the
    key is lost (Redis restart, eviction) and could meet a snapshot taken at an old 0; a lost
    token is replaced by a new one here, which every process reloads on."""
    try:
        token = cache_get_read_once(RULES_VERSION_KEY)
        if token is None:
            cache.add(RULES_VERSION_KEY, uuid.uuid4().hex, timeout=None)
            token = cache.get(RULES_VERSION_KEY)
        return token
    except Exception:  # cache down: read the tables every time
        return None


def rules_version_bump() -> None:
    try:
        cache.set(RULES_VERSION_KEY, uuid.uuid4().hex, timeout=None)
    except Exception as exc:  # cache down: every process reads the tables meanwhile anyway
        logger.warning("rules version bump failed (%s)", type(exc).__name__)


def rules_changed() -> None:
    rules_version_bump()
    transaction.on_commit(rules_version_bump)
