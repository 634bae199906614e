"""`flk tail TOPIC`: print a topic's records as JSON, one per line.

Avro single-object records (outcomes, replies, rejections, audit events, replay side topics)
are decoded by their schema fingerprint; dedup-table changelog entries show their expiry and
outcome; WAL records show their headers and the body's size and SHA-256 — the body itself only
with `--body` (SPEC §4: payload bodies are not logged).
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from infra.layout import Region
from schemas.codec import MAGIC, SCHEMA_DIR, Codec, CodecError, codec
from streams.dedup import entry_expiry, entry_outcome
from topics.wal import WalHeaderError, WalHeaders


@cache
def _by_fingerprint() -> dict[bytes, Codec]:
    codecs = [codec(p.stem) for p in Path(SCHEMA_DIR).glob("*.avsc")]
    return {c.fingerprint: c for c in codecs}


def decode_value(topic: str, value: bytes | None, headers: list[tuple[str, bytes]] | None,
                 body: bool = False) -> Any:  # fmt: skip
    if value is None:
        return None
    if value[:2] == MAGIC and (c := _by_fingerprint().get(value[2:10])) is not None:
        try:
            return {"schema": c.name, **c.decode(value)}
        except CodecError as exc:
            return {"undecodable": str(exc)}
    expiry = entry_expiry(value)
    if expiry is not None and topic.endswith("-changelog"):
        return {"entry_expires_at_ms": expiry,
                "outcome": decode_value(topic, entry_outcome(value), None)}  # fmt: skip
    try:
        wal = WalHeaders.decode(headers)  # type: ignore[arg-type]
    except WalHeaderError:
        wal = None
    if wal is not None:
        out: dict[str, Any] = {"bytes": len(value), "sha256": hashlib.sha256(value).hexdigest()}
        if body:
            out["body"] = value.decode("utf-8", errors="replace")
        return out
    return {"base64": base64.b64encode(value).decode()}


def _headers(msg: Message) -> dict[str, str]:
    raw: Any = msg.headers() or []
    return {k: (v or b"").decode("utf-8", errors="replace") for k, v in raw}


def render(msg: Message, body: bool = False) -> str:
    topic = msg.topic() or ""
    headers = msg.headers() or []
    record = {
        "topic": topic, "partition": msg.partition(), "offset": msg.offset(),
        "timestamp_ms": msg.timestamp()[1],
        "key": (msg.key() or b"").decode("utf-8", errors="replace") if msg.key() else None,
        "headers": _headers(msg),
        "value": decode_value(topic, msg.value(), list(headers), body),  # type: ignore[arg-type]
    }  # fmt: skip
    return json.dumps(record, sort_keys=False, ensure_ascii=False, default=str)


def records(region: Region, topic: str, *, from_end: bool, follow: bool, limit: int | None,
            partition: int | None = None) -> Iterator[Message]:  # fmt: skip
    consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap,
                         "group.id": "flk-tail", "enable.auto.commit": False})  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            raise LookupError(f"topic {topic!r} does not exist in {region.name}")
        parts = sorted(meta.partitions) if partition is None else [partition]
        ends: dict[int, int] = {}
        next_offset: dict[int, int] = {}
        assignment = []
        for p in parts:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            ends[p] = high
            next_offset[p] = high if from_end else low
            assignment.append(TopicPartition(topic, p, next_offset[p]))
        consumer.assign(assignment)
        seen = 0
        idle = 0
        while True:
            if not follow and all(next_offset[p] >= ends[p] for p in parts):
                return
            msg = consumer.poll(0.5)
            if msg is None:
                idle += 1
                if not follow and idle > 10:  # nothing more arrives: the end is a gap
                    return
                continue
            idle = 0
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(str(err))
                continue
            next_offset[msg.partition() or 0] = (msg.offset() or 0) + 1
            yield msg
            seen += 1
            if limit is not None and seen >= limit:
                return
    finally:
        consumer.close()
