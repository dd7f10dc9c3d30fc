"""The reply rules every customer message is checked against, read once per process.

Intents, active canned phrases with triggers and the emotion rules are small, change rarely
(staff edit them in the admin) and are read on every customer post. Each process keeps a
snapshot and reloads it when a version number in the shared cache moves; a save or delete of
any of those rows, or a bulk write through their querysets, moves it (`dialogs.rules_version`). With the cache down every call reads the tables.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from tts.models import EmotionPreset

from ..models import CannedPhrase, EmotionRule, Intent
from ..rules_version import rules_version


@dataclass(frozen=True)
class RulesSnapshot:
    intents: tuple[Intent, ...]  # active, best first
    trigger_phrases: tuple[CannedPhrase, ...]  # active, with trigger keywords
    rules: tuple[EmotionRule, ...]  # active, preset joined, best first


_lock = threading.Lock()
_current: dict = {"version": None, "snapshot": None}


def _load() -> RulesSnapshot:
    return RulesSnapshot(
        intents=tuple(Intent.objects.filter(is_active=True).order_by("-priority", "name")),
        trigger_phrases=tuple(
            CannedPhrase.objects.filter(is_active=True).exclude(trigger_keywords="")
        ),
        rules=tuple(
            EmotionRule.objects.filter(is_active=True)
            .select_related("preset")
            .order_by("-priority", "pk")
        ),
    )


def rules_snapshot() -> RulesSnapshot:
    version = rules_version()
    if version is not None and _current["version"] == version:
        return _current["snapshot"]
    snapshot = _load()
    if version is not None:
        with _lock:
            _current.update(version=version, snapshot=snapshot)
    return snapshot


def best_rule_preset(*, intent_id: int | None) -> EmotionPreset | None:
    """The preset of the best active rule for this intent, else of the best fallback rule."""
    rules = rules_snapshot().rules
    if intent_id is not None:
        for rule in rules:
            if rule.intent_id == intent_id:
                return rule.preset
    for rule in rules:
        if rule.intent_id is None:
            return rule.preset
    return None
