"""Holding back batches of mirrored records so the stage decides them in fewer, larger batches.

A batch costs the worker a fixed share on top of its records (a PostgreSQL transaction, one
produce request per changelog and outcome partition, RocksDB writes, Faust's bookkeeping): at
1,000 records/s a batch of 50 costs a record about twice what a batch of 500 does. A local
record has a gateway waiting for its decision, so a batch with one is decided at once. A
record replicated from another region has nobody waiting — the replication before it already
took a hundred milliseconds or more — so batches made only of such records are held for up to
`within_s` and decided together (docs/streams.md, "Mirrored batches").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class MirrorGather:
    """Events sorted for processing, held while they are all mirrored and few and young."""

    def __init__(self, local_topic: str, within_s: float, max_events: int) -> None:
        self.local_topic = local_topic
        self.within_s = within_s
        self.max_events = max_events
        self.pending: list[Any] = []
        self._since: float | None = None

    def add(self, events: list[Any], now: float) -> list[Any]:
        """The events to decide now (what was held first, in order), or [] to hold them."""
        if not events and not self.pending:
            return []
        self.pending.extend(events)
        if self._since is None:
            self._since = now
        if (self.within_s <= 0 or len(self.pending) >= self.max_events
                or now - self._since >= self.within_s
                or any(e.message.topic == self.local_topic for e in events)):  # fmt: skip
            return self.take()
        return []

    def remaining(self, now: float) -> float | None:
        """Seconds until the held events are due (0: now); None when nothing is held."""
        if self._since is None:
            return None
        return max(0.0, self._since + self.within_s - now)

    def take(self) -> list[Any]:
        events, self.pending, self._since = self.pending, [], None
        return events

    def drop(self, tps: Iterable[Any]) -> list[Any]:
        """Remove the held events of partitions no longer assigned; they are returned."""
        gone = set(tps)
        dropped = [e for e in self.pending if e.message.tp in gone]
        if dropped:
            self.pending = [e for e in self.pending if e.message.tp not in gone]
            if not self.pending:
                self._since = None
        return dropped
