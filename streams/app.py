"""The Faust application of a region's dedup stage (DESIGN "One hop to the decision").

Faust owns what it is good at: the consumer group `flk-dedup-<region>` over `flk.wal` and every
mirrored `<region>.flk.wal` (co-subscribed, same partition count, so partition *p* of each is
assigned to the same worker together with partition *p* of the table), the RocksDB table with
its changelog topic, recovery from the changelog, and standby replicas on other workers.

The per-batch path is ours (streams/dedup.py), for speed and for an explicit durability order:

    take a batch (no ack) → verify + decide against the table (read-only)
      → send changelog entries, outcomes, rejections, audit events → flush, and at the
        same time write the outcome store (PostgreSQL) → send the replies to the gateways
      → write the entries to RocksDB, record the changelog offsets
      → acknowledge the batch's source records

The store write overlaps the flush (both wait on I/O: together they were most of a batch's
time): a batch whose delivery fails is decided again from the same table state, so the
retry writes the same rows. Replies go out only after the store write (at the cost of that
write's few milliseconds of latency) so that a request a gateway answered from its reply is
always readable from the store: the gateway keeps no marker of such answers (one Redis write
per request less).

A crash anywhere re-processes the whole batch: the entries are not yet in RocksDB, the
outputs are sent again with the same bytes. Table entries go to the changelog through the
stage's producer with the source record's partition, exactly where Faust's own `table[k] = v`
would put them, and Faust's recovery and standbys read them back unchanged. An unexpected
error stops the process without acknowledging (fail-stop): a crash loop is visible, a skipped
batch would be silent loss.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, cast

import faust
from faust.sensors import Monitor
from faust.transport.drivers.aiokafka import ensure_aiokafka_TP
from faust.types import TP, EventT, StreamT
from faust.web import Request, Response, View
from prometheus_client import generate_latest

from streams import faustfix
from streams.dedup import DedupStage, Out
from streams.gather import MirrorGather
from streams.metrics import StreamMetrics
from streams.outputs import DeliveryError, Outputs
from streams.settings import Settings
from streams.sink import OutcomeSink
from streams.sweeper import Sweeper
from streams.verify import WalMessage
from topics.catalogue import WAL, WAL_PARTITIONS

T = TypeVar("T")

log = logging.getLogger("flk.streams")

TABLE = "dedup"
OFFSET_KEY = b"__faust\x00offset__"  # Faust keeps the changelog offset in each partition's store


class _RawSchema(faust.Schema):  # type: ignore[type-arg]
    """WAL records stay raw bytes until the verify stage decodes headers and body itself, so
    the per-record trip through Faust's serializer registry is skipped (about 5 % of a
    worker's CPU per record)."""

    def compile(
        self, app: Any, *, on_key_decode_error: Any = None, on_value_decode_error: Any = None,
        default_propagate: bool = False,
    ) -> Any:
        create_event = app.create_event

        async def decode(message: Any, *, propagate: bool = default_propagate) -> Any:
            return create_event(message.key, message.value, message.headers, message)

        return decode


class _LeanMonitor(Monitor):
    """Faust's Monitor without its per-record bookkeeping (events in/out, end offsets): the
    stage keeps its own metrics (streams/metrics.py), and those hooks cost several µs per
    record on the hot path. Only the inbound time per partition is kept: Faust's consumer
    health check reads it, and without it logs "Stream has not started processing" errors
    for busy partitions every few minutes."""

    def on_message_in(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def on_stream_event_in(self, tp: Any, offset: int, stream: Any, event: Any) -> None:
        self.stream_inbound_time[tp] = time.monotonic()
        return None

    def on_stream_event_out(self, tp: Any, offset: int, stream: Any, event: Any,
                            state: Any = None) -> None:  # fmt: skip
        return None

    def on_message_out(self, tp: Any, offset: int, message: Any) -> None:
        return None

    def track_tp_end_offset(self, tp: Any, offset: int) -> None:
        return None


class _RocksView:
    """Read-only `TableView` over the table's per-partition RocksDB stores."""

    def __init__(self, table: Any) -> None:
        self._store: Any = table.data

    def db(self, partition: int) -> Any:
        return self._store._db_for_partition(partition)

    def get(self, partition: int, key: bytes) -> bytes | None:
        value: bytes | None = self.db(partition).get(key)
        return value

    def get_many(self, partition: int, keys: list[bytes]) -> list[bytes | None]:
        values: list[bytes | None] = self.db(partition).get(keys)  # RocksDB MultiGet
        return values

    def scan(self, partition: int) -> Any:
        db = self.db(partition)

        def items(start: bytes | None) -> Iterator[tuple[bytes, bytes]]:
            it = db.iter()
            if start is None:
                it.seek_to_first()
            else:
                it.seek(start)
            while it.valid():
                key = it.key()
                if key != OFFSET_KEY:
                    yield key, it.value()
                it.next()

        return items


def _replication(s: Settings) -> int:
    from infra import kafka
    from topics.apply import replication

    try:
        return replication(kafka.admin(s.region))[0]
    except Exception as exc:  # the broker is not reachable yet: Faust will wait for it anyway
        log.warning("could not read the cluster size (%s); changelog replication 1", exc)
        return 1


class DedupWorker:
    def __init__(self, s: Settings) -> None:
        self.s = s
        faustfix.apply(s.fetch_min_bytes, s.fetch_max_wait_ms, s.fetch_interval_ms)
        self.stalls = faustfix.StallWatch()
        self.order = faustfix.InOrder()
        self.gather = MirrorGather(WAL, s.mirror_within_s, s.batch_max)
        self._inflight: set[TP] = set()
        self.metrics = StreamMetrics(s.region.name, s.index)
        self.stage = DedupStage(s.region.name, s.home)
        self.sweeper = Sweeper(s.sweep_grace_ms, s.sweep_step)
        self._lock = asyncio.Lock()  # one batch or one sweep at a time
        self.app = faust.App(
            s.app_id,
            broker=f"kafka://{s.region.kafka_bootstrap}",
            store="rocksdb://",
            datadir=str(s.data_dir),
            autodiscover=False,
            key_serializer="raw",
            value_serializer="raw",
            topic_partitions=WAL_PARTITIONS,
            # The changelog is created by Faust: replicated like the catalogue's topics.
            topic_replication_factor=_replication(s),
            table_standby_replicas=s.standby_replicas,
            consumer_auto_offset_reset="earliest",
            processing_guarantee="at_least_once",
            broker_max_poll_records=2000,
            stream_buffer_maxsize=8192,
            broker_commit_interval=1.0,
            # A worker killed outright holds its partitions until the group coordinator gives
            # up on it; a short session bounds that stall. Static membership lets a worker
            # restarted under the same index take its partitions back without a rebalance.
            broker_session_timeout=s.session_timeout_s,
            broker_heartbeat_interval=max(1.0, s.session_timeout_s / 4),
            consumer_group_instance_id=f"{s.app_id}-worker-{s.index}",
            web_enabled=True,
            web_port=s.port,
            web_bind=s.host,
            web_host=s.host,
            web_in_thread=False,
            Monitor=_LeanMonitor,
        )
        self.source = self.app.topic(*s.source_topics, schema=_RawSchema())
        self.table = self.app.Table(
            TABLE, partitions=WAL_PARTITIONS, key_type=bytes, value_type=bytes,
            options={
                "block_cache_size": s.rocksdb_cache_bytes,
                "block_cache_compressed_size": 0,
                "write_buffer_size": s.rocksdb_write_buffer_bytes,
                "max_write_buffer_number": s.rocksdb_write_buffers,
                "max_open_files": s.rocksdb_max_open_files,
                "target_file_size_base": 16 * 1024 * 1024,
                # Nearly every lookup of unique-key ingest is a miss: 10 bits a key (~1 % false
                # positives per file) instead of Faust's 3 (~25 %) keeps a miss from reading a
                # data block of every level as the table grows (~12 MiB per 10M keys).
                "bloom_filter_size": 10,
            },
        )  # fmt: skip
        self.view = _RocksView(self.table)
        self.outputs = Outputs(s.region.kafka_bootstrap, f"{s.app_id}-{s.index}",
                               s.delivery_timeout_ms)  # fmt: skip
        self.sink = OutcomeSink(s.postgres_dsn, on_retry=self.metrics.store_retries.inc)
        self.assigned_once = False
        self.started_at = time.monotonic()
        self.last_recovery_s: float | None = None
        self._recovery_started: float | None = None
        self._wire()

    @property
    def changelog_topic(self) -> str:
        name: str = self.table.changelog_topic.get_topic_name()
        return name

    # --- wiring -------------------------------------------------------------------------

    def _wire(self) -> None:
        app = self.app
        app.agent(self.source, name="dedup")(self._agent)
        app.timer(5.0, name="flk-lag-monitor")(self._monitor)
        app.timer(self.s.sweep_interval_s, name="flk-window-sweeper")(self._sweep)
        signals: Any = app  # Faust's signal types do not describe bound async methods
        signals.on_partitions_assigned.connect(self._on_assigned)
        signals.on_partitions_revoked.connect(self._on_revoked)
        signals.on_before_shutdown.connect(self._on_shutdown)
        self.table.on_recover(self._on_recovered)
        worker = self

        class Ready(View):
            async def get(self, request: Request) -> Response:
                facts = worker.readiness()
                return self.json(facts, status=200 if facts["ready"] else 503)

        class Metrics(View):
            async def get(self, request: Request) -> Response:
                return self.bytes(generate_latest(worker.metrics.registry),
                                  content_type="text/plain; version=0.0.4")  # fmt: skip

        class Status(View):
            async def get(self, request: Request) -> Response:
                return self.json(worker.status())

        app.page("/readyz")(Ready)
        app.page("/metrics")(Metrics)
        app.page("/status")(Status)
        self._count_changelog_applied()

    def _count_changelog_applied(self) -> None:
        """Count changelog records Faust applies to this worker's stores: to an active
        partition during recovery (what a restart or a promotion cost) or to a standby."""
        store: Any = self.table.data
        original = store.apply_changelog_batch
        recovery = self._recovery

        def counting(batch: Iterable[EventT[Any]], *args: Any, **kwargs: Any) -> Any:
            events = list(batch)
            active = sum(1 for e in events if e.message.tp in recovery.active_tps)
            self.metrics.replayed.inc(active)
            self.metrics.standby_applied.inc(len(events) - active)
            return original(events, *args, **kwargs)

        store.apply_changelog_batch = counting

    async def _on_assigned(self, sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        self.assigned_once = True
        self.order.reset(assigned)
        self._recovery_started = time.monotonic()
        self.metrics.rebalances.inc()
        actives = self.app.assignor.assigned_actives()
        standbys = self.app.assignor.assigned_standbys()
        self.metrics.set_assigned(
            len({tp.partition for tp in actives if tp.topic == self.changelog_topic}),
            len({tp.partition for tp in standbys if tp.topic == self.changelog_topic}),
        )

    async def _on_recovered(self) -> None:
        if self._recovery_started is not None:
            self.last_recovery_s = round(time.monotonic() - self._recovery_started, 3)

    async def _on_revoked(self, sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        # Faust waits for every delivered record to be acknowledged before it revokes, and
        # held records are decided within the hold; this only guards the case it does not.
        for event in self.gather.drop(revoked):
            faustfix.forget(self.app.consumer, event.message)
        self.order.reset(revoked)
        for tp in revoked:
            self.sweeper.forget(tp.partition)

    async def _on_shutdown(self, sender: Any, **kwargs: Any) -> None:
        self.sink.close()

    # --- health -------------------------------------------------------------------------

    @property
    def _recovery(self) -> Any:
        return cast(Any, self.app.tables).recovery

    def readiness(self) -> dict[str, Any]:
        recovery = self._recovery
        recovered = recovery.completed.is_set() and not recovery.in_recovery
        ready = self.assigned_once and recovered and not self.app.rebalancing
        return {"ready": ready, "assigned": self.assigned_once, "recovered": recovered,
                "rebalancing": bool(self.app.rebalancing)}  # fmt: skip

    def status(self) -> dict[str, Any]:
        actives = sorted(self._active_partitions())
        standby_tps = [tp for tp in self.app.assignor.assigned_standbys()
                       if tp.topic == self.changelog_topic]  # fmt: skip
        standbys = sorted(tp.partition for tp in standby_tps)
        m = self.metrics
        return {
            **self.readiness(),
            "region": self.s.region.name,
            "index": self.s.index,
            "pid": os.getpid(),
            "active_partitions": actives,
            "standby_partitions": standbys,
            "rebalances": m.rebalances._value.get(),
            "changelog_replayed": m.replayed._value.get(),
            "changelog_standby_applied": m.standby_applied._value.get(),
            "last_recovery_seconds": self.last_recovery_s,
            "standby_lag": self._standby_lag(standby_tps),
            "processed": m.counters["processed"]._value.get(),
            "uptime_seconds": round(time.monotonic() - self.started_at, 3),
        }

    def _standby_lag(self, standbys: list[TP]) -> int | None:
        """Changelog records the standby partitions have not applied yet (what a promotion
        would replay now); None when not known (no standbys, a partition moving)."""
        store: Any = self.table.data
        consumer: Any = self.app.consumer
        lag = 0
        if not standbys:
            return None
        try:
            for tp in standbys:
                high = consumer.highwater(tp)
                done = store.persisted_offset(tp)
                if high is None:
                    return None
                lag += max(0, high - 1 - (done if done is not None else -1))
        except Exception:  # a rebalance in progress: the figure is not meaningful now
            return None
        return lag

    # --- the stage ----------------------------------------------------------------------

    async def _agent(self, stream: StreamT[Any]) -> None:
        batches = cast(Any, stream).noack_take(self.s.batch_max, within=self.s.batch_within_s)
        taken = batches.__aiter__()
        gather = self.gather
        upcoming: asyncio.Future[Any] | None = None
        try:
            while True:
                if upcoming is None:
                    upcoming = asyncio.ensure_future(taken.__anext__())
                due = gather.remaining(time.monotonic())
                if due is not None:
                    # Mirrored records are held (streams/gather.py): decide them when due
                    # even if nothing else arrives meanwhile.
                    done, _ = await asyncio.wait({upcoming}, timeout=due)
                    if not done:
                        await self._run(stream, gather.take())
                        continue
                try:
                    batch = await upcoming
                except StopAsyncIteration:
                    return
                finally:
                    upcoming = None
                events = gather.add(await self._in_order(stream, batch), time.monotonic())
                if events:
                    await self._run(stream, events)
        finally:
            if upcoming is not None:
                upcoming.cancel()

    async def _in_order(self, stream: StreamT[Any], batch: list[EventT[Any]]
                        ) -> list[EventT[Any]]:  # fmt: skip
        """The events of `batch` to process, in order (streams/faustfix.py); records already
        processed are acknowledged, records past a gap are read again after a seek."""
        consumer: Any = self.app.consumer
        unknown = self.order.unknown(batch, consumer._committed_offset)
        if unknown:
            await faustfix.learn_positions(self.order, unknown, self._committed,
                                           self._earliest)  # fmt: skip
            log.info("next offsets learned from the broker: %s", ", ".join(
                f"{tp.topic}[{tp.partition}]={self.order.next[tp]}" for tp in sorted(unknown)))
        events, done, held, seek = self.order.sort(batch, consumer._committed_offset)
        for event in held:
            faustfix.forget(consumer, event.message)
        for tp, offset in seek.items():
            # Offsets are dense unless retention deleted records nobody had read yet.
            earliest = (await consumer.earliest_offsets(tp)).get(tp, 0)
            if earliest > offset:
                log.error("%s[%d]: records %d..%d expired before they were processed",
                          tp.topic, tp.partition, offset, earliest - 1)
                offset = earliest
            log.warning("%s[%d]: records before offset %d were not delivered; reading "
                        "again from %d (streams/faustfix.py)", tp.topic, tp.partition,
                        min(e.message.offset for e in held if e.message.tp == tp), offset)
            await self._reseek(tp, offset)
        for event in done:
            await stream.ack(event)
        return events

    async def _run(self, stream: StreamT[Any], events: list[EventT[Any]]) -> None:
        """Decide `events`, then acknowledge them; any unexpected error stops the worker
        without acknowledging anything (fail-stop)."""
        try:
            await self._handle(events)
        except asyncio.CancelledError:
            raise  # shutdown: the batch stays unacknowledged
        except BaseException:
            log.critical("dedup stage failed; stopping without acknowledging the batch:\n%s",
                         traceback.format_exc())  # fmt: skip
            logging.shutdown()
            os._exit(70)
        for event in events:
            await stream.ack(event)

    async def _committed(self, tp: TP) -> int | None:
        """The group's committed offset of `tp` on the broker (None: never committed)."""
        thread: Any = cast(Any, self.app.consumer)._thread
        kafka = thread._ensure_consumer()
        offset: int | None = await thread.call_thread(kafka.committed, ensure_aiokafka_TP(tp))
        return offset

    async def _earliest(self, tp: TP) -> int:
        return int((await self.app.consumer.earliest_offsets(tp)).get(tp, 0))

    async def _reseek(self, tp: TP, offset: int) -> None:
        """Read a source partition again from `offset`, expecting it next (streams/faustfix.py:
        every seek rewinds the in-order check, or records read again would count as done)."""
        self.metrics.reseeks.inc()
        self.order.rewind(tp, offset)
        await self.app.consumer.seek(tp, offset)  # on the consumer thread (streams/faustfix.py)

    async def _handle(self, events: list[EventT[Any]]) -> None:
        async with self._lock:
            await self._decide(events)

    async def _decide(self, events: list[EventT[Any]]) -> None:
        t0 = time.perf_counter()
        loop = asyncio.get_running_loop()
        msgs = [WalMessage(m.topic, m.partition, m.offset, m.key, m.value or b"",
                           cast(Any, m.headers)) for m in (e.message for e in events)]
        self._inflight = {TP(m.topic, m.partition) for m in msgs}
        delay = 0.2
        stage = self.metrics.stage
        timeout = self.s.delivery_timeout_ms / 1000 + 5
        while True:
            t_decide = time.perf_counter()
            res = self.stage.process(msgs, self.view)
            topic = self.changelog_topic
            self.outputs.send([Out(topic, p, k, v) for (p, k), v in res.writes.items()])
            self.outputs.send(res.outputs)
            t_send = time.perf_counter()
            stage("decide", t_send - t_decide)
            # The outcome store is written while the broker acknowledges the outputs: a
            # batch whose delivery fails is decided again from the same table state, so the
            # rows written now are the rows its retry writes (an upsert of the same values).
            deliver = loop.run_in_executor(None, self._timed, "deliver", t_send,
                                           self.outputs.flush, timeout)  # fmt: skip
            written = loop.run_in_executor(None, self._timed, "store", t_send,
                                           self.sink.write, res)  # fmt: skip
            delivered, stored = await asyncio.gather(deliver, written, return_exceptions=True)
            if isinstance(stored, BaseException):
                raise stored
            if not isinstance(delivered, BaseException):
                offsets = delivered
                break
            if not isinstance(delivered, DeliveryError):
                raise delivered
            # Nothing of this batch is in RocksDB yet: decide it again from the same state
            # and send it again (the records that did arrive arrive twice, identically).
            self.metrics.delivery_retries.inc()
            log.warning("batch of %d not delivered (%s); retrying in %.1f s",
                        len(msgs), delivered, delay)
            await asyncio.sleep(delay)
            delay = min(5.0, delay * 2)
        t_commit = time.perf_counter()
        self.outputs.send_replies(res.replies)
        self._commit(res.writes, [], offsets)
        stage("commit", time.perf_counter() - t_commit)
        self.sweeper.advance(res.event_time)
        self._inflight = set()
        self.metrics.observe(res, int(time.time() * 1000), time.perf_counter() - t0, len(msgs))

    def _timed(self, name: str, since: float, step: Callable[..., T], *args: Any) -> T:
        try:
            return step(*args)
        finally:
            self.metrics.stage(name, time.perf_counter() - since)

    async def _sweep(self) -> None:
        """Delete expired entries of the active partitions (streams/sweeper.py): tombstones to
        the changelog first, then the local store, like any other write of the table."""
        if self.app.rebalancing or not self.assigned_once:
            return
        topic = self.changelog_topic
        # One partition at a time under the lock, so batches run between them.
        for p in sorted(self._active_partitions()):
            async with self._lock:
                if self.app.rebalancing or p not in self._active_partitions():
                    return
                t0 = time.perf_counter()
                try:
                    if not await self._sweep_partition(topic, p):
                        return
                finally:
                    self.metrics.sweep_hold.observe(time.perf_counter() - t0)

    async def _sweep_partition(self, topic: str, p: int) -> bool:
        """One sweep step of partition `p`, under the stage's lock; False: stop this round."""
        examined = self.sweeper.examined
        keys = self.sweeper.expired(p, self.view.scan(p))
        self.metrics.sweep_examined.inc(self.sweeper.examined - examined)
        if not keys:
            return True
        self.outputs.send([Out(topic, p, k, None) for k in keys])
        try:
            offsets = await asyncio.get_running_loop().run_in_executor(
                None, self.outputs.flush, self.s.delivery_timeout_ms / 1000 + 5)
        except DeliveryError as exc:
            log.warning("sweep of %d entries not delivered (%s); next time", len(keys), exc)
            return False
        self._commit({}, [(p, k) for k in keys], offsets)
        self.metrics.swept.inc(len(keys))
        return True

    def _active_partitions(self) -> set[int]:
        """The table partitions this worker holds as the active copy."""
        topic = self.changelog_topic
        return {tp.partition for tp in self.app.assignor.assigned_actives() if tp.topic == topic}

    def _commit(self, writes: dict[tuple[int, bytes], bytes], deletes: list[tuple[int, bytes]],
                offsets: dict[tuple[str, int], int]) -> None:  # fmt: skip
        """Apply delivered table changes to RocksDB and record the changelog offsets."""
        import rocksdict

        batches: dict[int, Any] = {}
        for (p, key), value in writes.items():
            batches.setdefault(p, rocksdict.WriteBatch(raw_mode=True)).put(key, value)
        for p, key in deletes:
            batches.setdefault(p, rocksdict.WriteBatch(raw_mode=True)).delete(key)
        for p, wb in batches.items():
            self.view.db(p).write(wb)
        self.sweeper.wrote((p, value) for (p, _), value in writes.items())
        store: Any = self.table.data
        topic = self.changelog_topic
        for (t, p), offset in offsets.items():
            if t == topic:
                store.set_persisted_offset(TP(t, p), offset)

    # --- monitoring ---------------------------------------------------------------------

    async def _monitor(self) -> None:
        consumer = self.app.consumer
        sources = set(self.s.source_topics)
        mine = {tp for tp in consumer.assignment() if tp.topic in sources}
        for tp, offset in self.stalls.check(consumer, mine, self._inflight):
            # streams/faustfix.py: records dropped by Faust after a rebalance; read them again.
            log.warning("%s[%d]: no progress past committed offset %d although read beyond "
                        "it; seeking back to it", tp.topic, tp.partition, offset)
            await self._reseek(tp, offset)
        lags = []
        committed: Any = cast(Any, consumer)._committed_offset
        for tp in mine:
            try:
                high = consumer.highwater(tp)
                done = committed.get(tp)
                if done is None:
                    done = await consumer.position(tp)
            except Exception as exc:  # a partition being revoked: skip it this round
                log.debug("no lag for %s: %s", tp, exc)
                continue
            if done is not None and high is not None:
                lags.append((tp.topic, tp.partition, max(0, high - done)))
        self.metrics.set_lag(lags)
