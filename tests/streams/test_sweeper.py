"""The dedup window's sweeper (streams/sweeper.py): expired entries are deleted in event time,
with changelog tombstones, after a grace for late records."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from infra import apps
from infra import platform as plat
from infra.layout import Layout
from infra.procs import Supervisor
from streams import walgen
from streams.dedup import encode_entry
from streams.sweeper import Sweeper
from tests.streams.live import (
    Replies,
    Submitter,
    Watch,
    changelog,
    key_of,
    metric,
    status,
    wait_for,
)


def _scan(entries: dict[bytes, bytes]):  # type: ignore[no-untyped-def]
    def items(start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key in sorted(entries):
            if start is None or key >= start:
                yield key, entries[key]
    return items


def test_entries_expire_in_event_time_after_the_grace() -> None:
    entries = {f"t/{i:03d}".encode(): encode_entry(1000 + i, b"o") for i in range(10)}
    entries[b"__faust\x00offset__"] = b"42"  # not an entry: never swept
    s = Sweeper(grace_ms=100, step=100)
    assert s.expired(0, _scan(entries)) == []  # no event time yet: nothing is old
    s.advance({0: 1104})  # clock - grace = 1004: entries expiring before 1004 go
    assert s.expired(0, _scan(entries)) == [b"t/000", b"t/001", b"t/002", b"t/003"]
    s.advance({0: 900})  # event time never goes back
    assert s.clocks[0] == 1104


def test_the_sweep_is_incremental_and_wraps_around() -> None:
    entries = {f"t/{i:03d}".encode(): encode_entry(0, b"o") for i in range(7)}
    s = Sweeper(grace_ms=0, step=3)
    s.advance({0: 10})
    assert s.expired(0, _scan(entries)) == [b"t/000", b"t/001", b"t/002"]
    assert s.expired(0, _scan(entries), skip={b"t/004"}) == [b"t/003", b"t/005"]
    assert s.expired(0, _scan(entries)) == [b"t/006"]  # the end: next time from the start
    assert s.expired(0, _scan(entries)) == [b"t/000", b"t/001", b"t/002"]


def _counting(entries: dict[bytes, bytes], reads: list[bytes]):  # type: ignore[no-untyped-def]
    scan = _scan(entries)

    def items(start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        for key, value in scan(start):
            reads.append(key)
            yield key, value
    return items


def test_a_partition_where_nothing_can_have_expired_is_not_read() -> None:
    entries = {f"t/{i:03d}".encode(): encode_entry(5000 + i, b"o") for i in range(10)}
    reads: list[bytes] = []
    s = Sweeper(grace_ms=100, step=4)
    s.advance({0: 1000})
    for _ in range(3):  # one full pass in steps of 4: the floor is the earliest expiry
        assert s.expired(0, _counting(entries, reads)) == []
    assert s.floors[0] == 5000 and len(set(reads)) == 10
    reads.clear()
    s.advance({0: 5100})  # limit 5000: still nothing expires before it
    assert s.expired(0, _counting(entries, reads)) == [] and reads == []
    # A later write with an earlier expiry lowers the floor: the partition is read again.
    entries[b"t/late"] = encode_entry(4000, b"o")
    s.wrote([(0, entries[b"t/late"]), (1, encode_entry(1, b"o")), (0, b"not an entry")])
    assert s.floors == {0: 4000}  # partition 1 has no proved floor to lower
    found = [k for _ in range(3) for k in s.expired(0, _counting(entries, reads))]
    assert reads, "a write below the floor did not make the sweeper read the partition again"
    assert found == [b"t/late"] and s.examined == 10 + len(entries)


def test_a_write_during_a_pass_keeps_the_floor_below_it() -> None:
    entries = {f"t/{i:03d}".encode(): encode_entry(5000, b"o") for i in range(6)}
    s = Sweeper(grace_ms=0, step=3)
    s.advance({0: 10})
    assert s.expired(0, _scan(entries)) == []  # t/000..t/002 read
    # Written behind the cursor: the rest of this pass will not read it.
    entries[b"t/000a"] = encode_entry(20, b"o")
    s.wrote([(0, entries[b"t/000a"])])
    assert s.expired(0, _scan(entries)) == []
    assert s.expired(0, _scan(entries)) == []  # the end of the pass
    assert s.floors[0] == 20
    s.advance({0: 21})
    assert b"t/000a" in s.expired(0, _scan(entries))


def test_an_entry_not_yet_deleted_keeps_the_floor_below_it() -> None:
    entries = {b"t/a": encode_entry(5, b"o"), b"t/b": encode_entry(9000, b"o")}
    s = Sweeper(grace_ms=0, step=10)
    s.advance({0: 10})
    assert s.expired(0, _scan(entries)) == [b"t/a"]
    # Its tombstone was not delivered: the entry stays, and the next sweep must find it.
    assert s.floors[0] == 5
    assert s.expired(0, _scan(entries)) == [b"t/a"]
    del entries[b"t/a"]
    assert s.expired(0, _scan(entries)) == [] and s.floors[0] == 9000


def test_a_partition_that_moved_away_forgets_its_clock() -> None:
    s = Sweeper(grace_ms=0, step=10)
    s.advance({0: 50, 1: 60})
    s.expired(0, _scan({}))
    assert s.floors[0] > 0
    s.forget(0)
    assert 0 not in s.clocks and 0 not in s.floors and s.clocks[1] == 60
    assert s.expired(0, _scan({b"t/x": encode_entry(0, b"o")})) == []


@pytest.mark.platform
def test_an_expired_entry_is_deleted_with_a_changelog_tombstone(platform: Layout) -> None:
    region = platform.region("eu-west")
    sup = Supervisor(platform.run_dir)
    svc = apps.worker(region, 0)
    svc.env = {"FLK_STREAM_SWEEP_GRACE": "0s", "FLK_STREAM_SWEEP_INTERVAL_MS": "100",
               "FLK_STREAM_SWEEP_STEP": "100000"}
    versions = walgen.publish(platform.home)
    tenant = walgen.SHORT_WINDOW_TENANT  # dedup window 3 s
    sub, replies = Submitter(platform, region, versions), Replies(region)
    entries = Watch(region, changelog(region))
    sup.stop(svc.key)
    try:
        sup.start(svc, 120)
        wait_for("the worker", lambda: status(region).get("ready"))
        import random

        rng = random.Random()
        data = walgen.body(tenant, rng)
        key = key_of(tenant, data)
        t0 = int(time.time() * 1000)
        first = sub.record(data, tenant=tenant, ms=t0)
        sub.send([first])
        replies.wait([first.request_id])
        # Later records on every partition move event time 5 s on: past the window.
        later = [sub.record(walgen.body(tenant, rng), tenant=tenant, ms=t0 + 5000)
                 for _ in range(64)]  # fmt: skip
        sub.send(later)
        replies.wait([r.request_id for r in later])

        def tombstone() -> bool:
            entries.poll(0.3)
            return any(s.key == key and s.value is None for s in entries.seen)

        wait_for("a changelog tombstone for the expired entry", tombstone, timeout=30)
        assert metric(region, "flk_stream_swept_entries_total") >= 1
        # each partition step under the stage's lock is timed, the deleting ones included
        assert metric(region, "flk_stream_sweep_hold_seconds_count") >= 1
        assert metric(region, "flk_stream_sweep_hold_seconds_sum") > 0
        again = sub.record(data, tenant=tenant, ms=t0 + 6000)
        sub.send([again])
        reply = replies.wait([again.request_id])[again.request_id]
        assert reply["dedup_hit"] is False  # the entry is gone: a new first write
        assert status(region)["ready"]
    finally:
        sup.stop(svc.key)
        plat.up(platform)
        for w in (replies, entries):
            w.close()
