"""Celery and Channels: Redis when REDIS_URL is set, in-process fallbacks otherwise."""

from .base import REDIS_URL
from .env import env, env_bool

# The broker defaults to Redis; CELERY_BROKER_URL may name RabbitMQ instead
# (amqp://user:pass@host:5672/vhost), which the seed design names. Redis stays required for
# the cache, rate limits and the channel layer either way.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "memory://")
if REDIS_URL:
    CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
    CHANNEL_LAYERS = {
        "default": {
            # Idle sockets and shutdown under redis-py 8: see common/channel_layer.py.
            "BACKEND": "common.channel_layer.ShortWaitRedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL]},
        }
    }
else:
    # Embedded mode (`make run`): no broker, tasks run in-process right after commit.
    CELERY_TASK_ALWAYS_EAGER = CELERY_BROKER_URL == "memory://" or env_bool(
        "CELERY_TASK_ALWAYS_EAGER", False
    )
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

# Speech that is not cached yet is rendered by a `tts` worker, never in a web process (which
# then never loads torch, tts/handoff.py). Embedded mode (eager tasks, `make run`) renders in
# its one process. The wait is under Nginx's 60 s proxy_read_timeout.
TTS_RENDER_ON_WORKER = env_bool(
    "TTS_RENDER_ON_WORKER", bool(REDIS_URL) and not CELERY_TASK_ALWAYS_EAGER
)
TTS_RENDER_WAIT_SECONDS = env.float("TTS_RENDER_WAIT_SECONDS", default=45.0)

CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=120)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=180)
# Voicing and phrase rendering need the engine: they go to the workers that load it. Exact
# names win over globs: transcription goes to `asr` workers (they load Whisper).
CELERY_TASK_ROUTES = {
    "dialogs.tasks.message_transcribe_task": {"queue": "asr"},
    "tts.tasks.*": {"queue": "tts"},
    "dialogs.tasks.*": {"queue": "tts"},
}
CELERY_TASK_DEFAULT_QUEUE = "default"
# A new pool process imports torch before it reports "up": on a busy host that takes longer than
# Celery's 4 s default, and the main process then kills it and tries again, forever (seen after a
# pool process was killed mid-synthesis).
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env.float("CELERY_WORKER_PROC_ALIVE_TIMEOUT", default=60.0)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# With acks_late, a task whose worker died (SIGKILL, OOM, host lost) stays "unacked" in Redis
# and is handed to a worker again after the visibility timeout. It must exceed the longest a
# task may legitimately run or wait (hard time limit, retry countdowns), else a slow task is
# delivered twice (harmless here: voicing is idempotent, just wasted work). Shorter = faster
# recovery from a dead worker; bench/faults/worker_kill.py sets it to a few seconds.
CELERY_VISIBILITY_TIMEOUT = env.int("CELERY_VISIBILITY_TIMEOUT", default=600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": CELERY_VISIBILITY_TIMEOUT,
    # kombu scans for such expired tasks only every interval x throttle seconds (10 x 10 by
    # default, plus once at worker start): measured, a dead worker's task then waited up to
    # ~100 s past the timeout. Scan on every tick, a quarter of the timeout apart (1-60 s).
    "unacked_restore_throttle": 1,
    "unacked_restore_interval": max(1, min(60, CELERY_VISIBILITY_TIMEOUT // 4)),
}
# Publishing happens in request threads (after commit): while Redis is down give up within
# about half a second instead of hanging the request; the recovery sweep re-queues later.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}

# Recovery sweep (dialogs.services.voicing.messages_pending_requeue): messages still `pending` after
# VOICE_REQUEUE_AFTER_SECONDS without progress are queued again (their task was lost with a
# restarted Redis or a dead worker); after VOICE_GIVE_UP_AFTER_SECONDS they are marked failed.
# It runs when a worker starts and every VOICE_SWEEP_INTERVAL_SECONDS from `celery beat`.
VOICE_REQUEUE_AFTER_SECONDS = env.int("VOICE_REQUEUE_AFTER_SECONDS", default=300)
VOICE_GIVE_UP_AFTER_SECONDS = env.int("VOICE_GIVE_UP_AFTER_SECONDS", default=3600)
VOICE_SWEEP_INTERVAL_SECONDS = env.int("VOICE_SWEEP_INTERVAL_SECONDS", default=60)
CELERY_BEAT_SCHEDULE = {
    "voicing-recovery-sweep": {
        "task": "dialogs.tasks.messages_pending_requeue_task",
        "schedule": float(VOICE_SWEEP_INTERVAL_SECONDS),
        # A sweep that waited longer than one interval is superseded by the next one.
        "options": {"expires": float(VOICE_SWEEP_INTERVAL_SECONDS)},
    }
}
CELERY_TIMEZONE = "Asia/Shanghai"

# Open WebSockets per user (chat + TTS stream + console), across processes; over it -> 4429.
# A customer has one chat page and maybe a stream; an agent a console and a few chats.
WS_MAX_SOCKETS_PER_USER = env.int("WS_MAX_SOCKETS_PER_USER", default=10)
