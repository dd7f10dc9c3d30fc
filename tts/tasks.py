"""Thin Celery tasks of the speech app (queue `tts`, see CELERY_TASK_ROUTES)."""

from celery import shared_task

from tts.services import clip_file_restore


@shared_task(acks_late=True, ignore_result=True)
def clip_file_restore_task(clip_id: int) -> None:
    clip_file_restore(clip_id=clip_id)
