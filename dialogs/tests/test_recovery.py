"""Surviving faults: a broker outage at publish time, the recovery sweep, the failover cache,
a database error outside DRF. The slow, process-level drills are in bench/faults/."""

import time
from datetime import timedelta

import pytest
from celery import Celery
from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.db import OperationalError
from django.test import RequestFactory
from django.utils import timezone

from common.cache import FailoverRedisCache
from common.error_views import server_error
from common.tasks import task_enqueue
from dialogs.models import AudioStatus, Message
from dialogs.services.messages import agent_reply_create
from dialogs.services.voicing import messages_pending_requeue
from tts.models import AudioClip

pytestmark = pytest.mark.django_db

DEAD_REDIS = "redis://127.0.0.1:1/0"  # nothing listens on port 1


def _pending_reply(conversation, agent, capture, *, text: str, age_seconds: int) -> Message:
    # Queued hooks dropped (not executed): as if the task never reached the broker.
    with capture(execute=False):
        message = agent_reply_create(conversation=conversation, agent=agent, text=text)
    Message.objects.filter(pk=message.pk).update(
        created_at=timezone.now() - timedelta(seconds=age_seconds)
    )
    message.refresh_from_db()
    assert message.audio_status == AudioStatus.PENDING
    return message


def test_a_broker_outage_at_publish_time_is_logged_not_raised(caplog):
    app = Celery("dead-broker", broker=DEAD_REDIS, set_as_current=False)
    app.conf.task_publish_retry_policy = {"max_retries": 1, "interval_start": 0}

    @app.task(name="faults.noop")
    def noop(x):  # pragma: no cover - never runs: it cannot even be queued
        return x

    started = time.monotonic()
    assert task_enqueue(noop, 1) is False
    assert time.monotonic() - started < 5  # fails fast, the request is not held hostage
    assert "left for the sweep" in caplog.text


@pytest.mark.slow
def test_the_sweep_requeues_a_lost_message_and_voices_it_once(
    conversation, agent, django_capture_on_commit_callbacks
):
    lost = _pending_reply(
        conversation, agent, django_capture_on_commit_callbacks, text="请稍等。", age_seconds=600
    )
    fresh = _pending_reply(
        conversation, agent, django_capture_on_commit_callbacks, text="马上好。", age_seconds=5
    )

    with django_capture_on_commit_callbacks(execute=True):  # eager: the task runs here
        result = messages_pending_requeue(older_than_seconds=300)

    assert result.requeued == [lost.pk] and result.failed == []
    lost.refresh_from_db()
    fresh.refresh_from_db()
    assert lost.audio_status == AudioStatus.READY and lost.audio_clip is not None
    assert fresh.audio_status == AudioStatus.PENDING  # possibly still queued: left alone
    # Idempotent: another sweep finds nothing; voicing again stores no second clip.
    with django_capture_on_commit_callbacks(execute=True):
        assert messages_pending_requeue(older_than_seconds=300).requeued == []
    from dialogs.services.voicing import message_voice

    message_voice(message_id=lost.pk)
    assert AudioClip.objects.filter(text="请稍等。").count() == 1


def test_a_requeued_message_is_not_requeued_again_before_its_time(
    conversation, agent, django_capture_on_commit_callbacks
):
    message = _pending_reply(
        conversation, agent, django_capture_on_commit_callbacks, text="您好。", age_seconds=600
    )
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        assert messages_pending_requeue(older_than_seconds=300).requeued == [message.pk]
    assert len(hooks) == 1  # one publish, after commit
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        assert messages_pending_requeue(older_than_seconds=300).requeued == []
    assert hooks == []


def test_the_sweep_gives_up_on_very_old_pending_messages(
    conversation, agent, django_capture_on_commit_callbacks
):
    message = _pending_reply(
        conversation, agent, django_capture_on_commit_callbacks, text="再见。", age_seconds=7200
    )
    with django_capture_on_commit_callbacks(execute=False) as hooks:
        result = messages_pending_requeue(older_than_seconds=300, give_up_after_seconds=3600)
    assert result.failed == [message.pk] and result.requeued == []
    message.refresh_from_db()
    assert message.audio_status == AudioStatus.FAILED
    assert "3600" in message.audio_error
    assert message.text == "再见。"  # still delivered as text
    assert len(hooks) == 1  # the audio event only, no voicing task


def test_the_cache_degrades_to_memory_while_redis_is_down_and_comes_back():
    cache = FailoverRedisCache(
        DEAD_REDIS, {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}
    )
    # django-ratelimit's sequence: add the counter, then incr it.
    assert cache.add("counter", 1, 60) is True
    assert cache.incr("counter") == 2
    assert cache.get("counter") == 2
    assert not cache.redis_available  # the circuit is open: no connect attempt per call
    started = time.monotonic()
    for _ in range(100):
        cache.incr("counter")
    assert time.monotonic() - started < 0.5
    assert cache.get("counter") == 102
    cache._down_until = 0  # the retry window passed: Redis is tried again (and still down)
    assert cache.set("other", "x", timeout=DEFAULT_TIMEOUT) is None
    assert cache.get("other") == "x"


def test_cache_incr_keeps_djangos_contract_in_one_round_trip():
    from django.core.cache import cache

    cache.delete("h14-counter")
    with pytest.raises(ValueError):
        cache.incr("h14-counter")  # a missing key is not created
    assert cache.get("h14-counter") is None
    cache.add("h14-counter", 1, 60)
    assert cache.incr("h14-counter") == 2
    assert cache.incr("h14-counter", 5) == 7
    cache.delete("h14-start")
    assert cache.incr_or_start("h14-start", 3, 100) == 103  # started at 100, then +3
    assert cache.incr_or_start("h14-start", 2, 100) == 105  # already there: +2 only
    assert cache.get("h14-start") == 105
    cache.delete_many(["h14-counter", "h14-start"])


def test_a_rate_limited_request_is_counted_in_one_round_trip():
    """django-ratelimit's add-then-incr: the add counts (SET NX + INCRBY in one MULTI) and the
    incr that follows is answered from it, so Redis sees no EXISTS/INCRBY script for it."""
    from types import SimpleNamespace

    import redis
    from django.conf import settings
    from django_ratelimit.core import get_usage

    def commands() -> dict[str, int]:
        stats = redis.Redis.from_url(settings.REDIS_URL).info("commandstats")
        return {name: stats.get(f"cmdstat_{name}", {}).get("calls", 0)
                for name in ("exec", "evalsha", "eval", "exists", "incrby")}  # fmt: skip

    request = SimpleNamespace(user=None, method="POST", META={})
    client = f"h14-{time.time_ns()}"
    before = commands()

    def count() -> int:
        usage = get_usage(
            request, group="h14.test", key=lambda group, r: client, rate="100/m", increment=True
        )
        return usage["count"]

    counts = [count() for _ in range(4)]
    after = commands()

    assert counts == [1, 2, 3, 4]
    assert after["exec"] - before["exec"] == 4  # one round trip per request
    assert after["evalsha"] + after["eval"] == before["evalsha"] + before["eval"]
    assert after["exists"] == before["exists"]
    # A peek (increment=False) reads without counting, as before.
    peek = get_usage(request, group="h14.test", key=lambda group, r: client, rate="100/m")
    assert peek["count"] == 4


def test_version_tokens_are_read_once_per_block(monkeypatch):
    from django.core.cache import cache

    from common.cache import cache_get_read_once, cache_read_once

    cache.set("h14-a", "1")
    cache.delete("h14-b")
    gets = []
    monkeypatch.setattr(cache, "get", lambda key, *a, **k: gets.append(key) or "outside")
    with cache_read_once("h14-a", "h14-b"):
        cache.set("h14-a", "2")  # moved meanwhile: this block keeps what it read
        assert cache_get_read_once("h14-a") == "1"
        assert cache_get_read_once("h14-b") is None  # absent: no second round trip
        assert gets == []
    assert cache_get_read_once("h14-a") == "outside"  # outside a block: the cache, as usual
    assert gets == ["h14-a"]
    cache.delete("h14-a")


def test_incr_or_start_falls_back_to_memory_while_redis_is_down():
    cache = FailoverRedisCache(
        DEAD_REDIS, {"OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}
    )
    assert cache.incr_or_start("events", 2, 10) == 12
    assert not cache.redis_available
    assert cache.incr_or_start("events", 1, 10) == 13


def test_events_go_only_to_groups_with_listeners():
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from dialogs.events import _group_events_send_now

    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)("h14.listened", channel)
    try:
        assert layer.groups_with_members_sync(["h14.listened", "h14.empty"]) == {"h14.listened"}
        _group_events_send_now([("h14.empty", {"n": 1}), ("h14.listened", {"n": 2})])
        received = async_to_sync(layer.receive)(channel)
        assert received["event"]["n"] == 2 and received["event"]["event_id"] > 0
    finally:
        async_to_sync(layer.group_discard)("h14.listened", channel)


def test_a_database_error_outside_drf_is_a_503():
    factory = RequestFactory()
    for path, accept, kind in (
        ("/console/", "text/html", "text/html"),
        ("/api/conversations/", "application/json", "application/json"),
    ):
        request = factory.get(path, HTTP_ACCEPT=accept)
        try:
            raise OperationalError("connection refused")
        except OperationalError:
            response = server_error(request)  # Django calls it inside the except block
        assert response.status_code == 503
        assert response["Retry-After"]
        assert response["Content-Type"].startswith(kind)
    try:
        raise ValueError("a bug")
    except ValueError:
        assert server_error(factory.get("/api/x/")).status_code == 500
