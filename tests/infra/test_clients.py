"""Both Kafka client libraries the project uses round-trip against the pinned broker."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import NewTopic

from infra import kafka
from infra.layout import Layout, Region

pytestmark = pytest.mark.platform


@pytest.fixture()
def scratch_topic(platform: Layout) -> object:
    region = platform.regions[0]
    name = f"test.clients.{uuid.uuid4().hex[:8]}"
    admin = kafka.admin(region)
    admin.create_topics([NewTopic(name, num_partitions=2, replication_factor=1)])[name].result()
    yield region, name
    admin.delete_topics([name])[name].result()


def test_confluent_kafka_round_trip(scratch_topic: tuple[Region, str]) -> None:
    region, topic = scratch_topic
    producer = Producer({"bootstrap.servers": region.kafka_bootstrap, "acks": "all",
                         "enable.idempotence": True})  # fmt: skip
    sent = {f"k{i}".encode(): uuid.uuid4().bytes for i in range(20)}
    for k, v in sent.items():
        producer.produce(topic, key=k, value=v, headers={"h": k})
    assert producer.flush(10) == 0
    consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest"})  # fmt: skip
    consumer.subscribe([topic])
    got: dict[bytes, bytes] = {}
    for _ in range(60):
        msg = consumer.poll(0.5)
        if msg is not None and not msg.error():
            key, value, headers = msg.key(), msg.value(), msg.headers()
            assert key is not None and value is not None and headers is not None
            got[key] = value
            assert dict(headers)["h"] == key
        if len(got) == len(sent):
            break
    consumer.close()
    assert got == sent


def test_aiokafka_round_trip(scratch_topic: tuple[Region, str]) -> None:
    region, topic = scratch_topic

    async def run() -> dict[bytes, bytes]:
        producer = AIOKafkaProducer(bootstrap_servers=region.kafka_bootstrap, acks="all",
                                    enable_idempotence=True)  # fmt: skip
        await producer.start()
        try:
            for i in range(20):
                await producer.send_and_wait(topic, key=f"k{i}".encode(), value=b"v%d" % i)
        finally:
            await producer.stop()
        consumer = AIOKafkaConsumer(topic, bootstrap_servers=region.kafka_bootstrap,
                                    group_id=topic, auto_offset_reset="earliest")  # fmt: skip
        await consumer.start()
        got: dict[bytes, bytes] = {}
        try:
            while len(got) < 20:
                batch = await asyncio.wait_for(consumer.getmany(timeout_ms=500), 30)
                for records in batch.values():
                    for rec in records:
                        assert rec.key is not None and rec.value is not None
                        got[rec.key] = rec.value
        finally:
            await consumer.stop()
        return got

    got = asyncio.run(run())
    assert got == {f"k{i}".encode(): b"v%d" % i for i in range(20)}
