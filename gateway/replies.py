"""The reader of this process's own partition of `flk.replies` (DESIGN "Gateway replies").

Gateway process k reads partition k with a plain `assign()` from the end: no consumer group,
no rebalance, no commits. A request registers its waiter BEFORE its WAL write (the reply may
arrive before the handler starts waiting); a reply nobody waits for (stale: the request has
been answered pending or the process restarted; foreign: another process's request) is dropped.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_END, Consumer, KafkaException, TopicPartition

from schemas.codec import CodecError, codec
from topics.catalogue import REPLIES

log = logging.getLogger("flk.gateway.replies")

Reply = dict[str, Any]


class ReplyReader:
    def __init__(self, bootstrap: str, partition: int,
                 on_drop: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self.partition = partition
        self._bootstrap = bootstrap
        self._on_drop = on_drop
        self._codec = codec("reply")
        self._waiters: dict[str, tuple[str, asyncio.Future[Reply]]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.assigned = threading.Event()

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._thread = threading.Thread(target=self._run, name="replies", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(3.0)

    # --- called on the event loop -------------------------------------------------------

    def expect(self, request_id: str, tenant: str) -> asyncio.Future[Reply]:
        assert self._loop is not None
        future: asyncio.Future[Reply] = self._loop.create_future()
        self._waiters[request_id] = (tenant, future)
        return future

    def forget(self, request_id: str) -> None:
        entry = self._waiters.pop(request_id, None)
        if entry is not None and not entry[1].done():
            entry[1].cancel()

    def _deliver(self, reply: Reply) -> None:
        entry = self._waiters.pop(str(reply.get("request_id")), None)
        if entry is None:
            self._drop("stale")
            return
        tenant, future = entry
        if reply.get("tenant") != tenant:  # same id, other tenant: not this request's answer
            self._waiters[str(reply.get("request_id"))] = entry
            self._drop("foreign")
            return
        if not future.done():
            future.set_result(reply)

    def _deliver_all(self, replies: list[Reply | None]) -> None:
        for reply in replies:
            if reply is None:
                self._drop("undecodable")
            else:
                self._deliver(reply)

    def _drop(self, why: str) -> None:
        if self._on_drop is not None:
            self._on_drop(why)

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    # --- the consumer thread --------------------------------------------------------------

    def _consumer(self) -> Consumer:
        return Consumer({
            "bootstrap.servers": self._bootstrap,
            # librdkafka wants a group id even for assign(); nothing joins or commits.
            "group.id": f"flk-gateway-replies-{self.partition}-unused",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            # The broker answers a fetch as soon as one byte is there (fetch.min.bytes), so a
            # long wait costs no latency; a short one made each idle reader a stream of
            # empty fetches (4 readers at 5 ms were ~20 % of a broker's CPU with no traffic).
            "fetch.wait.max.ms": 200,
            "fetch.min.bytes": 1,
            "socket.connection.setup.timeout.ms": 1000,
        })  # fmt: skip

    def _run(self) -> None:
        assert self._loop is not None
        consumer: Consumer | None = None
        while not self._stop.is_set():
            try:
                if consumer is None:
                    consumer = self._consumer()
                    tp = TopicPartition(REPLIES, self.partition)
                    # An explicit offset (the current end) rather than OFFSET_END, so that
                    # "assigned" means: every reply written from now on will be seen.
                    _low, high = consumer.get_watermark_offsets(tp, timeout=2.0)
                    tp.offset = high if high >= 0 else OFFSET_END
                    consumer.assign([tp])
                    self.assigned.set()
                # consume(n, timeout) waits for n records OR the timeout, so alone it would
                # hold every reply for the whole timeout at low rates: wait for the first
                # record with poll(), then take whatever else is already there.
                first = consumer.poll(0.1)
                if first is None:
                    continue
                replies: list[Reply | None] = []
                for msg in [first, *consumer.consume(499, timeout=0)]:
                    if msg.error() is not None:
                        log.warning("flk.replies: %s", msg.error())
                        continue
                    value = msg.value()
                    try:
                        reply = self._codec.decode(value) if value is not None else None
                    except (CodecError, ValueError, EOFError):
                        reply = None
                    replies.append(reply if isinstance(reply, dict) else None)
                if replies:  # one wake-up of the event loop per fetch, not per reply
                    self._loop.call_soon_threadsafe(self._deliver_all, replies)
            except KafkaException as exc:
                log.warning("flk.replies reader: %s; retrying", exc)
                self.assigned.clear()
                if consumer is not None:
                    consumer.close()
                consumer = None
                self._stop.wait(1.0)
        if consumer is not None:
            consumer.close()
