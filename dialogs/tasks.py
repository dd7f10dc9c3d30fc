"""Thin Celery tasks: take ids, call a service. Queued after commit by the services."""

import logging

from celery import shared_task

from tts.services import SpeechSynthesisFailed

from . import services

logger = logging.getLogger(__name__)

VOICE_MAX_RETRIES = 2
VOICE_RETRY_BACKOFF_SECONDS = 5


@shared_task(bind=True, max_retries=VOICE_MAX_RETRIES, acks_late=True)
def message_voice_task(self, message_id: int) -> None:
    try:
        services.message_voice(message_id=message_id)
    except SpeechSynthesisFailed as exc:
        if self.request.retries >= self.max_retries:
            # Out of retries: the text was delivered long ago; record why there is no audio.
            services.message_audio_mark_failed(message_id=message_id, reason=exc.reason)
            return
        countdown = VOICE_RETRY_BACKOFF_SECONDS * (2**self.request.retries)
        logger.warning(
            "voicing message %s failed (%s); retry in %ss", message_id, exc.reason, countdown
        )
        raise self.retry(exc=exc, countdown=countdown) from exc


@shared_task(acks_late=True)
def phrase_precompute_task(phrase_id: int) -> None:
    services.phrase_precompute(phrase_id=phrase_id)


@shared_task(acks_late=True)
def phrases_precompute_all_task() -> None:
    services.phrases_precompute_all()
