"""One Redis connection pool per process for the Django cache, whatever the request thread.

Django keeps a cache object per async context, and under ASGI every request is a new context
(and a new thread), so the stock RedisCache built a fresh connection pool, a TCP connection
and its handshake for every request (measured: ~9% of a cached /api/tts/ request). Django lets
the cache choose its pool class (`OPTIONS["pool_class"]`) and builds it with `from_url`, so
this class hands every cache object of the process the same pool for the same URL and options.
redis-py's pool is thread-safe and resets its connections after a fork (Celery prefork).
"""

from __future__ import annotations

import threading

from redis import ConnectionPool


class SharedConnectionPool(ConnectionPool):
    _shared: dict[tuple, SharedConnectionPool] = {}
    _lock = threading.Lock()

    @classmethod
    def from_url(cls, url: str, **kwargs) -> SharedConnectionPool:
        key = (url, repr(sorted(kwargs.items())))
        with cls._lock:
            pool = cls._shared.get(key)
            if pool is None:
                pool = cls._shared[key] = super().from_url(url, **kwargs)
            return pool
