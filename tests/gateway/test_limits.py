"""The Redis limiter, shared by several clients (as by several gateway processes)."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from flk.config import Secret
from gateway.limits import Limiter, Verdict
from gateway.resp import RespClient
from gateway.tenants import Tenant
from infra.layout import Layout

pytestmark = pytest.mark.platform


def _tenant(rate: float, burst: int, quota: int) -> Tenant:
    return Tenant(f"lim-{secrets.token_hex(4)}", Secret("x" * 20), rate, burst, quota)


async def _take_n(url: str, tenant: Tenant, n: int) -> list[Verdict]:
    a, b = RespClient.from_url(url), RespClient.from_url(url)
    try:
        la, lb = Limiter(a, "test"), Limiter(b, "test")
        out = [await (la if i % 2 == 0 else lb).take(tenant) for i in range(n)]
        await la.reset(tenant.id)
        return out
    finally:
        await a.close()
        await b.close()


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


def test_resp_client_pipelines_and_reports_errors(platform: Layout) -> None:
    async def run() -> None:
        client = RespClient.from_url(platform.regions[0].redis_url)
        key = f"flk:test:{secrets.token_hex(4)}"
        try:
            replies = await asyncio.gather(*(client.execute("INCR", key) for _ in range(50)))
            assert sorted(replies) == list(range(1, 51))  # every reply to its own command
            assert await client.execute("SET", key, "v", "EX", 10) == b"OK"
            assert await client.execute("GET", key) == b"v"
            assert await client.execute("GET", key + ":absent") is None
            with pytest.raises(Exception, match="wrong number of arguments|ERR"):
                await client.execute("GET")
            assert await client.execute("DEL", key) == 1  # still usable after an error reply
        finally:
            await client.close()
        dead = RespClient("127.0.0.1", 1, timeout_s=0.5)
        with pytest.raises(OSError):
            await dead.execute("PING")

    asyncio.run(run())


def test_resp_client_times_out_a_silent_server() -> None:
    async def run() -> None:
        async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(1 << 16)  # and never answer
            await reader.read(1 << 16)  # until the client hangs up
            writer.close()

        server = await asyncio.start_server(silent, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = RespClient("127.0.0.1", port, timeout_s=0.4)
        try:
            with pytest.raises(Exception, match="did not answer within 0.4 s"):
                await client.execute("PING")
        finally:
            await client.close()
            server.close()
            await server.wait_closed()

    asyncio.run(run())
