"""Cross-process invalidation of the lexicon, and engine loading in Celery workers."""

from celery.signals import worker_process_init
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from tts.models import PronunciationEntry
from tts.selectors import LEXICON_VERSION_KEY


def _bump_lexicon_version() -> None:
    try:
        cache.incr(LEXICON_VERSION_KEY)
    except ValueError:  # key missing
        cache.set(LEXICON_VERSION_KEY, 1, timeout=None)


# A signal rather than a service hook on purpose: lexicon rows are edited in the admin, by
# bulk actions and by fixtures, and every one of those paths must invalidate.
@receiver([post_save, post_delete], sender=PronunciationEntry)
def lexicon_changed(sender, **kwargs):
    transaction.on_commit(_bump_lexicon_version)


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
