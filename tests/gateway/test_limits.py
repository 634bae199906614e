"""The Redis limiter, shared by several clients (as by several gateway processes)."""

from __future__ import annotations

import asyncio
import secrets

import pytest
from redis.asyncio import Redis

from flk.config import Secret
from gateway.limits import Limiter, Verdict
from gateway.tenants import Tenant
from infra.layout import Layout

pytestmark = pytest.mark.platform


def _tenant(rate: float, burst: int, quota: int) -> Tenant:
    return Tenant(f"lim-{secrets.token_hex(4)}", Secret("x" * 20), rate, burst, quota)


async def _take_n(url: str, tenant: Tenant, n: int) -> list[Verdict]:
    a, b = Redis.from_url(url), Redis.from_url(url)
    try:
        la, lb = Limiter(a, "test"), Limiter(b, "test")
        out = [await (la if i % 2 == 0 else lb).take(tenant) for i in range(n)]
        await la.reset(tenant.id)
        return out
    finally:
        await a.aclose()
        await b.aclose()


def test_token_bucket_is_shared_between_clients(platform: Layout) -> None:
    tenant = _tenant(rate=0.5, burst=5, quota=0)
    verdicts = asyncio.run(_take_n(platform.regions[0].redis_url, tenant, 7))
    assert [v.allowed for v in verdicts] == [True] * 5 + [False] * 2
    assert verdicts[5].reason == "rate_limited"
    assert verdicts[5].retry_after_s == 2  # one token at 0.5/s


def test_daily_quota(platform: Layout) -> None:
    tenant = _tenant(rate=1000, burst=1000, quota=3)
    verdicts = asyncio.run(_take_n(platform.regions[0].redis_url, tenant, 4))
    assert [v.allowed for v in verdicts] == [True, True, True, False]
    assert verdicts[3].reason == "quota_exceeded"
    assert 1 <= verdicts[3].retry_after_s <= 86_400
