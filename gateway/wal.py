"""The WAL writer: raw request bytes to `flk.wal`, acknowledged by the in-sync replicas before
any verdict (SPEC §5 "WAL before verdict").

confluent-kafka's producer is thread-based: a poll thread serves delivery callbacks and hands
each result to the asyncio future of the request that produced it. `delivery.timeout.ms` is
kept below the request budget so a dead broker gives a timely 503 rather than a hung request
(librdkafka's default is 300 s). A fatal error (e.g. the idempotent producer's sequence state
is lost) leaves a producer unusable: it is replaced by a new one.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from topics.catalogue import WAL
from topics.wal import PARTITIONER

log = logging.getLogger("flk.gateway.wal")


class WalUnavailable(Exception):
    """The record was not acknowledged; the client gets 503 + Retry-After."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Ack:
    partition: int
    offset: int
    seconds: float


_Settled = tuple[asyncio.AbstractEventLoop, Callable[[KafkaError | None, Message | None], None],
                 KafkaError | None, Message | None]


def _settle_all(settled: list[_Settled]) -> None:
    for _loop, settle, err, msg in settled:
        settle(err, msg)


def producer_config(bootstrap: str, timeout_ms: int, linger_ms: float) -> dict[str, Any]:
    return {
        "bootstrap.servers": bootstrap,
        "client.id": "flk-gateway",
        "acks": "all",
        "enable.idempotence": True,
        "compression.type": "lz4",
        "linger.ms": linger_ms,
        "partitioner": PARTITIONER,
        "delivery.timeout.ms": timeout_ms,
        "request.timeout.ms": min(timeout_ms, 30_000),
        "socket.connection.setup.timeout.ms": 1000,
        "reconnect.backoff.max.ms": 500,
        "message.max.bytes": 2 * 1024 * 1024,
    }


class WalWriter:
    def __init__(self, bootstrap: str, timeout_ms: int, linger_ms: float = 2.0,
                 on_fatal: Callable[[str], None] | None = None) -> None:  # fmt: skip
        self._config = producer_config(bootstrap, timeout_ms, linger_ms)
        self._on_fatal = on_fatal
        self._lock = threading.Lock()
        self._fatal: str | None = None
        # Filled by delivery callbacks on the poll thread, handed to the loop after each poll.
        self._settled: list[_Settled] = []
        self._producer = self._build()
        self.rebuilds = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name="wal-poll", daemon=True)
        self._thread.start()

    def _build(self) -> Producer:
        return Producer({**self._config, "error_cb": self._error})

    def _error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = err.str()
            log.error("fatal WAL producer error, the producer will be rebuilt: %s", err.str())
        else:
            log.warning("WAL producer: %s", err.str())

    def _poll_loop(self) -> None:
        while not self._stop.is_set():
            producer = self._producer
            producer.poll(0.05)
            self._hand_over()
            if self._fatal is not None:
                self._rebuild()

    def _hand_over(self) -> None:
        """One wake-up of the event loop for every delivery report a poll served (a broker
        acknowledges a whole produce request at once), not one per record."""
        if not self._settled:
            return
        settled, self._settled = self._settled, []
        by_loop: dict[asyncio.AbstractEventLoop, list[_Settled]] = {}
        for entry in settled:
            by_loop.setdefault(entry[0], []).append(entry)
        for loop, entries in by_loop.items():
            try:
                loop.call_soon_threadsafe(_settle_all, entries)
            except RuntimeError:  # that loop is closed: nobody waits for these any more
                pass

    def _rebuild(self) -> None:
        with self._lock:
            reason, self._fatal = self._fatal, None
            old = self._producer
            self._producer = self._build()
            self.rebuilds += 1
        if self._on_fatal is not None and reason is not None:
            self._on_fatal(reason)
        old.flush(0)  # pending deliveries on the old producer fail; their requests get 503

    async def append(self, key: bytes, value: bytes,
                     headers: list[tuple[str, str | bytes | None]]) -> Ack:
        """Produce one record; returns once the broker acknowledged it (acks=all), else raises
        WalUnavailable."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Ack] = loop.create_future()
        t0 = time.perf_counter()

        def settle(err: KafkaError | None, msg: Message | None) -> None:
            if future.done():
                return
            if err is not None or msg is None:
                reason = err.name() if err is not None else "no_message"
                future.set_exception(WalUnavailable(reason.lower()))
            else:
                future.set_result(Ack(msg.partition() or 0, msg.offset() or 0,
                                      time.perf_counter() - t0))

        def delivered(err: KafkaError | None, msg: Message) -> None:
            self._settled.append((loop, settle, err, msg))

        if self._fatal is not None:
            raise WalUnavailable("producer_fatal")
        try:
            with self._lock:
                self._producer.produce(WAL, value=value, key=key, headers=headers,
                                       on_delivery=delivered)
        except BufferError:
            raise WalUnavailable("queue_full") from None
        except KafkaException as exc:
            raise WalUnavailable(exc.args[0].name().lower() if exc.args else "produce") from None
        return await future

    def reachable(self, timeout: float = 1.0) -> bool:
        """Whether the broker answers metadata for the WAL topic (blocking; run in a thread)."""
        try:
            md = self._producer.list_topics(WAL, timeout=timeout)
        except KafkaException:
            return False
        topic = md.topics.get(WAL)
        return topic is not None and topic.error is None and len(topic.partitions) > 0

    def close(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)
        self._producer.flush(timeout)
        self._hand_over()
