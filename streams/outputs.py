"""The stage's producer for everything it writes: table changelog, outcomes, replies,
rejections, audit events.

librdkafka (confluent-kafka) rather than Faust's aiokafka producer: per record it is an order
of magnitude cheaper in CPU (see docs/performance.md, "Stream workers"), and a batch is made
durable with one `flush`. Idempotent, `acks=all`; the batch is acknowledged on the source
only after every record of it is delivered, so a crash at any point re-processes the batch
and re-sends the same records (at-least-once, harmless by construction).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any, cast

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from streams.dedup import Out
from topics.wal import PARTITIONER

log = logging.getLogger("flk.streams.outputs")


class DeliveryError(RuntimeError):
    """Some records of a batch were not acknowledged; the batch must be re-processed."""


class Outputs:
    def __init__(self, bootstrap: str, client_id: str, delivery_timeout_ms: int = 30_000,
                 linger_ms: float = 2.0) -> None:  # fmt: skip
        self._config: dict[str, Any] = {
            "bootstrap.servers": bootstrap,
            "client.id": client_id,
            "acks": "all",
            "enable.idempotence": True,
            "partitioner": PARTITIONER,
            "linger.ms": linger_ms,
            "batch.num.messages": 10_000,
            "queue.buffering.max.messages": 200_000,
            "delivery.timeout.ms": delivery_timeout_ms,
            "message.max.bytes": 2 * 1024 * 1024,
        }
        self._producer = Producer(self._config)
        self._errors: list[str] = []
        self._offsets: dict[tuple[str, int], int] = {}
        self._fatal = False

    def _delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            self._errors.append(f"{msg.topic()}[{msg.partition()}]: {err}")
            if err.fatal():
                self._fatal = True
            return
        tp = (msg.topic() or "", msg.partition() or 0)
        offset = msg.offset() or 0
        if offset > self._offsets.get(tp, -1):
            self._offsets[tp] = offset

    def _produce(self, o: Out, on_delivery: Callable[[KafkaError | None, Message], None]) -> None:
        self._producer.produce(o.topic, o.value, o.key,
                               partition=-1 if o.partition is None else o.partition,
                               headers=cast(Any, o.headers), on_delivery=on_delivery)

    def send(self, outs: Iterable[Out]) -> None:
        for o in outs:
            while True:
                try:
                    self._produce(o, self._delivered)
                    break
                except BufferError:
                    self._producer.poll(0.05)  # local queue full: let deliveries drain
                except KafkaException as exc:
                    self._errors.append(str(exc))
                    break

    def send_replies(self, outs: Iterable[Out]) -> None:
        """Send answers nobody's durability depends on: not part of the next flush's result
        (a lost reply leaves its request 202 pending, readable from the outcome store)."""
        for o in outs:
            try:
                self._produce(o, self._reply_delivered)
            except (BufferError, KafkaException) as exc:
                log.warning("reply not sent: %s", exc)

    def _reply_delivered(self, err: KafkaError | None, msg: Message) -> None:
        if err is not None:
            log.warning("reply not delivered to %s[%s]: %s", msg.topic(), msg.partition(), err)

    def flush(self, timeout_s: float) -> dict[tuple[str, int], int]:
        """Wait for every record sent since the last flush; the highest delivered offset per
        (topic, partition). Raises DeliveryError if any record failed or is still pending."""
        left = self._producer.flush(timeout_s)
        errors, self._errors = self._errors, []
        offsets, self._offsets = self._offsets, {}
        if left or errors:
            if self._fatal:
                log.error("fatal producer error; building a new producer")
                self._producer = Producer(self._config)
                self._fatal = False
            raise DeliveryError(f"{left} records undelivered, {len(errors)} failed"
                                + (f" (first: {errors[0]})" if errors else ""))  # fmt: skip
        return offsets

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait up to `timeout_s` for what is queued, drop the rest (its batch was never
        acknowledged on the source, so it is processed again) and stop the producer's
        threads, which would otherwise keep reconnecting until the process exits."""
        self._producer.flush(timeout_s)
        self._producer.purge()
        self._producer.close()
