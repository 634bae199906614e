"""The outcome sink: each batch's latest outcomes and request answers into the region's
PostgreSQL (streams/store.py), before the batch is acknowledged.

Blocking (run it in a thread). A failed write is retried on a fresh connection until it
succeeds or the worker stops: the batch is not acknowledged meanwhile, so nothing decided is
missing from the store after a database outage; the stage stalls and its lag tells the
gateways to push back (SPEC §4 503).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from streams import store
from streams.dedup import BatchResult

log = logging.getLogger("flk.streams.sink")


class SinkStopped(RuntimeError):
    pass


class OutcomeSink:
    def __init__(self, dsn: str, on_retry: Callable[[], None] | None = None) -> None:
        self.dsn = dsn
        self._conn: psycopg.Connection[Any] | None = None
        self._stopping = threading.Event()
        self._on_retry = on_retry

    def _connection(self) -> psycopg.Connection[Any]:
        if self._conn is None or self._conn.closed:
            # Autocommit: a staged batch opens its own transaction, an inline one sends its
            # BEGIN and COMMIT with its statements (streams/store.py).
            self._conn = psycopg.connect(self.dsn, connect_timeout=5, autocommit=True,
                                         application_name="flk-worker")
            store.ensure_schema(self._conn)
        return self._conn

    def write(self, res: BatchResult) -> None:
        if not res.outcome_rows and not res.request_rows:
            return
        delay = 0.2
        while True:
            try:
                store.write(self._connection(), res.outcome_rows.values(),
                            res.request_rows.values())  # fmt: skip
                return
            except psycopg.Error as exc:
                if self._stopping.is_set():
                    raise SinkStopped("worker stopping; batch left unacknowledged") from exc
                log.warning("outcome store write failed (%s); retrying in %.1f s", exc, delay)
                if self._on_retry is not None:
                    self._on_retry()
                self._close()
                time.sleep(delay)
                delay = min(5.0, delay * 2)

    def _close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except psycopg.Error:
                pass
            self._conn = None

    def close(self) -> None:
        self._stopping.set()
        self._close()
