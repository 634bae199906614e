"""Backpressure from the dedup stage's consumer lag (SPEC §4: 503 + Retry-After when the
pipeline is too far behind).

A thread polls, every `poll_s`, the committed offsets of the region's dedup consumer group
(`flk-dedup-<region>`) on `flk.wal` and the mirrored WAL topics and their high watermarks; the
lag is the sum over partitions of (high watermark − committed). A partition without a
committed offset contributes nothing: the group may not exist yet (no workers) and refusing
every request then would make the gateway useless while it is being set up. When the lag
cannot be read the last known value is kept for at most `stale_after_s`, then treated as 0.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from confluent_kafka import ConsumerGroupTopicPartitions, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from topics.catalogue import WAL, mirrored_wal

log = logging.getLogger("flk.gateway.backpressure")


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
        self._admin = AdminClient({"bootstrap.servers": bootstrap,
                                   "socket.connection.setup.timeout.ms": 1000})
        self._lag = 0
        self._at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="lag", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(3.0)

    @property
    def lag(self) -> int:
        if time.monotonic() - self._at > self.stale_after_s:
            return 0
        return self._lag

    def over(self) -> bool:
        return self.lag > self.threshold

    def measure(self, timeout: float = 2.0) -> int:
        """One lag reading (blocking)."""
        req = ConsumerGroupTopicPartitions(self.group)
        committed_fut = self._admin.list_consumer_group_offsets([req], request_timeout=timeout)
        committed: dict[tuple[str, int], int] = {}
        for tp in committed_fut[self.group].result(timeout).topic_partitions or []:
            if tp.topic in self.topics and tp.offset >= 0:
                committed[(tp.topic, tp.partition)] = tp.offset
        if not committed:
            return 0
        wanted = {TopicPartition(t, p): OffsetSpec.latest() for t, p in committed}  # type: ignore[no-untyped-call]
        lag = 0
        for tp, fut in self._admin.list_offsets(wanted, request_timeout=timeout).items():
            high = fut.result(timeout).offset
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

