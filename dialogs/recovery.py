"""Recovery of voicing work that a broker outage or a crashed worker lost.

A reply is stored first and voiced after commit by a Celery task. The task can be lost: Redis
restarted without persistence, the broker was down when the task was published, a worker died
past its redelivery. The message then sits in `pending` forever. The sweep finds such messages
and queues them again; the voicing task is idempotent (a `ready` message is left alone, and the
clip cache's unique key means a duplicate synthesis stores no second clip), so queueing one that
is in fact still queued costs a no-op task, not a second clip.
"""

from dataclasses import dataclass
from datetime import timedelta

from django.db import transaction
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext as _

from . import services
from .models import AudioStatus, Message

SWEEP_BATCH = 500


@dataclass(frozen=True)
class RequeueResult:
    requeued: list[int]
    failed: list[int]  # pending for longer than give_up_after_seconds: marked failed instead


@transaction.atomic
def messages_pending_requeue(
    *,
    older_than_seconds: int,
    give_up_after_seconds: int | None = None,
    limit: int = SWEEP_BATCH,
) -> RequeueResult:
    """Queue voicing again for messages `pending` with no progress for `older_than_seconds`.

    "Progress" is the last audio update, or the creation time: each requeue stamps
    `audio_updated_at`, so one message is queued at most once per `older_than_seconds` however
    often the sweep runs. Messages older than `give_up_after_seconds` are marked failed (text
    only) so a message that kills every worker that touches it cannot loop forever. Rows are
    locked with SKIP LOCKED: sweeps on several workers at once do not queue the same message twice.
    """
    from .tasks import message_voice_task

    now = timezone.now()
    rows = list(
        Message.objects.filter(audio_status=AudioStatus.PENDING)
        .annotate(last_progress=Coalesce("audio_updated_at", "created_at"))
        .filter(last_progress__lt=now - timedelta(seconds=older_than_seconds))
        .order_by("pk")
        .select_for_update(skip_locked=True, of=("self",))
        .values_list("pk", "created_at")[:limit]
    )
    give_up_before = (
        now - timedelta(seconds=give_up_after_seconds) if give_up_after_seconds else None
    )
    failed = [pk for pk, created in rows if give_up_before and created < give_up_before]
    requeued = [pk for pk, _created in rows if pk not in set(failed)]
    for pk in failed:
        services.message_audio_mark_failed(
            message_id=pk,
            reason=_("voicing did not finish within %(seconds)d s")
            % {"seconds": give_up_after_seconds},
        )
    Message.objects.filter(pk__in=requeued).update(audio_updated_at=now)
    for pk in requeued:
        transaction.on_commit(lambda pk=pk: services.task_enqueue(message_voice_task, pk))
    return RequeueResult(requeued=requeued, failed=failed)
