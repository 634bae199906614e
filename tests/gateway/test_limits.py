"""The Redis limiter, shared by several clients (as by several gateway processes)."""

from __future__ import annotations

import asyncio
import os
import secrets
import time

import pytest
from redis.asyncio import Redis

from flk.config import Secret
from gateway.limits import Limiter, Verdict, lease_size
from gateway.redisio import LAZY_S, REDIS_ERRORS, TurnPipeline, connect_redis
from gateway.tenants import Tenant
from infra.layout import Layout

pytestmark = pytest.mark.platform


def _tenant(rate: float, burst: int, quota: int) -> Tenant:
    return Tenant(f"lim-{secrets.token_hex(4)}", Secret("x" * 20), rate, burst, quota)


async def _take_n(url: str, tenant: Tenant, n: int) -> list[Verdict]:
    a, b = connect_redis(url), connect_redis(url)
    try:
        la, lb = Limiter(TurnPipeline(a), "test"), Limiter(TurnPipeline(b), "test")
        out = [await (la if i % 2 == 0 else lb).take(tenant) for i in range(n)]
        await la.reset(tenant.id)
        assert await a.exists(f"flk:limits:test:bucket:{tenant.id}") == 0
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


def test_script_unknown_to_redis_is_loaded_again(platform: Layout) -> None:
    """EVALSHA of a script Redis does not know (a restarted Redis) loads it again. Simulated
    with an unknown digest: SCRIPT FLUSH would disturb the other users of the shared Redis."""

    async def run() -> list[Verdict]:
        client = connect_redis(platform.regions[0].redis_url)
        try:
            limiter = Limiter(TurnPipeline(client), "test")
            tenant = _tenant(rate=1000, burst=10, quota=0)
            first = await limiter.take(tenant)
            limiter._script.sha = "0" * 40  # NOSCRIPT on the next call
            second = await limiter.take(tenant)  # a lone command
            assert limiter._script.sha != "0" * 40
            limiter._script.sha = "0" * 40
            third, fourth = await asyncio.gather(limiter.take(tenant), limiter.take(tenant))
            await limiter.reset(tenant.id)
            return [first, second, third, fourth]  # the last two in one pipeline
        finally:
            await client.aclose()

    assert [v.allowed for v in asyncio.run(run())] == [True] * 4


async def _quota_used(client: Redis, tenant: Tenant) -> int:
    seconds, _micros = await client.time()
    used = await client.get(f"flk:limits:test:quota:{tenant.id}:{seconds // 86400}")
    assert used is not None
    return int(used)


def test_lease_is_spent_locally_and_its_rest_given_back(platform: Layout) -> None:
    """A tenant at 1,000/s gets leases of 20 tokens (20 ms of its rate): one script call for
    20 decisions, counted in the quota when granted; what a lease has left when it expires is
    given back by the next call (the quota count drops by it). (A long lease life here, so
    that a slow machine does not expire a lease mid-test; expiry is then forced.)"""
    tenant = _tenant(rate=1000, burst=1000, quota=1_000_000)
    assert lease_size(tenant) == 20

    async def run() -> None:
        client = connect_redis(platform.regions[0].redis_url)
        limiter = Limiter(TurnPipeline(client), "test", lease_ttl_s=60)
        try:
            assert (await limiter.take(tenant)).allowed
            assert await _quota_used(client, tenant) == 20  # the whole lease is counted
            for _ in range(19):  # spent here, no call to Redis
                assert (await limiter.take(tenant)).allowed
            assert await _quota_used(client, tenant) == 20
            assert (await limiter.take(tenant)).allowed  # the 21st: a new lease
            assert await _quota_used(client, tenant) == 40
            limiter._leases[tenant.id].expires = 0.0  # 19 unused tokens expire...
            assert (await limiter.take(tenant)).allowed  # ...and go back with the next call
            assert await _quota_used(client, tenant) == 40 - 19 + 20
            await limiter.reset(tenant.id)
        finally:
            await client.aclose()

    asyncio.run(run())


def test_concurrent_requests_of_a_tenant_share_one_call(platform: Layout) -> None:
    """30 requests at once: two grants of 20 (the second asked when the first ran out), not a
    lease per request."""
    tenant = _tenant(rate=1000, burst=1000, quota=1_000_000)

    async def run() -> None:
        client = connect_redis(platform.regions[0].redis_url)
        limiter = Limiter(TurnPipeline(client), "test")
        try:
            verdicts = await asyncio.gather(*(limiter.take(tenant) for _ in range(30)))
            assert all(v.allowed for v in verdicts)
            assert await _quota_used(client, tenant) == 40
            await limiter.reset(tenant.id)
        finally:
            await client.aclose()

    asyncio.run(run())


class _CountingFutures:
    """Stands in for the asyncio module inside gateway.limits and counts the futures it
    makes: one per request that waits."""

    def __init__(self) -> None:
        self.made = 0

    def __getattr__(self, name: str) -> object:
        return getattr(asyncio, name)

    def get_running_loop(self) -> object:
        loop, outer = asyncio.get_running_loop(), self

        class _Loop:
            def create_future(self) -> asyncio.Future[object]:
                outer.made += 1
                return loop.create_future()

        return _Loop()


def test_a_queue_of_waiters_is_woken_once_each_in_arrival_order(
    platform: Layout, monkeypatch: pytest.MonkeyPatch
) -> None:
    """2,000 requests of one tenant at once, 100 tokens per grant: every request waits for a
    future of its own once and is admitted in arrival order.
    (Waking every waiter at each grant costs O(waiters²): under overload that kept a gateway
    overloaded.)"""
    from gateway import limits

    counting = _CountingFutures()
    monkeypatch.setattr(limits, "asyncio", counting)
    tenant = _tenant(rate=100_000, burst=100_000, quota=0)
    assert lease_size(tenant) == 100

    async def run() -> list[int]:
        client = connect_redis(platform.regions[0].redis_url)
        limiter = Limiter(TurnPipeline(client), "test")
        admitted: list[int] = []

        async def one(i: int) -> None:
            if (await limiter.take(tenant)).allowed:
                admitted.append(i)

        try:
            await asyncio.gather(*(one(i) for i in range(2000)))
            await limiter.reset(tenant.id)
            return admitted
        finally:
            await client.aclose()

    admitted = asyncio.run(run())
    assert admitted == list(range(2000))
    assert counting.made == 2000, f"{counting.made} futures for 2,000 waiting requests"


def test_leases_never_admit_more_than_the_bucket(platform: Layout) -> None:
    """Two processes' limiters, each with 40 requests in flight at a time, for a tenant whose
    bucket holds 300 and refills 1,000/s: what both admit together stays within the bucket
    plus its refill, and near empty the grants shrink to single tokens, so the two together
    still admit at least the bucket."""
    tenant = _tenant(rate=1000, burst=300, quota=0)

    async def run() -> tuple[int, float]:
        a = connect_redis(platform.regions[0].redis_url)
        b = connect_redis(platform.regions[0].redis_url)
        la, lb = Limiter(TurnPipeline(a), "test"), Limiter(TurnPipeline(b), "test")
        try:
            t0 = time.monotonic()
            allowed = 0
            for _ in range(15):
                verdicts = await asyncio.gather(*(lim.take(tenant) for lim in (la, lb)
                                                  for _ in range(40)))
                allowed += sum(v.allowed for v in verdicts)
            elapsed = time.monotonic() - t0
            await la.reset(tenant.id)
            return allowed, elapsed
        finally:
            await a.aclose()
            await b.aclose()

    allowed, elapsed = asyncio.run(run())
    assert 300 <= allowed <= 300 + 1000 * elapsed + 1, (allowed, elapsed)
    assert allowed < 15 * 80  # some were refused: the test did reach the limit


def test_turn_pipeline_answers_each_command(platform: Layout) -> None:
    """Commands of one loop turn share a pipeline; each gets its own reply, an error reply
    fails only its own command."""

    async def run() -> None:
        client = connect_redis(platform.regions[0].redis_url)
        batch = TurnPipeline(client)
        key = f"flk:test:{secrets.token_hex(4)}"
        try:
            replies = await asyncio.gather(*(batch.execute("INCR", key) for _ in range(50)))
            assert sorted(replies) == list(range(1, 51))
            # Unpacked in a second step: mypy cannot type a tuple target unpacked straight
            # from `await gather(..., return_exceptions=True)` ("Cannot determine type").
            results = await asyncio.gather(
                batch.execute("SET", key, "v", "EX", 10), batch.execute("GET"),
                batch.execute("GET", key), return_exceptions=True)
            ok, bad, value = results
            assert ok is True and value == b"v"
            assert isinstance(bad, REDIS_ERRORS)  # wrong number of arguments
            assert await batch.execute("GET", key + ":absent") is None  # a lone command
            # A lazy command waits for company (at most LAZY_S), an urgent one takes it along.
            lazy = batch.execute("SET", key + ":lazy", "1", "EX", 10, urgent=False)
            await asyncio.sleep(0)
            assert not lazy.done()
            assert await batch.execute("GET", key + ":lazy") == b"1"  # sent after the SET
            assert lazy.done() and lazy.result() is True
            alone = batch.execute("DEL", key + ":lazy", urgent=False)
            assert await asyncio.wait_for(alone, LAZY_S + 0.5) == 1
            assert await batch.execute("DEL", key) == 1
        finally:
            await batch.close()
            await client.aclose()

    asyncio.run(run())


def test_turn_pipeline_fails_every_command_when_redis_is_down() -> None:
    async def run() -> None:
        client = connect_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
        batch = TurnPipeline(client)
        try:
            for n in (1, 5):
                out = await asyncio.gather(*(batch.execute("PING") for _ in range(n)),
                                           return_exceptions=True)
                assert all(isinstance(e, REDIS_ERRORS) for e in out), out
        finally:
            await batch.close()
            await client.aclose()

    asyncio.run(run())


def test_limiter_reports_redis_down_at_once() -> None:
    """Nothing listens: the error comes at once (no retries) and is one the submit route lets
    through (REDIS_ERRORS)."""

    async def run() -> None:
        client = connect_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
        try:
            t0 = time.monotonic()
            with pytest.raises(REDIS_ERRORS):
                await Limiter(TurnPipeline(client), "test", timeout_s=0.5).take(_tenant(1, 1, 0))
            assert time.monotonic() - t0 < 0.5
        finally:
            await client.aclose()

    asyncio.run(run())


def test_limiter_times_out_a_silent_server() -> None:
    async def run() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # and never answer
            await reader.read(1 << 16)  # until the client hangs up
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = connect_redis(f"redis://127.0.0.1:{port}/0", timeout_s=0.4)
        try:
            t0 = time.monotonic()
            with pytest.raises(REDIS_ERRORS):
                await Limiter(TurnPipeline(client), "test", timeout_s=0.4).take(_tenant(1, 1, 0))
            assert 0.35 < time.monotonic() - t0 < 1.0
        finally:
            await client.aclose()
            server.close()
            await server.wait_closed()

    asyncio.run(run())


# Starlette 1.x asks for httpx2 under its TestClient; httpx works for this use.
@pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")
def test_submit_is_let_through_and_counted_when_redis_is_down(platform: Layout) -> None:
    """An in-process gateway (real broker and tenants) whose Redis is unreachable: the submit is
    appended and answered (202 pending), flk_gateway_limiter_errors_total counts it."""
    from starlette.testclient import TestClient

    from flk.config import Config
    from gateway.app import create_app
    from gateway.settings import load_settings
    from gateway.store import RequestMarkers
    from tests.gateway.helpers import signed_body, wal_ends, wal_records

    region = platform.regions[0]
    # The test's own environment (FLK_PORT_BASE, ...) so the gateway talks to this platform.
    settings = load_settings(region.name, 7, Config(None, environ={
        **os.environ, "FLK_HOME": str(platform.home)}))
    app = create_app(settings)
    ends = wal_ends(region)
    with TestClient(app) as client:
        gw = app.state.gw
        dead = connect_redis("redis://127.0.0.1:1/0", timeout_s=0.5)
        gw.limiter = Limiter(TurnPipeline(dead), gw.region, timeout_s=0.5)
        gw.markers = RequestMarkers(TurnPipeline(dead), 60)
        errors = gw.metrics.limiter_errors.labels(gw.region)
        before = errors._value.get()
        _doc, body = signed_body(platform.home, "default")
        rid = f"nolimit-{secrets.token_hex(4)}"
        r = client.post("/v1/pcs/submit", content=body,
                        headers={"X-Request-Id": rid, "Prefer": "respond-async"})
        assert r.status_code == 202 and r.json()["status"] == "pending"
        assert errors._value.get() == before + 1
    assert rid in wal_records(region, ends, {rid}, timeout=10)
