"""`flk demo` end to end on the real platform, and its independent check catching a missing
outcome (issue 7 acceptance)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.layout import Layout, Region
from tests.conftest import FLK
from topics.catalogue import OUTCOMES

pytestmark = pytest.mark.platform


def _latest(region: Region, key: bytes) -> tuple[int, bytes] | None:
    """(partition, value) of the newest record for `key` in flk.outcomes."""
    consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "t-latest",
                         "enable.auto.commit": False})  # fmt: skip
    try:
        found: tuple[int, bytes] | None = None
        meta = consumer.list_topics(OUTCOMES, timeout=10).topics[OUTCOMES]
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(OUTCOMES, p), timeout=10)
            if high <= low:
                continue
            consumer.assign([TopicPartition(OUTCOMES, p, low)])
            while True:
                msg = consumer.poll(2.0)
                if msg is None:
                    break
                if not msg.error() and msg.key() == key:
                    value = msg.value()
                    found = (p, value) if value is not None else None
                offset = msg.offset()
                assert offset is not None  # a fetched record always has one
                if offset + 1 >= high:
                    break
        return found
    finally:
        consumer.close()


def test_demo_passes_and_check_catches_a_deleted_outcome(platform: Layout, tmp_path: Path) -> None:
    log = tmp_path / "acks.jsonl"
    demo = subprocess.run([FLK, "demo", "--records", "80", "--rate", "40", "--log", str(log)],
                          capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert demo.returncode == 0, demo.stdout + demo.stderr[-3000:]
    assert "CHECK PASSED" in demo.stdout
    acks = [json.loads(line) for line in log.read_text().splitlines()]
    kinds = {a["kind"] for a in acks}
    assert {"unique", "bad_signature"} <= kinds, kinds
    winner = next(a for a in acks if a["kind"] == "unique" and a["http_status"] in (200, 202))
    key = f"{winner['tenant']}/{winner['pcs_id']}".encode()
    region = platform.regions[1]
    latest = _latest(region, key)
    assert latest is not None, f"{key!r} has no outcome in {region.name}"
    partition, value = latest
    producer = Producer({"bootstrap.servers": region.kafka_bootstrap, "acks": "all"})
    producer.produce(OUTCOMES, key=key, value=None, partition=partition)  # delete it
    producer.flush(10)
    try:
        check = subprocess.run([FLK, "check", str(log), "--timeout", "0"], capture_output=True,
                               text=True, timeout=300, check=False)  # fmt: skip
        assert check.returncode == 1, check.stdout + check.stderr
        assert "CHECK FAILED" in check.stderr
        assert winner["request_id"] in check.stderr or key.decode() in check.stderr
    finally:
        producer.produce(OUTCOMES, key=key, value=value, partition=partition)  # restore
        producer.flush(10)
