"""Backpressure from the dedup stage's consumer lag (SPEC §4: 503 + Retry-After when the
pipeline is too far behind).

A thread polls, every `poll_s`, the committed offsets of the region's dedup consumer group
(`flk-dedup-<region>`) on `flk.wal` and the mirrored WAL topics and their high watermarks; the
lag is the sum over partitions of (high watermark − committed). Two requests a reading: one
offset fetch and one ListOffsets for all partitions (a watermark query per partition was two
requests each: 64 requests/s to an idle broker from two gateway processes). A partition without a
committed offset contributes nothing: the group may not exist yet (no workers) and refusing
every request then would make the gateway useless while it is being set up. When the lag
cannot be read the last known value is kept for at most `stale_after_s`, then treated as 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import Consumer, IsolationLevel, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from topics.catalogue import WAL, mirrored_wal

log = logging.getLogger("flk.gateway.backpressure")
_LATEST = OffsetSpec.latest()  # type: ignore[no-untyped-call]


def dedup_group(region: str) -> str:
    return f"flk-dedup-{region}"


class LagMonitor:
    def __init__(self, bootstrap: str, region: str, other_regions: list[str], threshold: int,
                 poll_s: float = 1.0, stale_after_s: float = 10.0,
                 on_lag: Callable[[int], None] | None = None) -> None:  # fmt: skip
        self.group = dedup_group(region)
        self.topics = [WAL] + [mirrored_wal(r) for r in other_regions]
        self.threshold = threshold
        self.poll_s = poll_s
        self.stale_after_s = stale_after_s
        self._on_lag = on_lag
        # A consumer carrying the group's id, used only for committed() and watermarks: it never
        # subscribes, so it never joins the group. (Not AdminClient.list_consumer_group_offsets:
        # librdkafka crashes the process when that call meets NOT_COORDINATOR, e.g. while a
        # fresh broker loads its coordinator — librdkafka issue #5040.)
        self._consumer = Consumer({
            "bootstrap.servers": bootstrap, "group.id": self.group,
            "enable.auto.commit": False, "socket.connection.setup.timeout.ms": 1000,
        })  # fmt: skip
        self._admin = AdminClient({
            "bootstrap.servers": bootstrap, "socket.connection.setup.timeout.ms": 1000,
        })  # fmt: skip
        self._partitions: list[TopicPartition] = []
        self._lag = 0
        self._at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3.0)
        self._consumer.close()

    @property
    def lag(self) -> int:
        if time.monotonic() - self._at > self.stale_after_s:
            return 0
        return self._lag

    def over(self) -> bool:
        return self.lag > self.threshold

    def measure(self, timeout: float = 2.0) -> int:
        """One lag reading (blocking)."""
        if not self._partitions:
            found: list[TopicPartition] = []
            for topic in self.topics:
                md = self._consumer.list_topics(topic, timeout=timeout).topics.get(topic)
                if md is not None and md.error is None:
                    found += [TopicPartition(topic, p) for p in sorted(md.partitions)]
            self._partitions = found
        # nothing committed (yet): not counted, see the module doc
        committed = {(tp.topic, tp.partition): tp.offset
                     for tp in self._consumer.committed(self._partitions, timeout=timeout)
                     if tp.offset >= 0}  # fmt: skip
        if not committed:
            return 0
        ends = self._admin.list_offsets(
            {TopicPartition(t, p): _LATEST for t, p in committed},
            isolation_level=IsolationLevel.READ_UNCOMMITTED, request_timeout=timeout)
        lag = 0
        for tp, future in ends.items():
            high = future.result(timeout=timeout).offset
            lag += max(0, high - committed[(tp.topic, tp.partition)])
        return lag

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._lag = self.measure()
                self._at = time.monotonic()
                if self._on_lag is not None:
                    self._on_lag(self._lag)
            except (KafkaException, TimeoutError, ValueError) as exc:
                log.debug("dedup lag not readable: %s", exc)
            except Exception as exc:  # the monitor must never die; the gateway runs without it
                log.warning("dedup lag reading failed: %s", exc)
            self._stop.wait(self.poll_s)

