"""Redis cache that degrades to a per-process memory cache while Redis is unreachable.

Django's RedisCache raises `redis.ConnectionError` from every call when Redis is down, and
django-ratelimit calls the cache on every rate-limited request, so a Redis restart would turn
chat messages into 500s. The things we cache (rate-limit counters, short-lived lookups) are all
recomputable, so during an outage each process keeps them in its own memory instead: rate limits
still apply, per process (looser, never open), and nothing fails.

A failure opens a short circuit (`RETRY_AFTER_SECONDS`) so requests do not each pay a connect
attempt; after it Redis is tried again, so the cache recovers without restarting anything.
"""

import logging
import threading
import time
from contextlib import contextmanager
from contextvars import ContextVar

from django.core.cache.backends.base import DEFAULT_TIMEOUT
from django.core.cache.backends.locmem import LocMemCache
from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

logger = logging.getLogger(__name__)

REDIS_DOWN_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)
RETRY_AFTER_SECONDS = 2.0
# Entries written during an outage live at most this long: once Redis is back, the shared
# values win again quickly (an invalidation made during the outage never reached Redis).
FALLBACK_MAX_TIMEOUT = 300
# INCRBY only an existing key (nil otherwise): Django's `incr` contract, one round trip.
_INCR_EXISTING = """
if redis.call('exists', KEYS[1]) == 1 then
  return redis.call('incrby', KEYS[1], ARGV[1])
end
return nil
"""
_incr_existing_script = None


class SharedClientRedisCacheClient(RedisCacheClient):
    """Django's Redis cache client, handing out one `redis.Redis` per connection pool.

    The stock client builds a new `redis.Redis` for every cache call (its constructor fills a
    table of ~170 response callbacks), and Django builds a new cache object per request under
    ASGI. A `redis.Redis` is thread-safe (each command takes a connection from the pool), and
    the pools are already shared per process (`common.redis_pool`), so the clients can be too.
    """

    _shared: dict = {}
    _shared_lock = threading.Lock()

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._shared.get(pool)
        if client is None:
            with self._shared_lock:
                client = self._shared.setdefault(pool, self._client(connection_pool=pool))
        return client


class FailoverRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedClientRedisCacheClient
        self._fallback = LocMemCache(f"failover-{id(self)}", {"OPTIONS": {"MAX_ENTRIES": 10000}})
        self._down_until = 0.0
        self._lock = threading.Lock()

    @property
    def redis_available(self) -> bool:
        return time.monotonic() >= self._down_until

    def _mark_down(self, exc: Exception) -> None:
        with self._lock:
            was_up = self._down_until <= time.monotonic()
            self._down_until = time.monotonic() + RETRY_AFTER_SECONDS
        if was_up:
            # Once per outage window, not once per request.
            logger.warning(
                "Redis cache unavailable (%s): using per-process memory for %ss",
                type(exc).__name__,
                RETRY_AFTER_SECONDS,
            )

    def _call(self, name: str, *args, **kwargs):
        if self.redis_available:
            try:
                return getattr(super(), name)(*args, **kwargs)
            except REDIS_DOWN_ERRORS as exc:
                self._mark_down(exc)
        if "timeout" in kwargs:
            timeout = kwargs["timeout"]
            if timeout is DEFAULT_TIMEOUT:
                timeout = self.default_timeout
            if timeout is None or timeout > FALLBACK_MAX_TIMEOUT:
                kwargs["timeout"] = FALLBACK_MAX_TIMEOUT
        return getattr(self._fallback, name)(*args, **kwargs)

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("add", key, value, timeout=timeout, version=version)

    def get(self, key, default=None, version=None):
        return self._call("get", key, default, version=version)

    def set(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set", key, value, timeout=timeout, version=version)

    def touch(self, key, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("touch", key, timeout=timeout, version=version)

    def delete(self, key, version=None):
        return self._call("delete", key, version=version)

    def get_many(self, keys, version=None):
        return self._call("get_many", keys, version=version)

    def has_key(self, key, version=None):
        return self._call("has_key", key, version=version)

    def incr(self, key, delta=1, version=None):
        """Django's semantics (ValueError for a missing key) in one round trip: the stock
        client asks EXISTS and then INCRBY, and every rate-limited request increments."""
        if self.redis_available:
            try:
                redis_key = self.make_and_validate_key(key, version=version)
                client = self._cache.get_client(redis_key, write=True)
                value = self._incr_script(client)(keys=[redis_key], args=[delta], client=client)
            except REDIS_DOWN_ERRORS as exc:
                self._mark_down(exc)
            else:
                if value is None:
                    raise ValueError(f"Key '{redis_key}' not found.")
                return value
        return self._fallback.incr(key, delta, version=version)

    @staticmethod
    def _incr_script(client):
        # One Script object per process: it only carries the source and its SHA; the client
        # that runs it is passed at each call.
        global _incr_existing_script
        if _incr_existing_script is None:
            _incr_existing_script = client.register_script(_INCR_EXISTING)
        return _incr_existing_script

    def incr_or_start(self, key, delta, start, version=None) -> int:
        """`add(key, start, timeout=None)` then `incr(key, delta)`, in one round trip (a
        shared counter that starts at `start` the first time)."""
        if self.redis_available:
            try:
                redis_key = self.make_and_validate_key(key, version=version)
                client = self._cache.get_client(redis_key, write=True)
                pipe = client.pipeline(transaction=False)
                pipe.set(redis_key, start, nx=True)
                pipe.incrby(redis_key, delta)
                return pipe.execute()[1]
            except REDIS_DOWN_ERRORS as exc:
                self._mark_down(exc)
        self._fallback.add(key, start, timeout=FALLBACK_MAX_TIMEOUT, version=version)
        return self._fallback.incr(key, delta, version=version)

    def set_many(self, data, timeout=DEFAULT_TIMEOUT, version=None):
        return self._call("set_many", data, timeout=timeout, version=version)

    def delete_many(self, keys, version=None):
        return self._call("delete_many", keys, version=version)

    def clear(self):
        return self._call("clear")


class RateLimitRedisCache(FailoverRedisCache):
    """The cache django-ratelimit counts in (RATELIMIT_USE_CACHE), one round trip a request.

    django-ratelimit counts a request as `add(key, 1)` and, when the key was already there,
    `incr(key)`: two round trips on every rate-limited request. Here an `add` of 1 also counts,
    in the same round trip (MULTI: SET NX, INCRBY), and the count it saw answers the `incr`
    that follows in this thread without asking Redis again.
    """

    _counted = threading.local()  # (key, count) of this thread's last counting add

    def add(self, key, value, timeout=DEFAULT_TIMEOUT, version=None):
        if value == 1 and type(value) is int and self.redis_available:
            try:
                return self._add_counting(key, timeout, version)
            except REDIS_DOWN_ERRORS as exc:
                self._mark_down(exc)
        return super().add(key, value, timeout=timeout, version=version)

    def _add_counting(self, key, timeout, version) -> bool:
        redis_key = self.make_and_validate_key(key, version=version)
        client = self._cache.get_client(redis_key, write=True)
        pipe = client.pipeline(transaction=True)  # atomic: a racing add cannot slip between
        pipe.set(redis_key, 0, nx=True, ex=self.get_backend_timeout(timeout))
        pipe.incrby(redis_key, 1)
        created, count = pipe.execute()
        if created:
            return True  # counted as 1, what the caller assumes of an added key
        self._counted.pending = (redis_key, count)
        return False

    def incr(self, key, delta=1, version=None):
        pending = getattr(self._counted, "pending", None)
        if pending is not None:
            self._counted.pending = None
            if delta == 1 and pending[0] == self.make_and_validate_key(key, version=version):
                return pending[1]  # the add just before counted this request
        return super().incr(key, delta, version=version)


# --- version tokens read once per service call ------------------------------------------------
# Per-process snapshots (reply rules, lexicon, word list) check a version token in the shared
# cache before each use; a request that uses three of them paid three round trips, and the
# rules snapshot is consulted several times by one post. `cache_read_once` reads the tokens a
# block will need in one MGET; `cache_get_read_once` answers from it inside the block (and asks
# the cache as usual outside one). A token moved by another process during the block is seen
# by the next request, exactly as if it had moved a moment later.

_read_once: ContextVar[dict | None] = ContextVar("cache_read_once", default=None)


@contextmanager
def cache_read_once(*keys: str):
    from django.core.cache import cache

    try:
        found = cache.get_many(list(keys))
    except Exception:  # cache down: each reader handles it itself, as without the block
        yield
        return
    token = _read_once.set({**(_read_once.get() or {}), **dict.fromkeys(keys), **found})
    try:
        yield
    finally:
        _read_once.reset(token)


def cache_get_read_once(key: str):
    values = _read_once.get()
    if values is not None and key in values:
        return values[key]
    from django.core.cache import cache

    return cache.get(key)
