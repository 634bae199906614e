"""A local at-least-once outbox: records are stored in SQLite before they are sent, and
stay there until the gateway has acknowledged them (200 / 202), across process restarts.

Each entry keeps the X-Request-Id it was given at enqueue time, so a record re-sent after a
crash (the first try may have reached the WAL) is a redelivery the server recognises.
"""

from __future__ import annotations

import json
import sqlite3
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .build import encode_body
from .client import Client, Result
from .errors import ApiError, FlkPcsError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL UNIQUE,
    tenant TEXT,
    body BLOB NOT NULL,
    created_ms INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    state TEXT NOT NULL DEFAULT 'pending'  -- pending | dead
)
"""


@dataclass(frozen=True)
class OutboxEntry:
    seq: int
    request_id: str
    tenant: str | None
    body: bytes = field(repr=False)
    attempts: int
    last_error: str | None


@dataclass
class FlushReport:
    delivered: list[tuple[OutboxEntry, Result]] = field(default_factory=list)
    # Refused for good (400 / 401 / 413): kept as dead letters, never retried.
    dead: list[tuple[OutboxEntry, ApiError]] = field(default_factory=list)
    # Set when a retryable failure stopped the flush; the entry and all later ones remain.
    stopped_by: FlkPcsError | None = None
    remaining: int = 0


class Outbox:
    def __init__(self, path: str | Path) -> None:
        # autocommit mode; every change below is one explicit transaction.
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an acknowledged enqueue survives a crash
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def enqueue(self, pcs: Mapping[str, Any] | bytes, *, tenant: str | None = None,
                request_id: str | None = None) -> OutboxEntry:
        """Store a signed record durably. For a PCS object, `ft.outbox_seq` (unsigned,
        SPEC §1) is set to the entry's sequence number."""
        rid = request_id or str(uuid.uuid4())
        now = int(time.time() * 1000)
        self._db.execute("BEGIN IMMEDIATE")
        try:
            cur = self._db.execute(
                "INSERT INTO outbox (request_id, tenant, body, created_ms) VALUES (?, ?, ?, ?)",
                (rid, tenant, b"", now),
            )
            seq = int(cur.lastrowid or 0)
            if isinstance(pcs, bytes):
                body = pcs
            else:
                record = dict(pcs)
                record["ft"] = dict(record.get("ft") or {}, outbox_seq=seq)
                body = encode_body(record)
            self._db.execute("UPDATE outbox SET body = ? WHERE seq = ?", (body, seq))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return OutboxEntry(seq, rid, tenant, body, 0, None)

    def _entries(self, state: str) -> list[OutboxEntry]:
        rows = self._db.execute(
            "SELECT seq, request_id, tenant, body, attempts, last_error FROM outbox "
            "WHERE state = ? ORDER BY seq", (state,),
        ).fetchall()
        return [OutboxEntry(r[0], r[1], r[2], bytes(r[3]), r[4], r[5]) for r in rows]

    def pending(self) -> list[OutboxEntry]:
        return self._entries("pending")

    def dead_letters(self) -> list[OutboxEntry]:
        return self._entries("dead")

    def flush(self, client: Client, *, limit: int | None = None) -> FlushReport:
        """Send pending entries in order. Uses `Prefer: respond-async`: once the gateway has
        the record in its WAL (200 / 202, including pending) the entry is done."""
        report = FlushReport()
        for entry in self.pending()[:limit]:
            try:
                result = client.submit(entry.body, request_id=entry.request_id,
                                       tenant=entry.tenant, respond_async=True)
            except ApiError as exc:
                if exc.retryable:
                    self._failed(entry, exc)
                    report.stopped_by = exc
                    break
                self._db.execute(
                    "UPDATE outbox SET state = 'dead', attempts = attempts + 1, last_error = ? "
                    "WHERE seq = ?", (json.dumps({"status": exc.status, "error": exc.code}),
                                      entry.seq),
                )
                report.dead.append((entry, exc))
            except FlkPcsError as exc:
                self._failed(entry, exc)
                report.stopped_by = exc
                break
            else:
                self._db.execute("DELETE FROM outbox WHERE seq = ?", (entry.seq,))
                report.delivered.append((entry, result))
        report.remaining = len(self.pending())
        return report

    def _failed(self, entry: OutboxEntry, exc: FlkPcsError) -> None:
        self._db.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE seq = ?",
            (json.dumps({"error": getattr(exc, "code", type(exc).__name__)}), entry.seq),
        )
