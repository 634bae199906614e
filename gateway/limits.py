"""Per-tenant rate (token bucket) and daily quota, shared by every gateway process of a region.

One Lua script in the region's Redis does read-refill-take atomically, on Redis's own clock
(`TIME`), so processes with skewed clocks still share one bucket (SPEC §4: limits shared by all
gateway processes of a region). The daily quota counts per UTC day of that clock.

The script is registered once (`Redis.register_script`) and run by its digest (EVALSHA) in the
process's per-turn pipeline (gateway/redisio.py); a Redis that does not know it (restarted)
gets it loaded again by redis-py.
"""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Final

from redis.exceptions import NoScriptError

from gateway.redisio import TurnPipeline
from gateway.tenants import Tenant

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
    def __init__(self, redis: TurnPipeline, region: str, prefix: str = "flk:limits",
                 timeout_s: float = 1.0) -> None:  # fmt: skip
        self._batch = redis
        self._redis = redis.redis
        self._prefix = f"{prefix}:{region}"
        self._timeout_s = timeout_s
        self._script = self._redis.register_script(_SCRIPT)

    async def take(self, tenant: Tenant) -> Verdict:
        """The decision for one submit; raises one of REDIS_ERRORS when Redis does not give it
        within the timeout (pool wait, connect, write and read together)."""
        keys = [f"{self._prefix}:bucket:{tenant.id}", f"{self._prefix}:quota:{tenant.id}"]
        args: list[str | int] = [repr(tenant.rate_per_s), tenant.burst, tenant.daily_quota]
        async with asyncio.timeout(self._timeout_s):
            try:
                reply = await self._batch.execute("EVALSHA", self._script.sha, 2, *keys, *args)
            except NoScriptError:
                reply = await self._script(keys=keys, args=args)  # SCRIPT LOAD, then EVALSHA
        allowed, retry_ms, why, _used = reply
        if int(allowed) == 1:
            return Verdict(True, 0, None)
        retry = max(1, math.ceil(int(retry_ms) / 1000))
        return Verdict(False, retry, "quota_exceeded" if int(why) == 2 else "rate_limited")

    async def reset(self, tenant_id: str) -> None:
        """Forget a tenant's bucket and today's count (tests, operators)."""
        quota = [key async for key in self._redis.scan_iter(f"{self._prefix}:quota:{tenant_id}:*")]
        await self._redis.delete(f"{self._prefix}:bucket:{tenant_id}", *quota)
