"""Audit retention: synthesis records and change history older than a cut-off."""

from django.db import transaction

from tts.models import EmotionPreset, PronunciationEntry, SynthesisRecord, Voice

from ..models import CannedPhrase, EmotionRule, Intent


@transaction.atomic
def audit_prune(*, before) -> dict[str, int]:
    """Delete audit rows older than `before`: synthesis records and every change history."""
    deleted = {
        "synthesis records": SynthesisRecord.objects.filter(created_at__lt=before).delete()[0]
    }
    for model in (CannedPhrase, Intent, EmotionRule, EmotionPreset, PronunciationEntry, Voice):
        history = model.history.model
        deleted[str(history._meta.verbose_name_plural)] = history.objects.filter(
            history_date__lt=before
        ).delete()[0]
    return deleted
