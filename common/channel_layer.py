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

And one addition for the request path: `groups_with_members_sync` looks up the members of every
group of a batch in one pipelined round trip, from the request's thread, so that events are sent
(and the event loop is asked to send them) only for groups that have members. The stock
`group_send` costs two round trips per group before it knows (ZREMRANGEBYSCORE, ZRANGE), and
most events (a customer's post, nobody watching the queue) go to groups with no one in them.
"""

import asyncio
import threading
import time

import redis
from channels_redis.core import RedisChannelLayer

_sync_pools_lock = threading.Lock()


class ShortWaitRedisChannelLayer(RedisChannelLayer):
    brpop_timeout = 3

    async def _brpop_with_clean(self, index, channel, timeout):
        member = await super()._brpop_with_clean(index, channel, timeout)
        if member is None:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError
        return member

    def groups_with_members_sync(self, groups: list[str]) -> set[str] | None:
        """Which of these groups have members now (expired members dropped first, as
        `group_send` does), asked from synchronous code: one pipelined round trip per Redis
        shard for the whole batch, with no hand-off to the event loop. None when a host is not
        a plain URL (sentinels): then the caller sends to every group, asynchronously."""
        by_index: dict[int, list[str]] = {}
        for group in dict.fromkeys(groups):
            assert self.require_valid_group_name(group), "Group name not valid"
            by_index.setdefault(self.consistent_hash(group), []).append(group)
        cutoff = int(time.time()) - self.group_expiry
        populated: set[str] = set()
        for index, names in by_index.items():
            client = self._sync_client(index)
            if client is None:
                return None
            pipe = client.pipeline(transaction=False)
            for group in names:
                key = self._group_key(group)
                pipe.zremrangebyscore(key, min=0, max=cutoff)
                pipe.zcard(key)
            counts = pipe.execute()[1::2]
            populated.update(group for group, count in zip(names, counts, strict=True) if count)
        return populated

    def _sync_client(self, index: int) -> redis.Redis | None:
        host = self.hosts[index]
        if set(host) != {"address"}:
            return None
        clients = self.__dict__.setdefault("_sync_clients", {})
        client = clients.get(index)
        if client is None:
            with _sync_pools_lock:
                client = clients.get(index)
                if client is None:
                    # Short timeouts: this runs on the request path (a stalled Redis fails
                    # the check, and the events then take the asynchronous path, which logs
                    # it). A redis.Redis is thread-safe; its pool resets after a fork.
                    client = clients[index] = redis.Redis.from_url(
                        host["address"], socket_connect_timeout=2, socket_timeout=2
                    )
        return client
