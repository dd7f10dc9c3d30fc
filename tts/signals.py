"""What the tts app tells the apps above it, and its own cache invalidation.

tts sits below dialogs and never imports it. When something changes what already rendered
speech sounds like, tts *sends a signal* after the transaction commits, and dialogs (which
knows which canned phrases are affected) subscribes. The signals follow the data - model
signals, not admin hooks - so scripts, fixtures and bulk admin actions trigger them too.

- `preset_controls_changed(preset)`: an emotion preset's speed/pitch/energy/pause changed, so
  every clip spoken in it is stale (its cache key changed).
- `lexicon_words_changed(words)`: pronunciation entries for these words were added, edited
  or deleted, so clips whose text contains one of them are stale.
"""

import logging

from celery.signals import worker_process_init
from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import Signal, receiver

from tts.models import (
    EmotionPreset,
    ModerationWord,
    PronunciationEntry,
    RemoteVoiceSettings,
    Voice,
)
from tts.selectors import (
    LEXICON_VERSION_KEY,
    MODERATION_VERSION_KEY,
    VOICE_VERSION_KEY,
    voice_default_forget,
)

logger = logging.getLogger(__name__)


def _bump(key: str) -> None:
    try:
        cache.incr(key)
    except ValueError:  # key missing
        cache.set(key, 1, timeout=None)


preset_controls_changed = Signal()  # kwargs: preset
lexicon_words_changed = Signal()  # kwargs: words (list[str])

PRESET_CONTROLS = ("speed", "pitch", "energy", "pause")


def _bump_lexicon_version() -> None:
    _bump(LEXICON_VERSION_KEY)


def moderation_version_bump() -> None:
    _bump(MODERATION_VERSION_KEY)


@receiver(pre_save, sender=PronunciationEntry)
def _remember_old_word(sender, instance: PronunciationEntry, **kwargs) -> None:
    # A renamed entry makes clips of the old word stale too.
    instance._old_word = (
        sender.objects.filter(pk=instance.pk).values_list("word", flat=True).first()
        if instance.pk
        else None
    )


@receiver([post_save, post_delete], sender=PronunciationEntry)
def lexicon_changed(sender, instance: PronunciationEntry, **kwargs) -> None:
    words = sorted({w for w in (instance.word, getattr(instance, "_old_word", None)) if w})
    transaction.on_commit(_bump_lexicon_version)
    transaction.on_commit(
        lambda: lexicon_words_changed.send(sender=PronunciationEntry, words=words)
    )


@receiver(pre_save, sender=EmotionPreset)
def _remember_old_controls(sender, instance: EmotionPreset, **kwargs) -> None:
    instance._old_controls = (
        sender.objects.filter(pk=instance.pk).values_list(*PRESET_CONTROLS).first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=EmotionPreset)
def _preset_saved(sender, instance: EmotionPreset, created: bool, **kwargs) -> None:
    old = getattr(instance, "_old_controls", None)
    new = tuple(getattr(instance, name) for name in PRESET_CONTROLS)
    if created or old is None or tuple(old) == new:
        return
    transaction.on_commit(
        lambda: preset_controls_changed.send(sender=EmotionPreset, preset=instance)
    )


@receiver([post_save, post_delete], sender=ModerationWord)
def moderation_word_changed(sender, **kwargs):
    # Same reason as the lexicon: admin edits, bulk actions and imports all invalidate.
    transaction.on_commit(moderation_version_bump)


@receiver([post_save, post_delete], sender=Voice)
@receiver([post_save, post_delete], sender=RemoteVoiceSettings)
def voices_changed(sender, **kwargs):
    # Every process's default voice (tts.selectors.voice_default) is read again: this one's
    # at once, the others' when the version moves after the commit.
    voice_default_forget()
    transaction.on_commit(lambda: _bump(VOICE_VERSION_KEY))


@worker_process_init.connect
def load_engine_in_worker(**kwargs):
    # After fork, in each worker process: the model (and any CUDA context) is created here,
    # once, never in the parent before forking.
    from tts.adapters import get_engine
    from tts.engine.types import EngineUnavailable

    try:
        get_engine()
    except EngineUnavailable:
        pass  # already logged; tasks will fail with the reason and messages stay text-only
    _warm_audio_encoder()


def _warm_audio_encoder() -> None:
    # The clip encoder (lameenc, scipy, pyloudnorm) loads on first use: without this the
    # first reply a worker voices pays for those imports (bench/README.md, "voiced reply").
    import numpy as np

    from tts.engine import audio

    try:
        audio.encode(np.zeros(2400, dtype=np.float32), sample_rate=24000, fmt="mp3")
    except Exception as exc:  # a missing codec shows on the first real clip, with its error
        logger.warning("warming the audio encoder failed: %s", type(exc).__name__)
