"""The dedup-window sweeper (DESIGN "Dedup window"): deletes expired entries with changelog
tombstones, so a restore or a standby holds what the active holds.

Faust tables have no reliable TTL, and the window is in event time anyway: a partition's
clock is the largest receive stamp the stage has read from it. An entry is swept once that
clock passes its expiry (winner stamp + window) by more than `grace_ms`. The grace is for
records that arrive late with older stamps (a mirror catching up): until the grace has passed
they still find the entry, as a replay into empty state would. Sweeping is incremental — a
bounded number of entries per active partition per tick of the worker's sweep timer
(`FLK_STREAM_SWEEP_INTERVAL_MS`), resuming where the last step stopped — so a large table never
stalls the stream, and the record path pays nothing for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from streams.dedup import entry_expiry

# (key, value) pairs of one partition's store in key order, starting at or after a key
# (or at the beginning for None).
Scan = Callable[[bytes | None], Iterator[tuple[bytes, bytes]]]


@dataclass
class Sweeper:
    grace_ms: int
    step: int  # entries examined per partition per sweep
    cursors: dict[int, bytes | None] = field(default_factory=dict)
    clocks: dict[int, int] = field(default_factory=dict)  # partition → event time (ms)

    def advance(self, event_time: dict[int, int]) -> None:
        for p, ms in event_time.items():
            if ms > self.clocks.get(p, -1):
                self.clocks[p] = ms

    def forget(self, partition: int) -> None:
        """The partition moved away: its clock will be rebuilt from what is read next."""
        self.cursors.pop(partition, None)
        self.clocks.pop(partition, None)

    def expired(self, partition: int, scan: Scan, skip: set[bytes] | None = None
                ) -> list[bytes]:  # fmt: skip
        """Examine up to `step` entries of `partition` from its cursor; return expired keys."""
        clock = self.clocks.get(partition)
        if clock is None:
            return []
        limit = clock - self.grace_ms
        out: list[bytes] = []
        seen = 0
        last: bytes | None = None
        start = self.cursors.get(partition)
        for key, value in scan(start):
            if start is not None and key == start:
                continue  # the cursor itself was examined by the previous step
            seen += 1
            last = key
            expiry = entry_expiry(value)
            if expiry is not None and expiry < limit and not (skip and key in skip):
                out.append(key)
            if seen >= self.step:
                break
        # Wrap to the beginning once the end is reached.
        self.cursors[partition] = last if seen >= self.step else None
        return out
