"""Cross-process invalidation of the lexicon, and engine loading in Celery workers."""

from celery.signals import worker_process_init
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tts.models import ModerationWord, PronunciationEntry
from tts.selectors import LEXICON_VERSION_KEY, MODERATION_VERSION_KEY


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # key missing
        cache.set(key, 1, timeout=None)


def _bump_lexicon_version() -> None:
    _bump(LEXICON_VERSION_KEY)


def moderation_version_bump() -> None:
    _bump(MODERATION_VERSION_KEY)


# A signal rather than a service hook on purpose: lexicon rows are edited in the admin, by
# bulk actions and by fixtures, and every one of those paths must invalidate.
@receiver([post_save, post_delete], sender=PronunciationEntry)
def lexicon_changed(sender, **kwargs):
    transaction.on_commit(_bump_lexicon_version)


@receiver([post_save, post_delete], sender=ModerationWord)
def moderation_word_changed(sender, **kwargs):
    # Same reason as the lexicon: admin edits, bulk actions and imports all invalidate.
    transaction.on_commit(moderation_version_bump)


@worker_process_init.connect
def load_engine_in_worker(**kwargs):
    # After fork, in each worker process: the model (and any CUDA context) is created here,
    # once, never in the parent before forking.
    from tts.adapters import get_engine
    from tts.engine.synthesizer import EngineUnavailable

    try:
        get_engine()
    except EngineUnavailable:
        pass  # already logged; tasks will fail with the reason and messages stay text-only
