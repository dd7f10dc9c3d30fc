"""Voicing replies: queue the synthesis after commit, attach the clip, mark failures, and the
recovery sweep for voicing work that a broker outage or a crashed worker lost.

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

from common.tasks import task_enqueue
from tts import services as tts_services
from tts.models import SynthesisSource

from ..events import conversation_event_publish
from ..models import AudioStatus, Message
from ..payloads import message_payload

AUDIO_ERROR_MAX = 300
SWEEP_BATCH = 500


def message_voice_queue(*, message: Message) -> None:
    from ..tasks import message_voice_task

    message_id = message.pk
    transaction.on_commit(lambda: task_enqueue(message_voice_task, message_id))


def _audio_event(message: Message) -> None:
    conversation_event_publish(
        conversation_id=message.conversation_id,
        event={"type": "message.audio_ready", "message": message_payload(message)},
    )


def message_voice(*, message_id: int) -> Message:
    """Attach a clip to the message (cache hit or fresh synthesis). Idempotent.

    Raises SpeechSynthesisFailed (engine trouble) so the task can retry; a rejected text is
    final and marks the audio failed at once.
    """
    message = Message.objects.select_related("emotion", "author").get(pk=message_id)
    if message.audio_status == AudioStatus.READY and message.audio_clip_id:
        return message  # acks_late redelivery: already done
    try:
        result = tts_services.speech_clip_get_or_create(
            # A masked reply is spoken as shown: masked words are never voiced.
            text=message.masked_text or message.text,
            preset=message.emotion,
            source=SynthesisSource.REPLY,
            user=message.author,
        )
    except tts_services.SpeechTextRejected as exc:
        return message_audio_mark_failed(message_id=message_id, reason=f"{exc.code}: {exc.message}")
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=message_id)
        message.audio_clip = result.clip
        message.audio_status = AudioStatus.READY
        message.audio_error = ""
        message.audio_updated_at = timezone.now()
        message.save(
            update_fields=["audio_clip", "audio_status", "audio_error", "audio_updated_at"]
        )
        _audio_event(message)
    return message


@transaction.atomic
def message_audio_mark_failed(*, message_id: int, reason: str) -> Message:
    message = Message.objects.select_for_update().get(pk=message_id)
    if message.audio_status == AudioStatus.READY:
        return message  # another delivery succeeded meanwhile: keep the audio
    message.audio_status = AudioStatus.FAILED
    message.audio_error = (reason or _("synthesis failed"))[:AUDIO_ERROR_MAX]
    message.audio_updated_at = timezone.now()
    message.save(update_fields=["audio_status", "audio_error", "audio_updated_at"])
    _audio_event(message)  # the client stops waiting and shows text only
    return message


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
    from ..tasks import message_voice_task

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
        message_audio_mark_failed(
            message_id=pk,
            reason=_("voicing did not finish within %(seconds)d s")
            % {"seconds": give_up_after_seconds},
        )
    Message.objects.filter(pk__in=requeued).update(audio_updated_at=now)
    for pk in requeued:
        transaction.on_commit(lambda pk=pk: task_enqueue(message_voice_task, pk))
    return RequeueResult(requeued=requeued, failed=failed)
