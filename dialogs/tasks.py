"""Thin Celery tasks: take ids, call a service. Queued after commit by the services."""

import logging

from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError

from common.tasks import task_enqueue
from tts.services import SpeechSynthesisFailed

from .services.phrases import phrase_precompute, phrases_precompute_all
from .services.voice_messages import (
    TranscriptionFailed,
    message_transcribe,
    message_transcript_mark_failed,
)
from .services.voicing import message_audio_mark_failed, message_voice, messages_pending_requeue

logger = logging.getLogger(__name__)

VOICE_MAX_RETRIES = 2
VOICE_RETRY_BACKOFF_SECONDS = 5
# A database outage (restart, failover) is worth waiting out longer than an engine failure:
# 2, 4, 8, 16, 30, 30 ... s, about five minutes in all. Past that the message stays `pending`
# and the recovery sweep queues it again.
DB_MAX_RETRIES = 12
DB_RETRY_MAX_SECONDS = 30
DB_ERRORS = (OperationalError, InterfaceError)


@shared_task(bind=True, max_retries=VOICE_MAX_RETRIES, acks_late=True)
def message_voice_task(self, message_id: int) -> None:
    try:
        message_voice(message_id=message_id)
    except SpeechSynthesisFailed as exc:
        if self.request.retries >= self.max_retries:
            # Out of retries: the text was delivered long ago; record why there is no audio.
            message_audio_mark_failed(message_id=message_id, reason=exc.reason)
            return
        countdown = VOICE_RETRY_BACKOFF_SECONDS * (2**self.request.retries)
        logger.warning(
            "voicing message %s failed (%s); retry in %ss", message_id, exc.reason, countdown
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except DB_ERRORS as exc:
        countdown = min(DB_RETRY_MAX_SECONDS, 2 ** (self.request.retries + 1))
        logger.warning(
            "voicing message %s: database unavailable (%s); retry in %ss",
            message_id,
            type(exc).__name__,
            countdown,
        )
        raise self.retry(exc=exc, countdown=countdown, max_retries=DB_MAX_RETRIES) from exc


TRANSCRIBE_MAX_RETRIES = 2


# Routed to the `asr` queue (CELERY_TASK_ROUTES): workers that load Whisper, apart from the
# TTS ones. Under `make run` it runs in-process after the upload commits.
@shared_task(bind=True, max_retries=TRANSCRIBE_MAX_RETRIES, acks_late=True)
def message_transcribe_task(self, message_id: int) -> None:
    try:
        message_transcribe(message_id=message_id)
    except TranscriptionFailed as exc:
        if self.request.retries >= self.max_retries:
            message_transcript_mark_failed(message_id=message_id, reason=exc.reason)
            return
        countdown = VOICE_RETRY_BACKOFF_SECONDS * (2**self.request.retries)
        logger.warning(
            "transcribing message %s failed (%s); retry in %ss", message_id, exc.reason, countdown
        )
        raise self.retry(exc=exc, countdown=countdown) from exc
    except DB_ERRORS as exc:
        countdown = min(DB_RETRY_MAX_SECONDS, 2 ** (self.request.retries + 1))
        raise self.retry(exc=exc, countdown=countdown, max_retries=DB_MAX_RETRIES) from exc


@shared_task(acks_late=True)
def messages_pending_requeue_task() -> dict[str, int]:
    """The recovery sweep: at worker start and on the beat schedule (CELERY_BEAT_SCHEDULE)."""
    result = messages_pending_requeue(
        older_than_seconds=settings.VOICE_REQUEUE_AFTER_SECONDS,
        give_up_after_seconds=settings.VOICE_GIVE_UP_AFTER_SECONDS,
    )
    if result.requeued or result.failed:
        logger.warning(
            "recovery sweep: requeued %d pending message(s) %s, gave up on %d %s",
            len(result.requeued),
            result.requeued[:20],
            len(result.failed),
            result.failed[:20],
        )
    return {"requeued": len(result.requeued), "failed": len(result.failed)}


@worker_ready.connect
def _sweep_when_a_worker_starts(sender=None, **kwargs) -> None:
    # A worker (re)starting is the moment work lost with the previous one can be picked up.
    task_enqueue(messages_pending_requeue_task)


@shared_task(acks_late=True)
def phrase_precompute_task(phrase_id: int) -> None:
    phrase_precompute(phrase_id=phrase_id)


@shared_task(acks_late=True)
def phrases_precompute_all_task() -> None:
    phrases_precompute_all()
