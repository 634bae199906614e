"""The corrections to Faust's offset bookkeeping and table options (streams/faustfix.py)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from faust.stores.rocksdb import RocksDBOptions
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.types import TP
from intervaltree import IntervalTree

from streams import faustfix

TP0 = TP("flk.wal", 0)


class _Books:
    """The attributes `Consumer._new_offset` reads, nothing else."""

    def __init__(self, committed: int | None, acked: list[int]) -> None:
        self._acked: dict[TP, list[int]] = defaultdict(list, {TP0: list(acked)})
        self._acked_index: dict[TP, set[int]] = defaultdict(set, {TP0: set(acked)})
        self._committed_offset: dict[TP, int | None] = defaultdict(lambda: None)
        self._committed_offset[TP0] = committed
        self._gap: dict[TP, IntervalTree] = defaultdict(IntervalTree)
        self._read_offset: dict[TP, int | None] = {}


def new_offset(books: _Books) -> int | None:
    faustfix.apply()
    return Consumer._new_offset(books, TP0)  # type: ignore[arg-type]


def test_never_commits_past_an_unacknowledged_committed_offset() -> None:
    # Committed offsets are the next record to read: 100 was not processed.
    assert new_offset(_Books(100, [101, 102, 103])) is None
    assert new_offset(_Books(100, [100, 101, 102, 104])) == 103
    assert new_offset(_Books(None, [5, 6])) == 7


def test_the_unpatched_faust_commits_past_it() -> None:
    # Why the patch exists (faust-streaming #606): this is what 0.15.3 returns.
    assert faustfix._original_new_offset(_Books(100, [101, 102, 103]), TP0) == 104  # type: ignore[arg-type]


def test_apparent_gaps_are_ignored() -> None:
    faustfix.apply()
    books: Any = _Books(100, [])
    asyncio.run(Consumer._add_gap(books, TP0, 101, 150))
    assert not books._gap[TP0]


def test_a_stalled_partition_is_reported_once_it_stays_stalled() -> None:
    books: Any = _Books(100, [140, 141])
    books._read_offset[TP0] = 141
    watch = faustfix.StallWatch(after_s=15)
    assert watch.check(books, {TP0}, set(), now=0.0) == []
    assert watch.check(books, {TP0}, set(), now=10.0) == []
    assert watch.check(books, {TP0}, {TP0}, now=16.0) == []  # being processed: not stalled
    assert watch.check(books, {TP0}, set(), now=17.0) == []
    assert watch.check(books, {TP0}, set(), now=33.0) == [(TP0, 100)]
    books._committed_offset[TP0] = 142  # progress
    books._acked[TP0] = []
    assert watch.check(books, {TP0}, set(), now=60.0) == []
    assert watch.check(books, {TP0}, set(), now=90.0) == []


def test_right_after_a_seek_the_read_offset_is_the_committed_one() -> None:
    books: Any = _Books(100, [])
    books._read_offset[TP0] = 100  # Faust's perform_seek: next offset to read
    watch = faustfix.StallWatch(after_s=1)
    assert watch.check(books, {TP0}, set(), now=0.0) == []
    assert watch.check(books, {TP0}, set(), now=50.0) == []


class _Msg:
    def __init__(self, offset: int, partition: int = 0) -> None:
        self.tp = TP("flk.wal", partition)
        self.offset = offset
        self.acked = False


class _Event:
    def __init__(self, offset: int, partition: int = 0) -> None:
        self.message = _Msg(offset, partition)


def test_records_past_a_gap_are_held_back_until_read_in_order() -> None:
    order = faustfix.InOrder()
    committed = {TP0: 10, TP("flk.wal", 1): 3}
    todo, done, held, seek = order.sort([_Event(10), _Event(11), _Event(14), _Event(15),
                                         _Event(3, partition=1)], committed)
    assert [e.message.offset for e in todo] == [10, 11, 3]
    assert [e.message.offset for e in held] == [14, 15] and seek == {TP0: 12}
    # After the seek the partition is read again from 12; 10 and 11 come again too.
    todo, done, held, seek = order.sort([_Event(10), _Event(11), _Event(12), _Event(13),
                                         _Event(14)], committed)
    assert [e.message.offset for e in done] == [10, 11]
    assert [e.message.offset for e in todo] == [12, 13, 14] and not held and not seek
    order.reset({TP0})
    todo, *_ = order.sort([_Event(40)], {TP0: 40})
    assert [e.message.offset for e in todo] == [40]


def test_a_rewound_partition_processes_what_it_reads_again() -> None:
    """The stall watch seeks a partition back to its committed offset. Records from there on
    that were sorted for processing but never acknowledged must be processed when they come
    again, not acknowledged as already done (that acknowledged records no one decided: 26
    acknowledged requests lost in a scale-and-kill run)."""
    order = faustfix.InOrder()
    committed = {TP0: 100}
    todo, *_ = order.sort([_Event(100), _Event(101), _Event(102)], committed)
    assert [e.message.offset for e in todo] == [100, 101, 102]  # then never acknowledged
    order.rewind(TP0, 100)
    todo, done, held, seek = order.sort([_Event(100), _Event(101), _Event(102), _Event(103)],
                                        committed)
    assert [e.message.offset for e in todo] == [100, 101, 102, 103]
    assert not done and not held and not seek


def test_a_partition_whose_next_offset_is_unknown_is_not_sorted_from_its_first_record() -> None:
    """Faust keeps no committed offset for a partition never committed (or committed at 0, or
    between a revocation and its seek). A record prefetched before a rebalance that arrives
    first must not be taken for the start: the records below it would then be acknowledged,
    undecided, as already processed."""
    order = faustfix.InOrder()
    committed: dict[TP, int | None] = {TP0: None}
    stale = [_Event(40), _Event(41)]
    assert order.unknown(stale, committed) == {TP0}
    try:
        order.sort(stale, committed)
    except LookupError:
        pass
    else:
        raise AssertionError("sorted a partition whose next offset is unknown")

    asked: list[TP] = []

    async def never_committed(tp: TP) -> int | None:
        asked.append(tp)
        return None

    async def earliest(tp: TP) -> int:
        return 0

    asyncio.run(faustfix.learn_positions(order, {TP0}, never_committed, earliest))
    assert asked == [TP0] and not order.unknown(stale, committed)
    todo, done, held, seek = order.sort(stale, committed)
    assert not todo and not done and [e.message.offset for e in held] == [40, 41]
    assert seek == {TP0: 0}
    todo, done, held, seek = order.sort([_Event(i) for i in range(42)], committed)
    assert [e.message.offset for e in todo] == list(range(42)) and not done

    async def committed_at(tp: TP) -> int | None:
        return 17

    fresh = faustfix.InOrder()
    asyncio.run(faustfix.learn_positions(fresh, {TP0}, committed_at, earliest))
    todo, done, held, seek = fresh.sort([_Event(16), _Event(17)], committed)
    assert [e.message.offset for e in done] == [16] and [e.message.offset for e in todo] == [17]


def test_a_forgotten_record_is_not_acknowledged() -> None:
    consumer: Any = type("C", (), {})()
    msg = _Msg(5)
    consumer._unacked_messages = {msg}
    faustfix.forget(consumer, msg)
    assert msg.acked and not consumer._unacked_messages


def test_the_lean_monitor_keeps_the_inbound_time_faust_checks() -> None:
    """Faust's consumer logs "Stream has not started processing" for any partition with
    records behind it and no inbound time: the lean monitor must keep that one figure."""
    import time

    from streams.app import _LeanMonitor

    monitor = _LeanMonitor()
    before = time.monotonic()
    monitor.on_stream_event_in(TP0, 7, object(), object())
    assert monitor.stream_inbound_time[TP0] >= before
    assert monitor.events_total == 0  # the per-record counters stay off


def _filter_after_reopen(tmp_path: Any, open_db: Any) -> str:
    """The filter policy RocksDB records for the table's column family after a second open."""
    from streams.settings import load_settings

    settings = load_settings("eu-west", 0)
    options = RocksDBOptions(**_table_options(settings), use_rocksdict=True)
    path = tmp_path / "dedup-0.db"
    for _ in range(2):
        db = open_db(options, path)
        db[b"k"] = b"v"
        db.close()
    newest = max(path.glob("OPTIONS-*"), key=lambda p: int(p.name.split("-")[1]))
    policy = [line.strip() for line in newest.read_text().splitlines()
              if line.strip().startswith("filter_policy=")]  # fmt: skip
    return str(policy[0])


def _worker(settings: Any) -> Any:
    """A worker object without a broker: its cluster-size probe (10 s without a broker) is
    skipped, and its producer closed (it would keep dialling until the tests end)."""
    from streams import app

    probe = app._replication
    app._replication = lambda s: 1
    try:
        worker = app.DedupWorker(settings)
    finally:
        app._replication = probe
    worker.outputs.close(0)
    return worker


def _table_options(settings: Any) -> dict[str, Any]:
    store: Any = _worker(settings).table.data
    return dict(store.options)


def test_a_reopened_table_keeps_its_bloom_filter(tmp_path: Any) -> None:
    faustfix.apply()
    assert _filter_after_reopen(tmp_path, lambda o, p: o.open(p)) == "filter_policy=bloomfilter"


def test_the_unpatched_open_loses_the_filter_on_reopen(tmp_path: Any) -> None:
    # Why the patch exists: rocksdict reads an existing column family's options back from
    # the OPTIONS file, and the bloom filter does not survive that.
    def unpatched(options: Any, path: Any) -> Any:
        return faustfix._original_rocksdb_open(options, path)

    assert _filter_after_reopen(tmp_path, unpatched) == "filter_policy=nullptr"


class _ConsumerThread:
    """Stands in for Faust's consumer thread: runs what it is handed on a thread of its own
    and records which thread called the aiokafka seek."""

    def __init__(self) -> None:
        self.seek_threads: list[Any] = []

    def seek(self, tp: Any, offset: int) -> None:
        import threading

        self.seek_threads.append(threading.current_thread())

    async def call_thread(self, fun: Any, *args: Any) -> Any:
        import concurrent.futures

        with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="consumer") as pool:
            return await asyncio.wrap_future(pool.submit(fun, *args))


def test_a_reseek_runs_on_the_consumer_thread() -> None:
    """aiokafka's seek drops the partition's fetched records; from the worker's main thread it
    raced the consumer thread draining them (KeyError in Fetcher.fetched_records, seen in CI)."""
    import threading

    from streams.settings import load_settings

    worker = _worker(load_settings("eu-west", 0))
    consumer: Any = worker.app.consumer
    fake = _ConsumerThread()
    consumer._thread = fake
    worker.order.next[TP0] = 9
    asyncio.run(worker._reseek(TP0, 5))
    assert len(fake.seek_threads) == 1
    assert fake.seek_threads[0] is not threading.main_thread()
    assert consumer._read_offset[TP0] == 5
    assert worker.order.next[TP0] == 5


class _Fetcher:
    """aiokafka's `Fetcher.fetched_records` contract, on records buffered per partition: an
    empty (or no) partition set drains every partition; draining a partition consumes its
    buffer (its position moves past the records)."""

    def __init__(self, buffered: dict[TP, list[int]]) -> None:
        self.buffered = buffered
        self.asked: list[Any] = []
        self._closed = False
        self._subscriptions = type("S", (), {"fetch_context": lambda _: _Nothing()})()

    async def fetched_records(self, partitions: Any, timeout: float = 0,
                              max_records: int | None = None) -> dict[TP, list[int]]:  # fmt: skip
        self.asked.append(partitions)
        drained = {}
        for tp in list(self.buffered):
            if partitions and tp not in partitions:
                continue
            drained[tp] = self.buffered.pop(tp)
        return drained


class _Nothing:
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: Any) -> None:
        return None


STANDBY = TP("flk-dedup-eu-west-dedup-changelog", 5)


def _thread_and_consumer(buffered: dict[TP, list[int]]) -> tuple[Any, Any]:
    thread: Any = type("T", (), {})()
    thread.consumer = type("C", (), {"flow_active": True})()
    consumer: Any = type("K", (), {"_closed": False})()
    consumer._fetcher = _Fetcher(buffered)
    return thread, consumer


def test_an_emptied_partition_set_fetches_nothing() -> None:
    """Recovery pauses the active changelog partitions while the standby ones are still
    paused: the live set Faust handed the consumer thread is empty by the time it fetches.
    The standby partition's records (read from its stored offset) must stay buffered."""
    faustfix.apply()
    thread, consumer = _thread_and_consumer({STANDBY: [606823, 606824]})
    fetch = AIOKafkaConsumerThread._fetch_records
    got = asyncio.run(fetch(thread, consumer, set(), max_records=10))
    assert got == {}
    assert consumer._fetcher.buffered == {STANDBY: [606823, 606824]}


def test_the_unpatched_fetch_drains_every_partition_on_an_empty_set() -> None:
    # Why the patch exists: Faust's getmany then drops the paused partition's records.
    thread, consumer = _thread_and_consumer({STANDBY: [606823, 606824]})
    got = asyncio.run(faustfix._original_fetch_records(thread, consumer, set(), max_records=10))
    assert got == {STANDBY: [606823, 606824]}


def test_the_fetch_reads_a_snapshot_of_the_live_set() -> None:
    faustfix.apply()
    live = {TP0, STANDBY}
    thread, consumer = _thread_and_consumer({TP0: [1], STANDBY: [7]})
    asyncio.run(AIOKafkaConsumerThread._fetch_records(thread, consumer, live, max_records=10))
    live.clear()  # the main thread pauses everything after the request was made
    assert consumer._fetcher.asked == [frozenset({TP0, STANDBY})]


class _Sends:
    """Stands in for aiokafka's own fetch: records when each request went out."""

    def __init__(self) -> None:
        self.at: list[tuple[int, float]] = []

    async def __call__(self, fetcher: Any, assignment: Any, node_id: int, request: Any) -> bool:
        self.at.append((node_id, asyncio.get_running_loop().time()))
        return True


def _paced(monkeypatch: Any, interval_ms: int) -> _Sends:
    sends = _Sends()
    # apply() sets module-wide values: restored at teardown even when an assertion fails.
    monkeypatch.setattr(faustfix, "_fetch_sizes", faustfix._fetch_sizes)
    monkeypatch.setattr(faustfix, "_fetch_interval_s", faustfix._fetch_interval_s)
    faustfix.apply(1, 250, interval_ms)
    monkeypatch.setattr(faustfix, "_original_proc_fetch_request", sends)
    return sends


def test_fetches_to_one_broker_are_paced(monkeypatch: Any) -> None:
    from aiokafka.consumer.fetcher import Fetcher

    assert Fetcher._proc_fetch_request is faustfix._paced_fetch
    sends = _paced(monkeypatch, 40)
    fetcher = type("F", (), {})()

    async def three_then_another_broker() -> None:
        for _ in range(3):
            assert await Fetcher._proc_fetch_request(fetcher, None, 1, None)
        await Fetcher._proc_fetch_request(fetcher, None, 2, None)

    asyncio.run(three_then_another_broker())
    (n1, t1), (_, t2), (_, t3), (n2, t4) = sends.at
    assert (n1, n2) == (1, 2)
    assert t2 - t1 >= 0.039 and t3 - t2 >= 0.039
    assert t4 - t3 < 0.03  # another broker's fetch does not wait for this one's pace


def test_a_fetch_cancelled_while_paced_is_not_sent(monkeypatch: Any) -> None:
    from aiokafka.consumer.fetcher import Fetcher

    sends = _paced(monkeypatch, 500)
    fetcher = type("F", (), {})()

    async def cancel_the_second() -> bool:
        await Fetcher._proc_fetch_request(fetcher, None, 1, None)
        second = asyncio.ensure_future(Fetcher._proc_fetch_request(fetcher, None, 1, None))
        await asyncio.sleep(0.05)
        second.cancel()
        return bool(await second)

    assert asyncio.run(cancel_the_second()) is False
    assert len(sends.at) == 1
