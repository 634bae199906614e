"""Prometheus metrics of one stream worker, labelled by region (and worker index).

Counters are fed per batch from `BatchResult.counts` (names below); gauges by the worker's
monitor (consumer lag per partition, assignment) and by recovery (changelog records replayed
when a partition became active here: the measure of how warm a promoted standby was).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from streams.dedup import BatchResult

_STAGE: Final = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_AGE: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# BatchResult.counts name → metric suffix
_COUNTED: Final = {
    "processed": "records_processed",
    "rejected": "records_rejected",
    "accepted": "records_accepted",
    "escalated": "records_escalated",
    "dedup_hit": "dedup_hits",
    "conflict": "conflicts",
    "supersede": "supersedes",
    "divergence": "divergences",
    "first": "first_writes",
    "expired": "window_expiries",
    "redelivery": "redeliveries",
}


class StreamMetrics:
    def __init__(self, region: str, index: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        labels = {"region": region, "worker": str(index)}
        self._labels = labels
        self.counters = {
            name: Counter(f"flk_stream_{suffix}", f"dedup stage: {name.replace('_', ' ')}",
                          ["region", "worker"], registry=r).labels(**labels)
            for name, suffix in _COUNTED.items()
        }  # fmt: skip
        self.rejected_by_reason = Counter(
            "flk_stream_rejections", "records rejected before dedup, by reason",
            ["region", "worker", "reason"], registry=r)
        self.batch_seconds = Histogram(
            "flk_stream_batch_seconds", "dedup stage latency: one batch from verify to "
            "acknowledgement (outputs delivered, store written)", ["region", "worker"],
            buckets=_STAGE, registry=r).labels(**labels)
        self.stage_seconds = Histogram(
            "flk_stream_stage_seconds", "one batch's time in each step: decide (verify and "
            "dedup, on the event loop), deliver (outputs acknowledged by the broker), store "
            "(outcome store written), commit (replies sent, RocksDB written)",
            ["region", "worker", "stage"], buckets=_STAGE, registry=r)
        self.decision_age = Histogram(
            "flk_stream_decision_age_seconds", "receive stamp to dedup decision (includes mirror "
            "lag for mirrored records)", ["region", "worker"], buckets=_AGE,
            registry=r).labels(**labels)
        self.batch_size = Histogram(
            "flk_stream_batch_records", "records per batch", ["region", "worker"],
            buckets=(1, 2, 5, 10, 50, 100, 250, 500, 1000, 5000), registry=r).labels(**labels)
        self.swept = Counter(
            "flk_stream_swept_entries", "dedup entries deleted by the window sweeper",
            ["region", "worker"], registry=r).labels(**labels)
        self.sweep_examined = Counter(
            "flk_stream_sweep_examined_entries", "dedup entries read by the window sweeper "
            "(a partition where nothing can have expired yet is not read)",
            ["region", "worker"], registry=r).labels(**labels)
        self.sweep_hold = Histogram(
            "flk_stream_sweep_hold_seconds", "time one partition's sweep held the stage (no "
            "batch runs meanwhile): the read, and when it found expired entries their "
            "tombstones delivered and the deletes written", ["region", "worker"],
            buckets=_STAGE, registry=r).labels(**labels)
        self.delivery_retries = Counter(
            "flk_stream_delivery_retries", "batches re-processed after a delivery failure",
            ["region", "worker"], registry=r).labels(**labels)
        self.store_retries = Counter(
            "flk_stream_store_retries", "outcome store writes retried", ["region", "worker"],
            registry=r).labels(**labels)
        self.lag = Gauge(
            "flk_stream_consumer_lag", "records behind the high watermark, per source partition",
            ["region", "worker", "topic", "partition"], registry=r)
        self.assigned = Gauge(
            "flk_stream_assigned_partitions", "table partitions held, by role",
            ["region", "worker", "role"], registry=r)
        self.replayed = Counter(
            "flk_stream_changelog_replayed", "changelog records applied to restore an active "
            "partition (recovery at start or after a rebalance)", ["region", "worker"],
            registry=r).labels(**labels)
        self.standby_applied = Counter(
            "flk_stream_changelog_standby_applied", "changelog records applied to standby "
            "partitions", ["region", "worker"], registry=r).labels(**labels)
        self.rebalances = Counter(
            "flk_stream_rebalances", "partition assignments received", ["region", "worker"],
            registry=r).labels(**labels)
        self.reseeks = Counter(
            "flk_stream_reseeks", "partitions sought back to their committed offset after "
            "Faust dropped records (streams/faustfix.py)", ["region", "worker"],
            registry=r).labels(**labels)
        self.table_entries = Gauge(
            "flk_stream_table_entries", "dedup entries in active partitions (estimate)",
            ["region", "worker"], registry=r).labels(**labels)

    def observe(self, res: BatchResult, now_ms: int, seconds: float, n: int) -> None:
        for name, value in res.counts.items():
            counter = self.counters.get(name)
            if counter is not None:
                counter.inc(value)
        for reason, value in res.rejected_reasons.items():
            self.rejected_by_reason.labels(**self._labels, reason=reason).inc(value)
        self.batch_seconds.observe(seconds)
        self.batch_size.observe(n)
        for ms in res.stamps_ms:
            self.decision_age.observe(max(0.0, (now_ms - ms) / 1000))

    def stage(self, name: str, seconds: float) -> None:
        self.stage_seconds.labels(**self._labels, stage=name).observe(seconds)

    def set_lag(self, lags: Iterable[tuple[str, int, int]]) -> None:
        for topic, partition, lag in lags:
            self.lag.labels(**self._labels, topic=topic, partition=str(partition)).set(lag)

    def set_assigned(self, active: int, standby: int) -> None:
        self.assigned.labels(**self._labels, role="active").set(active)
        self.assigned.labels(**self._labels, role="standby").set(standby)
