"""A record produced to flk.wal in each region appears in the other region's mirror, on the
same partition, within 30 s (issue 2 acceptance)."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

from infra.layout import Layout, Region
from topics.catalogue import WAL, WAL_PARTITIONS, mirrored_wal

pytestmark = pytest.mark.platform


def _produce(region: Region, partition: int, key: bytes, value: bytes) -> int:
    producer = Producer(
        {"bootstrap.servers": region.kafka_bootstrap, "acks": "all", "enable.idempotence": True,
         "message.max.bytes": 2 * 1024 * 1024}
    )  # fmt: skip
    offsets: list[int] = []

    def on_delivery(err: object, msg: object) -> None:
        assert err is None, err
        offsets.append(msg.offset())  # type: ignore[attr-defined]

    producer.produce(
        WAL, key=key, value=value, partition=partition, headers={"probe": b"1"},
        on_delivery=on_delivery,
    )  # fmt: skip
    assert producer.flush(10) == 0
    return offsets[0]


def _find(region: Region, topic: str, partition: int, key: bytes, deadline: float) -> object:
    consumer = Consumer(
        {"bootstrap.servers": region.kafka_bootstrap, "group.id": f"t-{uuid.uuid4()}",
         "enable.auto.commit": False}
    )  # fmt: skip
    try:
        consumer.assign([TopicPartition(topic, partition, 0)])
        while time.monotonic() < deadline:
            msg = consumer.poll(0.5)
            if msg is None or msg.error():
                continue
            if msg.key() == key:
                return msg
        return None
    finally:
        consumer.close()


# A maximal WAL record: a 1 MiB body plus headers (it once killed the mirror's tasks).
@pytest.mark.parametrize(("direction", "size"), [(0, 64), (1, 64), (0, 1024 * 1024)])
def test_wal_record_is_mirrored_to_the_same_partition(
    platform: Layout, direction: int, size: int
) -> None:
    src = platform.regions[direction]
    dst = platform.others(src)[0]
    partition = 5 % WAL_PARTITIONS
    key = f"probe/{uuid.uuid4()}".encode()
    value = (uuid.uuid4().bytes * (size // 16 + 1))[:size]
    t0 = time.monotonic()
    _produce(src, partition, key, value)
    msg = _find(dst, mirrored_wal(src.name), partition, key, t0 + 30)
    elapsed = time.monotonic() - t0
    assert msg is not None, f"not mirrored {src.name}->{dst.name} within 30 s"
    assert msg.value() == value  # type: ignore[attr-defined]
    assert msg.partition() == partition  # type: ignore[attr-defined]
    assert ("probe", b"1") in (msg.headers() or [])  # type: ignore[attr-defined]
    print(f"mirror {src.name}->{dst.name} ({size} B): {elapsed * 1000:.0f} ms")
