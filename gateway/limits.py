"""Per-tenant rate (token bucket) and daily quota, shared by every gateway process of a region.

One Lua script in the region's Redis does read-refill-take atomically, on Redis's own clock
(`TIME`), so processes with skewed clocks still share one bucket (SPEC §4: limits shared by all
gateway processes of a region). The daily quota counts per UTC day of that clock.

The region's Redis is reached with redis-py's asyncio client (hiredis parser): one client per
process over a blocking connection pool, no retries (a failed command is reported at once and
the caller lets the request through), and the script registered once (EVALSHA, loaded again on
NOSCRIPT by redis-py).
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from gateway.tenants import Tenant

# What a Redis call can raise when Redis is down, slow or answers an error: redis-py's own
# errors, and OSError (which includes the TimeoutError of asyncio.timeout).
REDIS_ERRORS: Final = (RedisError, OSError)

# Connections per gateway process. A submit holds one for a single round trip (~0.1-1 ms), so a
# few are busy even at saturation; beyond the pool a command waits (at most the timeout) for a
# free connection instead of opening more or failing open.
POOL_SIZE: Final = 32


def connect_redis(url: str, timeout_s: float = 1.0, pool_size: int = POOL_SIZE) -> Redis:
    """The process's Redis client: connect, write, read and pool wait each bounded by
    `timeout_s`, no retries."""
    pool = BlockingConnectionPool.from_url(
        url, max_connections=pool_size, timeout=timeout_s, socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s, retry=Retry(NoBackoff(), 0))
    return Redis.from_pool(pool)  # the client owns the pool: aclose() closes its connections

# KEYS[1] bucket hash, KEYS[2] quota counter prefix. ARGV: rate/s, burst, daily quota (0 = none).
# Returns {allowed (0|1), retry_after_ms, why (0 ok, 1 rate, 2 quota), quota used}.
_SCRIPT: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(tonumber(t[1]) / 86400)
local qkey = KEYS[2] .. ':' .. day
local used = tonumber(redis.call('GET', qkey) or '0')
if quota > 0 and used >= quota then
  return {0, (day + 1) * 86400000 - now, 2, used}
end
local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(b[1])
local ts = tonumber(b[2])
if tokens == nil or ts == nil then
  tokens = burst
  ts = now
end
if now > ts then
  tokens = math.min(burst, tokens + (now - ts) * rate / 1000)
  ts = now
end
if tokens < 1 then
  return {0, math.ceil((1 - tokens) * 1000 / rate), 1, used}
end
tokens = tokens - 1
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', ts)
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
used = redis.call('INCR', qkey)
if used == 1 then redis.call('EXPIRE', qkey, 2 * 86400) end
return {1, 0, 0, used}
"""


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int  # whole seconds, ≥ 1 when refused (RFC 9110 Retry-After)
    reason: str | None  # None | "rate_limited" | "quota_exceeded"


class Limiter:
    def __init__(self, redis: Redis, region: str, prefix: str = "flk:limits",
                 timeout_s: float = 1.0) -> None:  # fmt: skip
        self._redis = redis
        self._prefix = f"{prefix}:{region}"
        self._timeout_s = timeout_s
        self._script = redis.register_script(_SCRIPT)

    async def take(self, tenant: Tenant) -> Verdict:
        """The decision for one submit; raises one of REDIS_ERRORS when Redis does not give it
        within the timeout (pool wait, connect, write and read together)."""
        keys = [f"{self._prefix}:bucket:{tenant.id}", f"{self._prefix}:quota:{tenant.id}"]
        args: list[str | int] = [repr(tenant.rate_per_s), tenant.burst, tenant.daily_quota]
        async with asyncio.timeout(self._timeout_s):
            allowed, retry_ms, why, _used = await self._script(keys=keys, args=args)
        if int(allowed) == 1:
            return Verdict(True, 0, None)
        retry = max(1, math.ceil(int(retry_ms) / 1000))
        return Verdict(False, retry, "quota_exceeded" if int(why) == 2 else "rate_limited")

    async def reset(self, tenant_id: str) -> None:
        """Forget a tenant's bucket and today's count (tests, operators)."""
        quota = [key async for key in self._redis.scan_iter(f"{self._prefix}:quota:{tenant_id}:*")]
        await self._redis.delete(f"{self._prefix}:bucket:{tenant_id}", *quota)
