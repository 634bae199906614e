"""Admission bound of a gateway process (FLK_GATEWAY_MAX_IN_FLIGHT): beyond it a submit is
refused with 503 `overloaded` + Retry-After before the WAL, instead of every answer slowing
down together."""

from __future__ import annotations

import asyncio
import os
import secrets

import httpx
import pytest

from flk.config import Config
from gateway.app import create_app
from gateway.settings import load_settings
from infra.layout import Layout
from tests.gateway.helpers import signed_body, wal_ends, wal_records

pytestmark = pytest.mark.platform


def test_submits_beyond_the_in_flight_bound_are_refused_before_the_wal(platform: Layout) -> None:
    """An in-process gateway (real broker, Redis, workers) allowed two submits in flight gets
    24 full submits at once: each is either decided (200) or refused (503 overloaded) — never
    both, and a refused one is not in the WAL."""
    region = platform.regions[0]
    settings = load_settings(region.name, 7, Config(None, environ={
        **os.environ, "FLK_HOME": str(platform.home), "FLK_GATEWAY_MAX_IN_FLIGHT": "2"}))
    app = create_app(settings)
    gw = app.state.gw
    tag = secrets.token_hex(4)
    bodies = {f"over-{tag}-{i}": signed_body(platform.home, "default")[1] for i in range(24)}
    ends = wal_ends(region)

    async def submit_all() -> dict[str, httpx.Response]:
        async with app.starlette.router.lifespan_context(app.starlette):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw",
                                         timeout=30) as client:  # fmt: skip
                answers = await asyncio.gather(*(
                    client.post("/v1/pcs/submit", content=body, headers={"X-Request-Id": rid})
                    for rid, body in bodies.items()))
                return dict(zip(bodies, answers, strict=True))

    refused_before = gw.metrics.overloaded.labels(gw.region)._value.get()
    answers = asyncio.run(submit_all())
    refused = {rid for rid, r in answers.items() if r.status_code == 503}
    decided = {rid for rid, r in answers.items() if r.status_code == 200}
    assert refused | decided == set(bodies), {r.status_code for r in answers.values()}
    assert len(decided) >= 2 and refused, (len(decided), len(refused))
    for rid in refused:
        r = answers[rid]
        assert r.json()["error"] == "overloaded" and r.json()["request_id"] == rid
        assert r.headers["Retry-After"] == str(settings.retry_after_s)
    assert gw.metrics.overloaded.labels(gw.region)._value.get() - refused_before == len(refused)
    assert gw.admitted == 0  # every admitted submit left the count, answered or not
    in_wal = wal_records(region, ends, set(bodies), timeout=10)
    assert decided <= set(in_wal)
    assert not refused & set(in_wal)
