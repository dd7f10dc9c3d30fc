"""The web -> worker hand-off for speech that is not cached yet.

Web processes never load the engine (torch is ~600 MiB per process): a cache miss on
/api/tts/, /v1/audio/speech or the /ws/tts/ stream is rendered by a `tts` worker, which already
holds the model. The web process publishes a job on the queue and waits on a Redis list of its
own (the job's channel); the worker pushes the outcome there (a stream: one item per audio
chunk, then an end item). Why not Celery's result backend: results are off (ignore_result),
and a stream needs many items per job, which a list gives for one BLPOP each.

Items are bytes: one kind byte, then the payload (JSON for everything but audio).
"""

from __future__ import annotations

import functools
import json
import time
import uuid

import redis
from django.conf import settings

KEY_PREFIX = "tts:handoff:"
# A channel outlives its job by this much at most (a web process that gave up leaves nothing).
CHANNEL_TTL_SECONDS = 120
# Under redis-py 8's default 5 s socket read timeout (see receive).
WAIT_SLICE_SECONDS = 3.0

AUDIO = b"a"  # stream: one chunk of encoded audio
DONE = b"d"  # outcome: JSON (a clip, or a stream's totals)
REJECTED = b"r"  # outcome: JSON {"code", "message"}: the text cannot be spoken
FAILED = b"f"  # outcome: JSON {"reason"}: the engine failed, worth retrying later


class HandoffTimeout(Exception):
    """No worker answered within the wait (none running, or all busy)."""


@functools.cache
def _redis() -> redis.Redis:
    # One pool per process (thread-safe); created on first use, so a forked worker child builds
    # its own instead of sharing the parent's sockets.
    return redis.Redis.from_url(settings.REDIS_URL)


def _key(channel: str) -> str:
    return KEY_PREFIX + channel


def job_new(**fields) -> dict:
    """A job with a fresh channel and a deadline past which a worker must not start it (the
    web process has answered 503 by then: rendering it would only burn CPU)."""
    return {
        **fields,
        "channel": uuid.uuid4().hex,
        "deadline": time.time() + settings.TTS_RENDER_WAIT_SECONDS,
    }


def job_expired(job: dict) -> bool:
    return time.time() > job["deadline"]


def send(channel: str, kind: bytes, payload: bytes | dict = b"") -> None:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    pipe = _redis().pipeline(transaction=False)
    pipe.rpush(_key(channel), kind + data)
    pipe.expire(_key(channel), CHANNEL_TTL_SECONDS)
    pipe.execute()


def receive(channel: str, *, timeout: float) -> tuple[bytes, bytes]:
    """The next item as (kind, payload); HandoffTimeout when none came within `timeout`.

    Waits in slices: redis-py 8 reads with a 5 s socket timeout, so one long BLPOP would end
    in a read error instead of an answer (the same fault as common/channel_layer.py)."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        item = _redis().blpop([_key(channel)], timeout=max(min(left, WAIT_SLICE_SECONDS), 0.01))
        if item is not None:
            data = item[1]
            return data[:1], data[1:]
    raise HandoffTimeout(channel)


def cancel(channel: str) -> None:
    """Tell the worker to stop (the listener went away) and drop what it already sent."""
    pipe = _redis().pipeline(transaction=False)
    pipe.set(_key(channel) + ":cancel", 1, ex=CHANNEL_TTL_SECONDS)
    pipe.delete(_key(channel))
    pipe.execute()


def cancelled(channel: str) -> bool:
    return bool(_redis().exists(_key(channel) + ":cancel"))
