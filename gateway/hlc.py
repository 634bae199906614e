"""Hybrid logical clock receive stamps (DESIGN "Receive stamps and cross-region winner").

A stamp is (physical ms, counter): the wall clock plus the region's configured offset, never
going backwards; stamps issued within one millisecond (or while the wall clock lags a stamp
already seen) are ordered by the counter. When the wall clock steps back by more than
`max_future_skew_ms`, stamps run ahead of it by more than the bound: that is counted.
`observe` lets the clock catch up with a stamp seen elsewhere, but only up to
`max_future_skew_ms` ahead of the local clock: a stamp further in the future is not adopted
(one bad clock must not drag every later stamp forward) and is counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from topics.wal import Stamp


class HybridClock:
    def __init__(
        self,
        offset_ms: int = 0,
        max_future_skew_ms: int = 1000,
        wall_ms: Callable[[], int] | None = None,
        on_skew: Callable[[int], None] | None = None,
    ) -> None:
        self.offset_ms = offset_ms
        self.max_future_skew_ms = max_future_skew_ms
        self._wall_ms = wall_ms or (lambda: time.time_ns() // 1_000_000)
        self._on_skew = on_skew
        self._last = Stamp(0, 0)
        self._lock = threading.Lock()
        self.skew_rejections = 0

    def physical_ms(self) -> int:
        return self._wall_ms() + self.offset_ms

    def now(self) -> Stamp:
        """A receive stamp strictly greater than every stamp this clock issued or adopted."""
        physical = self.physical_ms()
        with self._lock:
            last = self._last
            stamp = Stamp(physical, 0) if physical > last.ms else Stamp(last.ms, last.counter + 1)
            self._last = stamp
        ahead = stamp.ms - physical
        if ahead > self.max_future_skew_ms:
            self._skewed(ahead)
        return stamp

    def _skewed(self, ahead_ms: int) -> None:
        self.skew_rejections += 1
        if self._on_skew is not None:
            self._on_skew(ahead_ms)

    def observe(self, seen: Stamp) -> bool:
        """Adopt a stamp seen elsewhere unless it is too far in the future; True if adopted."""
        physical = self.physical_ms()
        ahead = seen.ms - physical
        if ahead > self.max_future_skew_ms:
            self._skewed(ahead)
            return False
        with self._lock:
            if seen > self._last:
                self._last = seen
        return True
