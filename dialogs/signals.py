"""dialogs' subscriptions: canned phrase audio follows the data it is made from.

A phrase is (re-)rendered after commit whenever its text, its emotions, a preset it is spoken
in, or a lexicon word it contains changes - whoever made the change (admin form, bulk action,
script, fixture). The tts app announces its changes with signals (`tts.signals`); phrase rows
are watched directly. Rendering is a Celery task per phrase; it is idempotent (a clip already
in the cache is not rendered again).
"""

from django.db.models.signals import m2m_changed, post_delete, post_save, pre_save
from django.dispatch import receiver

from tts.models import EmotionPreset
from tts.signals import lexicon_words_changed, preset_controls_changed

from .models import CannedPhrase, EmotionRule, Intent
from .rules_version import rules_changed
from .services.phrases import (
    lexicon_words_changed_rerender,
    phrase_precompute_queue,
    preset_changed,
)


@receiver(pre_save, sender=CannedPhrase)
def _remember_what_it_said(sender, instance: CannedPhrase, **kwargs) -> None:
    instance._old_speech = (
        sender.objects.filter(pk=instance.pk).values_list("text", "is_active").first()
        if instance.pk
        else None
    )


@receiver(post_save, sender=CannedPhrase)
def _phrase_saved(sender, instance: CannedPhrase, created: bool, **kwargs) -> None:
    # A new phrase has no emotions yet (they come with m2m_changed below); a save that leaves
    # the text and the active flag alone (a title, a trigger keyword) changes no audio.
    old = getattr(instance, "_old_speech", None)
    if created or kwargs.get("raw") or old is None:
        return
    if tuple(old) != (instance.text, instance.is_active) and instance.is_active:
        phrase_precompute_queue(phrase_ids=[instance.pk])


@receiver(m2m_changed, sender=CannedPhrase.emotions.through)
def _phrase_emotions_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs):
    if action != "post_add" or not pk_set:
        return  # removing an emotion leaves nothing new to render
    phrase_ids = sorted(pk_set) if reverse else [instance.pk]
    phrase_precompute_queue(phrase_ids=phrase_ids)


@receiver(preset_controls_changed)
def _preset_controls_changed(sender, preset, **kwargs) -> None:
    preset_changed(preset=preset)


@receiver(lexicon_words_changed)
def _lexicon_words_changed(sender, words: list[str], **kwargs) -> None:
    lexicon_words_changed_rerender(words=words)


@receiver([post_save, post_delete], sender=Intent)
@receiver([post_save, post_delete], sender=CannedPhrase)
@receiver([post_save, post_delete], sender=EmotionRule)
@receiver([post_save, post_delete], sender=EmotionPreset)  # the rules hold their presets
def _rules_changed(sender, **kwargs) -> None:
    rules_changed()
