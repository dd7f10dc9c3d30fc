"""Publishing Celery tasks from `on_commit` hooks without turning a broker outage into a 500."""

import logging

logger = logging.getLogger(__name__)


def task_enqueue(task, *args) -> bool:
    """Publish a Celery task; a broker outage is logged, never raised (returns False).

    Called from `on_commit` hooks: the row is already committed, so an exception here would
    only turn a stored message into a 500. Whatever was not queued must be found again by a
    sweep (for voicing: `dialogs.services.voicing.messages_pending_requeue`).
    """
    try:
        task.delay(*args)
    except Exception as exc:
        logger.error("queueing %s%s failed (%s): left for the sweep", task.name, args, exc)
        return False
    return True
