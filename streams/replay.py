"""`flk replay`: re-process a region's WAL into empty state and compare (DESIGN "Replay").

The run reads `flk.wal` and every mirror of the region under a fresh consumer group
(`flk-replay-<region>-<run id>`, so standard tooling such as `kafka-consumer-groups
--reset-offsets` works on it) up to the high watermarks taken at its start, partition by
partition — the table is partitioned like the WAL, so one partition's state at a time is all
it holds — through the very `DedupStage` the workers run, with an empty in-memory table and
no side effects: its outcomes go to a side topic of its own (topics.catalogue.replay_outcomes),
never to `flk.outcomes`, the replies, the outcome store or the audit topic.

`--diff` then compares the latest record per key of the side topic with the live compacted
`flk.outcomes`, byte for byte (SPEC §5: a replay into empty state reproduces it). A difference
is a key whose latest outcomes differ, or a key the replay decided that the live topic lacks.
Keys only the live topic has are reported apart: their records were appended after the replay
fixed its end offsets, or are older than the WAL's retention (or than `--from-time`). Run the
diff on a quiet region: a key that receives a superseding record after the replay's end
differs legitimately.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import Consumer, KafkaError, TopicPartition

from infra import kafka
from infra.layout import Layout, Region
from schemas.codec import CodecError, codec
from streams.dedup import DedupStage
from streams.outputs import Outputs
from streams.verify import WalMessage
from topics import apply as topics_apply
from topics.catalogue import OUTCOMES, WAL, WAL_PARTITIONS, mirrored_wal, replay_outcomes

Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass
class ReplayReport:
    run_id: str
    group: str
    side_topic: str
    records: int = 0
    outcomes: int = 0
    seconds: float = 0.0
    diff: dict[str, Any] | None = None


@dataclass
class Diff:
    compared: int = 0
    differing: list[str] = field(default_factory=list)
    only_live: list[str] = field(default_factory=list)
    only_replay: list[str] = field(default_factory=list)
    examples: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def differences(self) -> int:
        return len(self.differing) + len(self.only_replay)


class _Table:
    def __init__(self) -> None:
        self.data: dict[bytes, bytes] = {}

    def get(self, partition: int, key: bytes) -> bytes | None:
        return self.data.get(key)


def new_run_id() -> str:
    return time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]


def source_topics(layout: Layout, region: Region) -> list[str]:
    return [WAL, *(mirrored_wal(r.name) for r in layout.others(region))]


def _consumer(region: Region, group: str) -> Consumer:
    # A short fetch wait: the broker answers one connection's requests in order, so the
    # watermark query of the next partition waited behind the previous partition's idle fetch
    # (up to librdkafka's default 500 ms, ~0.3 s a partition). The replay reads a backlog, so
    # its fetches are answered at once anyway.
    return Consumer({
        "bootstrap.servers": region.kafka_bootstrap, "group.id": group,
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
        "enable.partition.eof": False, "fetch.max.bytes": 64 * 1024 * 1024,
        "fetch.wait.max.ms": 10,
    })  # fmt: skip


def _bounds(consumer: Consumer, topics: list[str], partition: int, from_ms: int | None
            ) -> list[tuple[TopicPartition, int]]:  # fmt: skip
    """(start position, end offset) of `partition` in each topic, ends fixed now."""
    out = []
    for t in topics:
        low, high = consumer.get_watermark_offsets(TopicPartition(t, partition), timeout=10)
        start = low
        if from_ms is not None:
            (found,) = consumer.offsets_for_times([TopicPartition(t, partition, from_ms)],
                                                  timeout=10)  # fmt: skip
            start = high if found.offset < 0 else max(low, found.offset)
        if start < high:
            out.append((TopicPartition(t, partition, start), high))
    return out


def replay(
    layout: Layout, region: Region, *, from_ms: int | None = None, run_id: str | None = None,
    batch: int = 1000, say: Say = _quiet,
) -> ReplayReport:
    run_id = run_id or new_run_id()
    spec = replay_outcomes(run_id)
    topics_apply.apply(kafka.admin(region), [spec])
    group = f"flk-replay-{region.name}-{run_id}"
    report = ReplayReport(run_id, group, spec.name)
    stage = DedupStage(region.name, layout.home, outcomes_topic=spec.name, side_effects=False)
    outputs = Outputs(region.kafka_bootstrap, group)
    consumer = _consumer(region, group)
    topics = source_topics(layout, region)
    t0 = time.monotonic()
    try:
        for p in range(WAL_PARTITIONS):
            n, out = _replay_partition(consumer, topics, p, from_ms, stage, outputs, batch)
            report.records += n
            report.outcomes += out
            say(f"partition {p}: {n} WAL records, {out} outcome records")
        outputs.flush(60)
    finally:
        consumer.close()
    report.seconds = round(time.monotonic() - t0, 3)
    return report


def _replay_partition(
    consumer: Consumer, topics: list[str], p: int, from_ms: int | None, stage: DedupStage,
    outputs: Outputs, batch: int,
) -> tuple[int, int]:
    bounds = _bounds(consumer, topics, p, from_ms)
    if not bounds:
        return 0, 0
    ends = {(tp.topic, tp.partition): end for tp, end in bounds}
    nxt = {(tp.topic, tp.partition): tp.offset for tp, _ in bounds}  # next offset expected
    consumer.assign([tp for tp, _ in bounds])
    table = _Table()
    done: set[tuple[str, int]] = set()
    pending: list[WalMessage] = []
    n = produced = 0

    def run() -> int:
        res = stage.process(pending, table)
        table.data.update({k: v for (_, k), v in res.writes.items()})
        outputs.send(res.outputs)
        pending.clear()
        return len(res.outputs)

    while len(done) < len(ends):
        # Ask for no more records than are left before the ends: consume() then returns as soon
        # as they have arrived instead of waiting out its timeout for a batch that cannot fill
        # (that wait was most of a short replay's time, a second per partition). Gaps (a
        # compacted topic) only make the count too high: the timeout is still the fallback.
        left = sum(max(0, ends[tp] - nxt[tp]) for tp in ends if tp not in done)
        for m in consumer.consume(num_messages=max(1, min(batch, left)), timeout=1.0):
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise RuntimeError(f"reading {m.topic()}[{m.partition()}]: {err}")
            tp = (m.topic() or "", m.partition() or 0)
            offset = m.offset() or 0
            nxt[tp] = offset + 1
            if tp in done or offset >= ends[tp]:
                continue  # written after the run started
            headers: Any = m.headers() or []
            pending.append(WalMessage(tp[0], tp[1], offset, m.key(), m.value() or b"",
                                      list(headers)))  # fmt: skip
            n += 1
        if pending:
            produced += run()
        done |= _reached(consumer, ends)
    outputs.flush(60)
    consumer.commit(offsets=[TopicPartition(t, q, ends[(t, q)]) for t, q in ends],
                    asynchronous=False)  # fmt: skip
    consumer.unassign()
    return n, produced


def _reached(consumer: Consumer, ends: dict[tuple[str, int], int]) -> set[tuple[str, int]]:
    """The partitions whose read position has reached the end fixed at the start (positions,
    not the last offset seen: a compacted topic has gaps, and its last offset may be gone)."""
    positions = consumer.position([TopicPartition(t, p) for t, p in ends])
    return {(tp.topic, tp.partition) for tp in positions
            if tp.offset >= ends[(tp.topic, tp.partition)]}  # fmt: skip


def latest(region: Region, topic: str, group: str) -> dict[bytes, bytes]:
    """The latest value per key of a (compacted) topic, read to its current end."""
    consumer = _consumer(region, group)
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        bounds = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if low < high:
                bounds.append((TopicPartition(topic, p, low), high))
        ends = {(topic, tp.partition): end for tp, end in bounds}
        consumer.assign([tp for tp, _ in bounds])
        out: dict[bytes, bytes] = {}
        done: set[tuple[str, int]] = set()
        while len(done) < len(ends):
            for m in consumer.consume(num_messages=5000, timeout=1.0):
                end = ends[(topic, m.partition() or 0)]
                if m.error() is not None or (m.offset() or 0) >= end:
                    continue
                key, value = m.key() or b"", m.value()
                if value is None:
                    out.pop(key, None)
                else:
                    out[key] = value
            done |= _reached(consumer, ends)
        return out
    finally:
        consumer.close()


def diff(region: Region, side_topic: str, group: str,
         only: Callable[[bytes], bool] | None = None) -> Diff:  # fmt: skip
    """Compare the side topic with `flk.outcomes` (keys selected by `only`, default all)."""
    live = latest(region, OUTCOMES, group + "-diff")
    replayed = latest(region, side_topic, group + "-diff")
    keys = set(live) | set(replayed)
    if only is not None:
        keys = {k for k in keys if only(k)}
    d = Diff(compared=len(keys & set(live) & set(replayed)))
    for key in sorted(keys):
        name = key.decode(errors="replace")
        if key not in replayed:
            d.only_live.append(name)
        elif key not in live:
            d.only_replay.append(name)
        elif live[key] != replayed[key]:
            d.differing.append(name)
            if len(d.examples) < 5:
                d.examples[name] = _field_diff(live[key], replayed[key])
    return d


def _field_diff(a: bytes, b: bytes) -> dict[str, Any]:
    try:
        x, y = codec("outcome").decode(a), codec("outcome").decode(b)
    except CodecError as exc:
        return {"undecodable": str(exc)}
    return {k: {"live": x.get(k), "replay": y.get(k)} for k in sorted(set(x) | set(y))
            if x.get(k) != y.get(k)}  # fmt: skip
