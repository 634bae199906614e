"""Reads of the region's outcome store (PostgreSQL tables `outcomes` and `requests`, written by
the streams' sink, see streams/store.py) and the gateway's own request markers in Redis.

A marker holds the answer the gateway gave (or `pending`, written before a 202 pending answer
goes out), so `GET /v1/requests/{id}` knows a request before the sink has indexed it.
PostgreSQL is authoritative when it has the request.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import orjson
import psycopg
from psycopg.rows import dict_row

from gateway.redisio import TurnPipeline

log = logging.getLogger("flk.gateway.store")


class RequestMarkers:
    def __init__(self, redis: TurnPipeline, ttl_s: int, prefix: str = "flk:req") -> None:
        self._redis = redis
        self._ttl = ttl_s
        self._prefix = prefix

    def _key(self, tenant: str, request_id: str) -> str:
        return f"{self._prefix}:{tenant}:{request_id}"

    def pending(self, tenant: str, request_id: str, pcs_id: str | None) -> asyncio.Future[Any]:
        """Queue the marker of a 202 pending answer (sent at the end of this loop turn: the
        answer waits for it, so that its Location resolves)."""
        return self._set(tenant, request_id, {"state": "pending", "pcs_id": pcs_id}, True)

    def answered(self, tenant: str, request_id: str, http_status: int,
                 answer: dict[str, Any]) -> asyncio.Future[Any]:  # fmt: skip
        """Queue the marker of a final answer (nobody waits for it: it may go out with the
        markers of the next few milliseconds)."""
        doc = {"state": "answered", "http_status": http_status, "answer": answer}
        return self._set(tenant, request_id, doc, False)

    def _set(self, tenant: str, request_id: str, doc: dict[str, Any],
             urgent: bool) -> asyncio.Future[Any]:  # fmt: skip
        return self._redis.execute("SET", self._key(tenant, request_id), orjson.dumps(doc),
                                   "EX", self._ttl, urgent=urgent)

    async def get(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        raw = await self._redis.execute("GET", self._key(tenant, request_id))
        if raw is None:
            return None
        doc: dict[str, Any] = json.loads(raw)
        return doc


class OutcomeStore:
    """A handful of async connections to the region's PostgreSQL, opened on demand."""

    def __init__(self, dsn: str, size: int = 4, timeout_s: float = 2.0) -> None:
        self._dsn = dsn
        self._timeout = timeout_s
        self._idle: list[psycopg.AsyncConnection[dict[str, Any]]] = []
        self._slots = asyncio.Semaphore(size)

    async def _query(self, sql: str, args: tuple[Any, ...]) -> dict[str, Any] | None:
        async with self._slots:
            conn = self._idle.pop() if self._idle else None
            try:
                if conn is None or conn.closed:
                    conn = await psycopg.AsyncConnection.connect(
                        self._dsn, autocommit=True, row_factory=dict_row,
                        connect_timeout=max(1, int(self._timeout)))
                async with conn.cursor() as cur:
                    await asyncio.wait_for(cur.execute(sql, args), self._timeout)
                    row = await cur.fetchone()
            except psycopg.errors.UndefinedTable:
                # The sink has not created its tables yet: nothing is stored.
                self._idle.append(conn)  # type: ignore[arg-type]
                return None
            except BaseException:
                if conn is not None:
                    await conn.close()
                raise
            self._idle.append(conn)
            return row

    async def outcome(self, tenant: str, pcs_id: str) -> dict[str, Any] | None:
        return await self._query(
            "SELECT outcome, winner_request_id, winner_origin FROM outcomes"
            " WHERE tenant = %s AND pcs_id = %s", (tenant, pcs_id))

    async def request(self, tenant: str, request_id: str) -> dict[str, Any] | None:
        return await self._query(
            "SELECT request_id, tenant, pcs_id, state, http_status, answer FROM requests"
            " WHERE tenant = %s AND request_id = %s", (tenant, request_id))

    async def close(self) -> None:
        for conn in self._idle:
            await conn.close()
        self._idle.clear()
