"""Per-tenant rate (token bucket) and daily quota, shared by every gateway process of a region.

One Lua script in the region's Redis does read-refill-take atomically, on Redis's own clock
(`TIME`), so processes with skewed clocks still share one bucket (SPEC §4: limits shared by all
gateway processes of a region). The daily quota counts per UTC day of that clock.

Leases. A round trip to Redis per submit was the gateway's largest cost after HTTP itself, so a
process takes tokens in small leases: the script grants up to `lease_size(tenant)` tokens at
once (at most 20 ms of the tenant's rate, at most 100) and the process spends them locally for
up to `LEASE_TTL_S`; what is left when a lease expires is given back to the bucket and the
quota by the next call for that tenant. The shared limit still holds: every admitted request
was paid for by a token taken from the one bucket in Redis, and a quota is never exceeded. To
keep leases from starving the other processes near a limit, a grant is also at most an eighth
of the tokens (and of the quota) left, so close to the limit every decision is again one
script call per request, exact as without leases. A tenant with a low rate (under 100/s)
always gets leases of one token. Concurrent requests of one tenant share one call in flight:
they wait in the tenant's queue, and each grant's tokens go to that many of them in order.

The script is registered once (`Redis.register_script`) and run by its digest (EVALSHA) in the
process's per-turn pipeline (gateway/redisio.py); a Redis that does not know it (restarted)
gets it loaded again by redis-py.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Final

from redis.exceptions import NoScriptError

from gateway.redisio import TurnPipeline
from gateway.tenants import Tenant

LEASE_WINDOW_S: Final = 0.02  # a lease is at most this much of the tenant's rate...
LEASE_MAX: Final = 100  # ...and at most this many tokens
LEASE_TTL_S: Final = 0.05  # spent within this, or given back

# KEYS[1] bucket hash, KEYS[2] quota counter prefix. ARGV: rate/s, burst, daily quota (0 =
# none), tokens wanted (≥ 1), tokens given back (≥ 0, from an expired lease; counted today).
# Returns {granted (0 = refused), retry_after_ms, why (0 ok, 1 rate, 2 quota), quota used}.
_SCRIPT: Final = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local quota = tonumber(ARGV[3])
local want = tonumber(ARGV[4])
local back = tonumber(ARGV[5])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local day = math.floor(tonumber(t[1]) / 86400)
local qkey = KEYS[2] .. ':' .. day
local used = tonumber(redis.call('GET', qkey) or '0')
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
if back > 0 then
  tokens = math.min(burst, tokens + back)
  if used > 0 then
    used = math.max(0, used - back)
    redis.call('SET', qkey, used, 'KEEPTTL')
  end
end
local refused = nil
local grant = 0
if quota > 0 and used >= quota then
  refused = {0, (day + 1) * 86400000 - now, 2, used}
elseif tokens < 1 then
  refused = {0, math.ceil((1 - tokens) * 1000 / rate), 1, used}
else
  grant = math.min(want, math.max(1, math.floor(tokens / 8)))
  if quota > 0 then
    grant = math.min(grant, math.max(1, math.floor((quota - used) / 8)))
  end
  tokens = tokens - grant
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', ts)
if refused then return refused end
redis.call('PEXPIRE', KEYS[1], math.ceil(burst * 1000 / rate) + 60000)
used = redis.call('INCRBY', qkey, grant)
if used == grant then redis.call('EXPIRE', qkey, 2 * 86400) end
return {grant, 0, 0, used}
"""


def lease_size(tenant: Tenant) -> int:
    """Tokens one script call asks for: 20 ms of the tenant's rate, 1 to 100."""
    return max(1, min(LEASE_MAX, int(tenant.rate_per_s * LEASE_WINDOW_S)))


class _Lease:
    """Tokens this process holds for one tenant, under the limits they were granted with."""

    __slots__ = ("expires", "left", "terms")

    def __init__(self, terms: tuple[float, int, int], left: int, expires: float) -> None:
        self.terms = terms
        self.left = left
        self.expires = expires


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after_s: int  # whole seconds, ≥ 1 when refused (RFC 9110 Retry-After)
    reason: str | None  # None | "rate_limited" | "quota_exceeded"


_ALLOWED: Final = Verdict(True, 0, None)


def _prune(queue: deque[asyncio.Future[Verdict]]) -> bool:
    """Drop waiters that went away (cancelled) from the front; is anyone still waiting?"""
    while queue and queue[0].done():
        queue.popleft()
    return bool(queue)


def _answer(waiter: asyncio.Future[Verdict], verdict: Verdict) -> None:
    if not waiter.done():
        waiter.set_result(verdict)


class Limiter:
    def __init__(self, redis: TurnPipeline, region: str, prefix: str = "flk:limits",
                 timeout_s: float = 1.0, lease_ttl_s: float = LEASE_TTL_S) -> None:  # fmt: skip
        self._batch = redis
        self._lease_ttl_s = lease_ttl_s
        self._redis = redis.redis
        self._prefix = f"{prefix}:{region}"
        self._timeout_s = timeout_s
        self._script = self._redis.register_script(_SCRIPT)
        self._leases: dict[str, _Lease] = {}
        self._asking: dict[str, deque[asyncio.Future[Verdict]]] = {}
        self._pumps: dict[str, asyncio.Task[None]] = {}  # held: a running task needs a reference

    async def take(self, tenant: Tenant) -> Verdict:
        """The decision for one submit; raises one of REDIS_ERRORS when Redis does not give it
        within the timeout (pool wait, connect, write and read together)."""
        lease = self._live_lease(tenant.id)
        if lease is not None and lease.left > 0:
            lease.left -= 1
            return _ALLOWED
        # The lease is spent: wait in the tenant's queue, served by one task asking Redis.
        queue = self._asking.get(tenant.id)
        if queue is None:
            queue = self._asking[tenant.id] = deque()
            self._pumps[tenant.id] = asyncio.create_task(self._pump(tenant, queue))
        mine: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        queue.append(mine)
        return await mine

    async def _pump(self, tenant: Tenant, queue: deque[asyncio.Future[Verdict]]) -> None:
        """Serve the tenant's queue in arrival order: each grant's tokens go to that many
        waiters, the others keep waiting for the next call; a refusal or an error answers
        every waiter. Each waiter is woken once. (Waking them all for every grant, as
        before, cost O(waiters²) wake-ups under overload: with thousands of requests queued
        it was a quarter of a busy gateway's time, and kept it overloaded.)"""
        try:
            while True:
                self._hand_out(tenant.id, queue)
                if not _prune(queue):
                    return
                verdict = await self._ask(tenant)
                if not verdict.allowed:
                    while queue:
                        _answer(queue.popleft(), verdict)
                    return
                if _prune(queue):  # the call's own token: the longest waiter's
                    _answer(queue.popleft(), verdict)
        except BaseException as exc:
            while queue:
                waiter = queue.popleft()
                if waiter.done():
                    continue
                if isinstance(exc, asyncio.CancelledError):
                    waiter.cancel()
                else:
                    waiter.set_exception(exc)
            if not isinstance(exc, Exception):
                raise  # cancelled (shutdown): the waiters have their error
        finally:
            del self._asking[tenant.id]
            del self._pumps[tenant.id]

    def _live_lease(self, tenant_id: str) -> _Lease | None:
        """The tenant's lease while it may still be spent (expired: given back by the next
        call)."""
        lease = self._leases.get(tenant_id)
        return lease if lease is not None and time.monotonic() < lease.expires else None

    def _hand_out(self, tenant_id: str, queue: deque[asyncio.Future[Verdict]]) -> None:
        lease = self._live_lease(tenant_id)
        if lease is None:
            return
        while lease.left > 0 and _prune(queue):
            lease.left -= 1
            _answer(queue.popleft(), _ALLOWED)

    async def _ask(self, tenant: Tenant) -> Verdict:
        terms = (tenant.rate_per_s, tenant.burst, tenant.daily_quota)
        lease = self._leases.get(tenant.id)
        back = lease.left if lease is not None and lease.terms == terms else 0
        keys = [f"{self._prefix}:bucket:{tenant.id}", f"{self._prefix}:quota:{tenant.id}"]
        args: list[str | int] = [repr(tenant.rate_per_s), tenant.burst, tenant.daily_quota,
                                 lease_size(tenant), back]  # fmt: skip
        async with asyncio.timeout(self._timeout_s):
            try:
                reply = await self._batch.execute("EVALSHA", self._script.sha, 2, *keys, *args)
            except NoScriptError:
                reply = await self._script(keys=keys, args=args)  # SCRIPT LOAD, then EVALSHA
        # Given back (or not given back, when the terms changed: the bucket has new limits).
        self._leases.pop(tenant.id, None)
        granted, retry_ms, why, _used = (int(v) for v in reply)
        if granted >= 1:
            if granted > 1:
                self._leases[tenant.id] = _Lease(terms, granted - 1,
                                                 time.monotonic() + self._lease_ttl_s)
            return _ALLOWED
        retry = max(1, math.ceil(retry_ms / 1000))
        return Verdict(False, retry, "quota_exceeded" if why == 2 else "rate_limited")

    async def reset(self, tenant_id: str) -> None:
        """Forget a tenant's bucket and today's count (tests, operators)."""
        self._leases.pop(tenant_id, None)
        quota = [key async for key in self._redis.scan_iter(f"{self._prefix}:quota:{tenant_id}:*")]
        await self._redis.delete(f"{self._prefix}:bucket:{tenant_id}", *quota)
