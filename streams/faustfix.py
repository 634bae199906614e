"""Corrections to faust-streaming 0.15.3 (`apply`): its offset bookkeeping (two), a watchdog,
the consumer's fetch size and pace (`_paced_fetch`), the table's RocksDB options on reopening,
and two hand-overs between the worker's threads — the consumer thread fetches from a snapshot
of the partitions to read (`_fetch_records`: standby replicas lost changelog records) and
seeks run on it (`_seek_on_consumer_thread`).

Found by the scale-and-kill test (tests/streams/test_faults.py): after a rebalance, a record
prefetched before the rebalance can reach the consumer's drain loop right after the seek to
the committed offset C (faust-streaming issue #221). Its offset C+n is taken for a "gap" in the
topic (C+1 … C+n, as if compacted away: `Consumer._add_gap`), the records C … C+n−1 fetched
next are then dropped as already read, and `_new_offset` fills the acknowledged list from the
gap and — because its head-gap test is off by one (committed offsets are the *next* offset to
read) — commits past records that no one processed (issue #606). Records acknowledged by a
gateway were lost that way.

* `_add_gap` is disabled: every source of the dedup stage is written by idempotent,
  non-transactional producers (gateways, MirrorMaker 2) and never compacted, so its offsets
  are dense and an apparent gap is always this artefact.
* `_new_offset` refuses to commit while the committed offset itself is not acknowledged.

With both, such records are no longer committed past, but they are still dropped, and the
records after them would be processed before them. So the worker checks the order itself
(`InOrder`): a record whose offset jumps past the next one expected on its partition is not
processed; it is released from Faust's books (`forget`), and the partition is sought back to
the expected offset to read the records in order (redelivery is harmless by construction).
`StallWatch` covers the remaining case, a dropped record with nothing after it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import rocksdict
from aiokafka.consumer.fetcher import Fetcher
from faust.stores.rocksdb import RocksDBOptions
from faust.transport.consumer import Consumer, ThreadDelegateConsumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from faust.types.tuples import ack_lock

_original_new_offset = Consumer._new_offset
_original_create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer
_original_fetch_records = AIOKafkaConsumerThread._fetch_records
_original_rocksdb_open = RocksDBOptions.open
_original_proc_fetch_request = Fetcher._proc_fetch_request
_applied = False
_fetch_sizes = (1, 1500)  # (fetch_min_bytes, fetch_max_wait_ms), set by `apply`
_fetch_interval_s = 0.0  # least time between two fetch requests to one broker, set by `apply`


async def _no_gap(self: Any, tp: TP, offset_from: int, offset_to: int) -> None:
    return None


def _new_offset(self: Any, tp: TP) -> int | None:
    acked = self._acked[tp]
    committed = self._committed_offset[tp]
    if acked and committed is not None and min(acked) > committed:
        return None  # the record at the committed offset has not been acknowledged
    result: int | None = _original_new_offset(self, tp)
    return result


def apply(fetch_min_bytes: int = 1, fetch_max_wait_ms: int = 1500,
          fetch_interval_ms: int = 0) -> None:  # fmt: skip
    global _applied, _fetch_sizes, _fetch_interval_s
    if not _applied:
        Consumer._add_gap = _no_gap  # type: ignore[method-assign]
        Consumer._new_offset = _new_offset  # type: ignore[method-assign]
        RocksDBOptions.open = _open_rocksdb  # type: ignore[method-assign]
        AIOKafkaConsumerThread._create_worker_consumer = (  # type: ignore[method-assign]
            _create_worker_consumer)
        AIOKafkaConsumerThread._fetch_records = _fetch_records  # type: ignore[method-assign]
        ThreadDelegateConsumer._seek = _seek_on_consumer_thread  # type: ignore[method-assign]
        Fetcher._proc_fetch_request = _paced_fetch
        _applied = True
    _fetch_sizes = (fetch_min_bytes, fetch_max_wait_ms)
    _fetch_interval_s = fetch_interval_ms / 1000


def _open_rocksdb(self: RocksDBOptions, path: Path, *, read_only: bool = False) -> Any:
    """Open a table partition with the table's options, every time.

    Faust passes its options to `rocksdict.Rdict` but no column families, and rocksdict then
    opens an existing database's column family with the options stored in its OPTIONS file,
    where the bloom filter reads back as none (`filter_policy=nullptr`): from the first
    restart on, every lookup of a new key read an index and a data block of every level,
    more of them as the table grew. Naming the default column family with the table's options
    keeps the filter (and the block cache) on every open; SST files written meanwhile get
    their filter when compaction rewrites them."""
    if not self.use_rocksdict:
        return _original_rocksdb_open(self, path, read_only=read_only)
    access = (rocksdict.AccessType.read_write() if self.ttl is None
              else rocksdict.AccessType.with_ttl(self.ttl))  # fmt: skip
    options = self.as_options()  # one set (and one block cache) for the DB and its family
    db = rocksdict.Rdict(str(path), options=options, column_families={"default": options},
                         access_type=access)
    db.set_read_options(rocksdict.ReadOptions())
    return db


async def _fetch_records(self: Any, consumer: Any, active_partitions: Any,
                         timeout: float | None = None, max_records: int | None = None) -> Any:
    """Fetch only from the partitions Faust reads now, never from all of them.

    Faust hands the consumer thread its live set of unpaused partitions, and aiokafka's
    `fetched_records` takes an empty set for "every partition". When the set empties between
    the request and the fetch (recovery pauses the active changelog partitions once they are
    read, while the standby ones are still paused), the thread returned the prefetched records
    of every partition, advancing their positions, and Faust's `getmany` then dropped those of
    paused partitions. A standby changelog partition seeked to its stored offset lost the
    records up to the head that way and was promoted later without them: a key decided
    again with no memory of its first winner (the scale-and-kill test saw a request answered
    `dedup_hit: false` after `true`). A snapshot taken here is a consistent copy (a set copy
    runs under the GIL); an empty one fetches nothing."""
    partitions: Any = active_partitions
    if partitions is not None:
        partitions = frozenset(partitions)
        if not partitions:
            return {}
    return await _original_fetch_records(self, consumer, partitions, timeout=timeout,
                                         max_records=max_records)  # fmt: skip


async def _seek_on_consumer_thread(self: Any, partition: TP, offset: int) -> None:
    """`Consumer.seek` on the consumer's own thread. Faust's called aiokafka's `seek` from the
    worker's main thread, which drops the partition's fetched records while the consumer
    thread may be draining them: a CI run crashed a worker with `KeyError(TopicPartition(
    'flk.wal', 7))` in aiokafka's `Fetcher.fetched_records` after the stage's re-seek."""
    await self._thread.call_thread(self._thread.seek, partition, offset)


def _create_worker_consumer(self: Any, transport: Any) -> Any:
    """Faust builds its aiokafka consumer with `fetch_max_wait_ms=1500` and aiokafka's
    `fetch_min_bytes=1`, neither configurable: the broker answers each fetch as soon as one
    record is there, and at a few hundred records/s (a gateway produce request every few ms)
    the consumer thread spent most of its time sending fetches for one or two records each.
    With a minimum size the broker gathers a batch for at most the maximum wait (`apply`)."""
    consumer = _original_create_worker_consumer(self, transport)
    consumer._fetch_min_bytes, consumer._fetch_max_wait_ms = _fetch_sizes
    return consumer


async def _paced_fetch(self: Any, assignment: Any, node_id: int, request: Any) -> bool:
    """Send a fetch to a broker no sooner than `_fetch_interval_s` after the previous one.

    A fetch answered at the first record (a minimum of 1 byte) gives the lowest latency, and a
    long maximum wait keeps an idle consumer quiet (one request per wait, where 16 KiB or
    10 ms sent a hundred a second: a tenth of a core in the worker and again in the broker,
    doing nothing). Under load, though, a fetch answered at once is followed at once by the
    next, one or two records each. Pacing the sends keeps both: at most one fetch per
    interval while records flow, each taking what arrived since the last; a record waits at
    most an interval, as it did for the broker's 10 ms. aiokafka sends the next fetch to a
    broker only when this one returns, so the wait here delays nothing else. One exception:
    a partition whose records were still waiting to be taken when the fetch was built (for
    longer than aiokafka's 100 ms prefetch backoff: a worker already behind) is left out of
    it, and its next records wait for that fetch's answer, at most the maximum wait."""
    loop = asyncio.get_running_loop()
    sent: dict[int, float] = self.__dict__.setdefault("_flk_fetch_sent", {})
    wait = sent.get(node_id, float("-inf")) + _fetch_interval_s - loop.time()
    if wait > 0:
        try:
            await asyncio.sleep(wait)
        except asyncio.CancelledError:
            return False  # as aiokafka's own: closed or unassigned, the result is of no use
    sent[node_id] = loop.time()
    result: bool = await _original_proc_fetch_request(self, assignment, node_id, request)
    return result


def forget(consumer: Any, message: Any) -> None:
    """Release a delivered record that will not be processed now (it is read again after a
    seek) without acknowledging its offset."""
    with ack_lock:
        message.acked = True
        consumer._unacked_messages.discard(message)


class InOrder:
    """Per partition, the next offset the stage expects; sorts a batch into records to process,
    records already processed (delivered again after a seek) and records past a gap."""

    def __init__(self) -> None:
        self.next: dict[TP, int] = {}

    def reset(self, tps: set[TP]) -> None:
        for tp in tps:
            self.next.pop(tp, None)

    def rewind(self, tp: TP, offset: int) -> None:
        """The partition is sought back to `offset`: expect it next. Without this a record
        at or after `offset` that was sorted for processing before but never acknowledged
        (why the partition stalled) would come back below the expected offset and be
        acknowledged as already processed, unprocessed."""
        self.next[tp] = offset

    def unknown(self, events: list[Any], committed: Any) -> set[TP]:
        """The partitions of `events` whose next offset neither the stage nor Faust knows.

        Faust keeps no committed offset for a partition the group never committed, for one
        committed at 0 (`perform_seek` stores `offset if offset else None`), nor between a
        revocation and its next seek. Sorting such a partition from whatever record comes
        first would take a record prefetched before a rebalance (faust-streaming #221) for the
        start and then acknowledge every record below it, undecided, as already processed;
        the caller learns the offset from the broker (`learn_positions`) before sorting."""
        return {tp for tp in {e.message.tp for e in events}
                if tp not in self.next and committed.get(tp) is None}  # fmt: skip

    def sort(self, events: list[Any], committed: Any
             ) -> tuple[list[Any], list[Any], list[Any], dict[TP, int]]:  # fmt: skip
        """(to process, already processed, held back, {partition: offset to seek to}).
        Every partition of `events` must have a known next offset (`unknown` is empty)."""
        todo: list[Any] = []
        done: list[Any] = []
        held: list[Any] = []
        seek: dict[TP, int] = {}
        for event in events:
            m = event.message
            tp = m.tp
            if tp in seek:
                held.append(event)
                continue
            expected = self.next.get(tp)
            if expected is None:
                expected = committed.get(tp)
            if expected is None:
                raise LookupError(f"{tp}: next offset unknown; learn_positions() first")
            if m.offset == expected:
                todo.append(event)
                self.next[tp] = m.offset + 1
            elif m.offset < expected:
                done.append(event)
            else:
                seek[tp] = expected
                held.append(event)
        return todo, done, held, seek


async def learn_positions(order: InOrder, tps: set[TP],
                          committed: Callable[[TP], Awaitable[int | None]],
                          earliest: Callable[[TP], Awaitable[int]]) -> None:  # fmt: skip
    """Set the next offset of each partition in `tps` from the group's committed offset on
    the broker, or where a partition without one is read from (the earliest offset: the
    stage's `auto_offset_reset`)."""
    for tp in sorted(tps):
        offset = await committed(tp)
        order.rewind(tp, await earliest(tp) if offset is None else offset)


class StallWatch:
    """Partitions whose committed offset has not moved for `after_s` although the consumer
    has read past it and nothing of it is being processed."""

    def __init__(self, after_s: float = 15.0) -> None:
        self.after_s = after_s
        self._since: dict[TP, tuple[int, float]] = {}

    def check(self, consumer: Any, tps: set[TP], busy: set[TP], now: float | None = None
              ) -> list[tuple[TP, int]]:  # fmt: skip
        """`busy`: the partitions of the batch being processed right now."""
        now = time.monotonic() if now is None else now
        stalled = []
        for tp in tps:
            committed = consumer._committed_offset.get(tp)
            read = consumer._read_offset.get(tp)
            acked = consumer._acked.get(tp) or []
            # The read offset is the last record delivered, or right after a seek the next one
            # to read (= the committed offset): only a delivery past it is a sure sign.
            behind = (committed is not None and read is not None and read > committed
                      and (not acked or min(acked) > committed))  # fmt: skip
            if not behind or tp in busy:
                self._since.pop(tp, None)
                continue
            first = self._since.get(tp)
            if first is None or first[0] != committed:
                self._since[tp] = (committed, now)
            elif now - first[1] >= self.after_s:
                stalled.append((tp, committed))
                self._since.pop(tp, None)
        return stalled
