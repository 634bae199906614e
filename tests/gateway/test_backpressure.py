"""The lag reading behind the 503 backpressure answer: committed offsets of the dedup group vs
high watermarks; partitions without a commit do not count."""

from __future__ import annotations

import os
import secrets
import time

import pytest
from confluent_kafka import Consumer, TopicPartition

from gateway.backpressure import LagMonitor, dedup_group
from infra.layout import Layout
from tests.gateway.helpers import wal_ends

pytestmark = pytest.mark.platform


def test_lag_is_committed_offsets_behind_the_watermarks(platform: Layout) -> None:
    region = platform.regions[0]
    fake_region = f"lagtest-{secrets.token_hex(3)}"
    ends = wal_ends(region)
    busy = [p for p, end in ends.items() if end >= 7][:2]
    assert len(busy) == 2, ends
    monitor = LagMonitor(region.kafka_bootstrap, fake_region, [], threshold=10)
    try:
        assert monitor.measure() == 0  # the group has no commits at all
        c = Consumer({"bootstrap.servers": region.kafka_bootstrap,
                      "group.id": dedup_group(fake_region), "enable.auto.commit": False})
        c.commit(offsets=[TopicPartition("flk.wal", busy[0], ends[busy[0]] - 4),
                          TopicPartition("flk.wal", busy[1], ends[busy[1]] - 7)],
                 asynchronous=False)
        c.close()
        lag = monitor.measure()
        assert lag >= 11  # more records may have arrived since
        monitor._lag, monitor._at = lag, float("inf")  # what the polling thread stores
        assert monitor.over()
        assert not LagMonitor(region.kafka_bootstrap, fake_region, [], threshold=10**9).over()
    finally:
        monitor._consumer.close()


# Starlette 1.x asks for httpx2 under its TestClient; httpx works for this use.
@pytest.mark.filterwarnings("ignore::starlette.exceptions.StarletteDeprecationWarning")
def test_backpressure_is_503_before_the_wal(platform: Layout) -> None:
    """An in-process gateway (real broker, Redis, tenants) whose dedup group is behind."""
    from starlette.testclient import TestClient

    from flk.config import Config
    from gateway.app import create_app
    from gateway.settings import load_settings
    from tests.gateway.helpers import wal_records

    region = platform.regions[0]
    fake_region = f"lagtest-{secrets.token_hex(3)}"
    ends = wal_ends(region)
    busy = next(p for p, end in ends.items() if end >= 3)
    c = Consumer({"bootstrap.servers": region.kafka_bootstrap,
                  "group.id": dedup_group(fake_region), "enable.auto.commit": False})
    c.commit(offsets=[TopicPartition("flk.wal", busy, ends[busy] - 3)], asynchronous=False)
    c.close()
    # The platform's own layout settings (home, port block, regions), then this test's.
    own = {k: v for k, v in os.environ.items() if k.startswith("FLK_")}
    settings = load_settings(region.name, 7, Config(None, environ={
        **own, "FLK_HOME": str(platform.home), "FLK_GATEWAY_BACKPRESSURE_LAG": "2",
        "FLK_GATEWAY_BACKPRESSURE_POLL_S": "0.2", "FLK_GATEWAY_RETRY_AFTER_S": "3"}))
    app = create_app(settings)
    with TestClient(app) as client:
        gw = app.state.gw
        gw.lag.stop()
        gw.lag = LagMonitor(region.kafka_bootstrap, fake_region, [], threshold=2, poll_s=0.2)
        gw.lag.start()
        deadline = time.monotonic() + 10
        while gw.lag.lag < 3:
            assert time.monotonic() < deadline, "the lag was never read"
            time.sleep(0.1)
        rid = f"bp-{secrets.token_hex(4)}"
        r = client.post("/v1/pcs/submit", content=b"{}", headers={"X-Request-Id": rid})
        assert r.status_code == 503 and r.json()["error"] == "backpressure"
        assert r.headers["retry-after"] == "3"
        gw.lag.stop()
        gw.lag = None  # caught up: the same request is appended (and is malformed: 400)
        assert client.post("/v1/pcs/submit", content=b"{}").status_code == 400
    assert wal_records(region, ends, {rid}, timeout=2) == {}
