"""Audit retention: synthesis records and change history older than a cut-off."""

from collections.abc import Callable

from django.db import transaction

from tts.models import EmotionPreset, PronunciationEntry, SynthesisRecord, Voice

from ..models import CannedPhrase, EmotionRule, Intent

AUDIT_PRUNE_BATCH = 20_000


def _delete_in_batches(queryset, *, label: str, progress: Callable[[str, int], None] | None) -> int:
    """Delete what `queryset` selects, AUDIT_PRUNE_BATCH rows per transaction: a million-row
    retention run neither holds one huge transaction (locks, WAL, a long rollback on Ctrl-C)
    nor loads the rows into Python."""
    deleted = 0
    while True:
        batch = list(queryset.order_by().values_list("pk", flat=True)[:AUDIT_PRUNE_BATCH])
        if not batch:
            return deleted
        with transaction.atomic():
            deleted += queryset.model._default_manager.filter(pk__in=batch).delete()[0]
        if progress:
            progress(label, deleted)


def audit_prune(*, before, progress: Callable[[str, int], None] | None = None) -> dict[str, int]:
    """Delete audit rows older than `before`: synthesis records and every change history."""
    deleted = {
        "synthesis records": _delete_in_batches(
            SynthesisRecord.objects.filter(created_at__lt=before),
            label="synthesis records",
            progress=progress,
        )
    }
    for model in (CannedPhrase, Intent, EmotionRule, EmotionPreset, PronunciationEntry, Voice):
        history = model.history.model
        label = str(history._meta.verbose_name_plural)
        deleted[label] = _delete_in_batches(
            history.objects.filter(history_date__lt=before), label=label, progress=progress
        )
    return deleted
