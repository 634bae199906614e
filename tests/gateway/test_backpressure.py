"""The lag reading behind the 503 backpressure answer: committed offsets of the dedup group vs
high watermarks; partitions without a commit do not count."""

from __future__ import annotations

import secrets

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
