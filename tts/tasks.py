"""Thin Celery tasks of the speech app (queue `tts`, see CELERY_TASK_ROUTES)."""

from celery import shared_task

from tts.services import clip_file_restore, speech_job_render, speech_job_stream


@shared_task(acks_late=True, ignore_result=True)
def clip_file_restore_task(clip_id: int) -> None:
    clip_file_restore(clip_id=clip_id)


# A web process waits for these (tts/handoff.py). Not acks_late: a job whose worker died is
# not worth a second delivery minutes later, the web process has answered 503 by then.
@shared_task(acks_late=False, ignore_result=True)
def speech_render_task(job: dict) -> None:
    speech_job_render(job=job)


@shared_task(acks_late=False, ignore_result=True)
def speech_stream_task(job: dict) -> None:
    speech_job_stream(job=job)
