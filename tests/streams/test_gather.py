"""streams/gather.py: which sorted events the stage decides at once and which it holds."""

from __future__ import annotations

from dataclasses import dataclass

from streams.gather import MirrorGather
from topics.catalogue import WAL, mirrored_wal

MIRROR = mirrored_wal("us-east")


@dataclass(frozen=True)
class _Message:
    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> tuple[str, int]:
        return (self.topic, self.partition)


@dataclass(frozen=True)
class _Event:
    message: _Message


def ev(topic: str, offset: int, partition: int = 0) -> _Event:
    return _Event(_Message(topic, partition, offset))


def test_mirrored_events_are_held_until_due() -> None:
    g = MirrorGather(WAL, within_s=0.25, max_events=500)
    assert g.add([ev(MIRROR, 0), ev(MIRROR, 1)], now=10.0) == []
    assert g.remaining(10.125) == 0.125
    assert g.add([ev(MIRROR, 2)], now=10.125) == []
    out = g.add([ev(MIRROR, 3)], now=10.25)
    assert [e.message.offset for e in out] == [0, 1, 2, 3]
    assert g.pending == [] and g.remaining(10.2) is None


def test_a_local_record_takes_everything_held_with_it_in_order() -> None:
    g = MirrorGather(WAL, within_s=0.1, max_events=500)
    g.add([ev(MIRROR, 0)], now=1.0)
    out = g.add([ev(MIRROR, 1), ev(WAL, 7)], now=1.001)
    assert [(e.message.topic, e.message.offset) for e in out] == [
        (MIRROR, 0), (MIRROR, 1), (WAL, 7)]
    assert g.remaining(1.002) is None


def test_local_records_are_never_held() -> None:
    g = MirrorGather(WAL, within_s=5.0, max_events=500)
    assert len(g.add([ev(WAL, 0)], now=0.0)) == 1
    assert g.pending == []


def test_a_full_batch_is_not_held() -> None:
    g = MirrorGather(WAL, within_s=5.0, max_events=3)
    assert g.add([ev(MIRROR, 0), ev(MIRROR, 1)], now=0.0) == []
    assert len(g.add([ev(MIRROR, 2)], now=0.001)) == 3


def test_a_hold_of_zero_holds_nothing() -> None:
    g = MirrorGather(WAL, within_s=0.0, max_events=500)
    assert len(g.add([ev(MIRROR, 0)], now=0.0)) == 1
    assert g.remaining(0.0) is None


def test_take_when_due_and_nothing_new() -> None:
    g = MirrorGather(WAL, within_s=0.1, max_events=500)
    g.add([ev(MIRROR, 0)], now=0.0)
    assert g.remaining(0.5) == 0.0
    assert [e.message.offset for e in g.take()] == [0]
    assert g.take() == [] and g.remaining(0.5) is None


def test_an_empty_batch_neither_holds_nor_releases() -> None:
    g = MirrorGather(WAL, within_s=0.1, max_events=500)
    assert g.add([], now=0.0) == [] and g.remaining(0.0) is None
    g.add([ev(MIRROR, 0)], now=0.0)
    assert g.add([], now=0.05) == []
    assert len(g.add([], now=0.125)) == 1


def test_revoked_partitions_are_dropped_from_the_hold() -> None:
    g = MirrorGather(WAL, within_s=0.1, max_events=500)
    g.add([ev(MIRROR, 0, partition=1), ev(MIRROR, 0, partition=2)], now=0.0)
    dropped = g.drop({(MIRROR, 1)})
    assert [e.message.partition for e in dropped] == [1]
    assert [e.message.partition for e in g.pending] == [2]
    assert g.drop({(MIRROR, 2)}) and g.remaining(0.0) is None
