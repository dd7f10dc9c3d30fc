"""Sensitive-word matching (pure, no Django): see matcher.py."""

from tts.moderation.matcher import (
    ACTIONS,
    Hit,
    ModerationResult,
    WordEntry,
    WordMatcher,
    fold_text,
)

__all__ = ["ACTIONS", "Hit", "ModerationResult", "WordEntry", "WordMatcher", "fold_text"]
