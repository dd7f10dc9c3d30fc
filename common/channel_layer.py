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

And one addition for the request path: `groups_with_members` looks up the members of every group
of a batch in one pipelined round trip, so that events are sent only to groups that have members. The stock
`group_send` costs two round trips per group before it knows (ZREMRANGEBYSCORE, ZRANGE), and
most events (a customer's post, nobody watching the queue) go to groups with no one in them.
"""

import asyncio
import time

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

    async def groups_with_members(self, groups: list[str]) -> set[str]:
        """Which of these groups have members now (expired ones dropped first, as
        `group_send` does): one pipelined round trip per Redis shard for all of them."""
        by_connection: dict[int, list[str]] = {}
        for group in dict.fromkeys(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_connection.setdefault(self.consistent_hash(group), []).append(group)
        cutoff = int(time.time()) - self.group_expiry
        populated: set[str] = set()
        for index, names in by_connection.items():
            pipe = self.connection(index).pipeline(transaction=False)
            for group in names:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=cutoff)
                pipe.zcard(key)
            counts = (await pipe.execute())[1::2]
            populated.update(group for group, count in zip(names, counts, strict=True) if count)
        return populated
