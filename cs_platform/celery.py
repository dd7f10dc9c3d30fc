"""Celery app. Broker = CELERY_BROKER_URL (Redis by default, RabbitMQ possible); without
REDIS_URL tasks run in-process (eager)."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")

app = Celery("cs_platform")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
def _worker_startup_check(**kwargs) -> None:
    # Before the worker consumes anything: a bad bucket or broker is one line and exit 78.
    from common.startup import exit_on_error, startup_check

    with exit_on_error("worker"):
        startup_check()


@beat_init.connect
def _beat_startup_check(**kwargs) -> None:
    from common.startup import exit_on_error, startup_check

    with exit_on_error("beat"):
        startup_check()
