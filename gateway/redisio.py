"""The process's connection to the region's Redis: redis-py's asyncio client (hiredis parser).

One `redis.asyncio.Redis` per process over a blocking connection pool; no retries (a failed
command is reported at once, and the callers treat it like Redis being down); connect, write,
read and pool wait each bounded by the timeout.

The submit path sends its commands (the limiter script, the request markers) through
`TurnPipeline`: the commands issued by all requests during one event-loop turn go to Redis as
ONE redis-py pipeline (`transaction=False`: no MULTI, each command answered on its own), so
under load they share one connection, one write and one read pass instead of paying
redis-py's per-command cost each (about 120 µs of CPU per lone command here, about 30 µs per
command in a pipeline of eight). A lone command is sent as an ordinary command.

A command nobody waits for before answering (`urgent=False`: the marker of an answer already
given) may wait up to `LAZY_S` for company, so that under load the markers of several turns go
out together; an urgent command sends whatever is queued at the end of its turn.
"""

from __future__ import annotations

import asyncio
from typing import Any, Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

# What a Redis call can raise when Redis is down, slow or answers an error: redis-py's own
# errors, and OSError (which includes the TimeoutError of asyncio.timeout).
REDIS_ERRORS: Final = (RedisError, OSError)

# Connections per gateway process. A batch holds one for a single round trip (~0.1-1 ms), so a
# few are busy even at saturation; beyond the pool a batch waits (at most the timeout) for a
# free connection instead of opening more or failing open.
POOL_SIZE: Final = 16
LAZY_S: Final = 0.002
# One Redis call (limiter decision, request marker), pool wait included.
REDIS_TIMEOUT_S: Final = 1.0


def connect_redis(url: str, timeout_s: float = 1.0, pool_size: int = POOL_SIZE) -> Redis:
    """The process's Redis client: connect, write, read and pool wait each bounded by
    `timeout_s`, no retries."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=timeout_s, socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections


class TurnPipeline:
    """Commands issued in one event-loop turn, sent as one redis-py pipeline."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._queue: list[tuple[tuple[Any, ...], asyncio.Future[Any]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._flush_at: asyncio.Handle | None = None
        self._soon = False

    def execute(self, *args: Any, urgent: bool = True) -> asyncio.Future[Any]:
        """Queue one command (`"SET", key, value, "EX", ttl`); the future is its reply, or the
        redis-py error (an error reply, or the batch's connection or timeout error)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if urgent and not self._soon:
            if self._flush_at is not None:
                self._flush_at.cancel()
            self._flush_at = loop.call_soon(self._flush)
            self._soon = True
        elif self._flush_at is None:
            self._flush_at = loop.call_later(LAZY_S, self._flush)
        self._queue.append((args, future))
        return future

    def _flush(self) -> None:
        self._flush_at, self._soon = None, False
        batch, self._queue = self._queue, []
        task = asyncio.get_running_loop().create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[tuple[tuple[Any, ...], asyncio.Future[Any]]]) -> None:
        replies: list[Any]
        try:
            if len(batch) == 1:
                try:
                    replies = [await self.redis.execute_command(*batch[0][0])]  # type: ignore[no-untyped-call]
                except RedisError as exc:  # an error reply or a failed connection
                    replies = [exc]
            else:
                pipe = self.redis.pipeline(transaction=False)
                for args, _future in batch:
                    pipe.execute_command(*args)
                replies = await pipe.execute(raise_on_error=False)
        except BaseException as exc:  # the connection failed, or the process is stopping
            error = exc if isinstance(exc, REDIS_ERRORS) else RedisError(f"not sent: {exc!r}")
            for _args, future in batch:
                if not future.done():
                    future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
            return
        for (_args, future), reply in zip(batch, replies, strict=True):
            if future.done():  # the caller gave up (timeout)
                continue
            if isinstance(reply, Exception):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    async def close(self) -> None:
        if self._flush_at is not None:
            self._flush_at.cancel()
            self._flush()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
