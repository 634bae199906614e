"""The cross-region first-write-wins rule (SPEC §3 step 3, §5; DESIGN "Receive stamps and
cross-region winner"), as a pure function of two identities.

The global winner of a `(tenant, pcs_id)` is the submission with the smallest
`(stamp, origin region, request id)`. Each region applies this rule to records in whatever
order its local WAL and the mirrors deliver them, so the entry it holds converges to the same
winner once it has seen the same records: the minimum does not depend on the order. The dedup
window is measured in event time (receive stamps): an entry is absent for a record whose stamp
exceeds the stored winner's stamp by more than the window.

tests/streams/test_merge.py cross-checks `classify` against a naive reference over random
interleavings and clock skews.
"""

from __future__ import annotations

import enum
from typing import NamedTuple


class Identity(NamedTuple):
    """Who a submission is; tuple order is the winner order (smaller wins)."""

    stamp_ms: int
    stamp_counter: int
    origin: str
    request_id: str


class Kind(enum.Enum):
    FIRST = "first"  # no entry: the record is the first write
    EXPIRED = "expired"  # the entry is older than the window: the record is a new first write
    REDELIVERY = "redelivery"  # the winner itself again (or its request id retried later)
    DUPLICATE = "duplicate"  # a later submission: it gets the winner's outcome
    SUPERSEDE = "supersede"  # an earlier submission arrived late: it becomes the winner

    @property
    def wins(self) -> bool:
        """Does the record become (or stay) the entry's winner, so its own outcome is due?"""
        return self is not Kind.DUPLICATE

    @property
    def changes_entry(self) -> bool:
        return self in (Kind.FIRST, Kind.EXPIRED, Kind.SUPERSEDE)


def classify(current: Identity | None, candidate: Identity, window_ms: int) -> Kind:
    """What `candidate` is with respect to the entry whose winner is `current`.

    A request id is the client's name for one submission, so the same request id is never a
    duplicate of itself (SPEC §3.3), even when a client retry got a new stamp in another region;
    but the entry must still hold the smallest identity of that request, or two regions that saw
    the retry and the original in opposite orders would keep different winners.
    """
    if current is None:
        return Kind.FIRST
    if candidate == current:
        return Kind.REDELIVERY
    if candidate.stamp_ms - current.stamp_ms > window_ms:
        return Kind.EXPIRED
    if candidate < current:
        return Kind.SUPERSEDE
    if candidate.request_id == current.request_id:
        return Kind.REDELIVERY
    return Kind.DUPLICATE
