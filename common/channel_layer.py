"""The Redis channel layer, made safe for idle sockets and for shutdown under redis-py 8.

Two faults of channels_redis 4.3 on redis-py 8, both seen here:
- redis-py reads with a 5 s socket timeout by default, exactly channels_redis's BZPOPMIN wait
  (`brpop_timeout = 5`), so a WebSocket quiet for ~5 s could hit a read timeout and lose its
  consumer (make smoke-prod). The wait is shortened to 3 s: it returns empty well before the
  read timeout and is issued again, and a read timeout still means Redis stopped answering.
- A cancellation that lands while BZPOPMIN is being read can be swallowed inside redis-py's
  read-timeout context; `receive_single` then simply waits again, for ever, so an event loop
  never finishes closing (test_sockets hung in CI). After every empty wait we check whether our
  task was asked to stop, and stop.
"""

import asyncio

from channels_redis.core import RedisChannelLayer


class ShortWaitRedisChannelLayer(RedisChannelLayer):
    brpop_timeout = 3

    async def _brpop_with_clean(self, index, channel, timeout):
        member = await super()._brpop_with_clean(index, channel, timeout)
        if member is None:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
        return member
