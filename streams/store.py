"""The region's outcome store in PostgreSQL: the latest outcome per `(tenant, pcs_id)` and what
became of each request. Written by the stream workers (streams/sink.py), read by the gateway
for `GET /v1/pcs/{pcs_id}` and `GET /v1/requests/{request_id}` (SPEC §4).

Every write is an idempotent upsert, so a batch written twice (redelivery after a crash)
leaves the same rows. Rows are written in the dedup stage's processing order, which is the
order of `flk.outcomes` in the partition, so the table holds the same latest outcome per key as
the compacted topic.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Final

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

DDL: Final = """
CREATE TABLE IF NOT EXISTS outcomes (
  tenant text NOT NULL, pcs_id text NOT NULL,
  winner_stamp_ms bigint NOT NULL, winner_stamp_counter integer NOT NULL,
  winner_origin text NOT NULL, winner_request_id text NOT NULL, body_sha256 text NOT NULL,
  outcome jsonb NOT NULL,
  record bytea NOT NULL,
  PRIMARY KEY (tenant, pcs_id));
CREATE TABLE IF NOT EXISTS requests (
  request_id text NOT NULL, tenant text NOT NULL, pcs_id text,
  state text NOT NULL,
  http_status integer NOT NULL,
  answer jsonb NOT NULL,
  PRIMARY KEY (tenant, request_id));
"""

_UPSERT_OUTCOME: Final = """
INSERT INTO outcomes (tenant, pcs_id, winner_stamp_ms, winner_stamp_counter, winner_origin,
                      winner_request_id, body_sha256, outcome, record)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant, pcs_id) DO UPDATE SET
  winner_stamp_ms = EXCLUDED.winner_stamp_ms, winner_stamp_counter = EXCLUDED.winner_stamp_counter,
  winner_origin = EXCLUDED.winner_origin, winner_request_id = EXCLUDED.winner_request_id,
  body_sha256 = EXCLUDED.body_sha256, outcome = EXCLUDED.outcome, record = EXCLUDED.record
WHERE outcomes.record IS DISTINCT FROM EXCLUDED.record
"""

_UPSERT_REQUEST: Final = """
INSERT INTO requests (tenant, request_id, pcs_id, state, http_status, answer)
VALUES (%s, %s, %s, %s, %s, %s)
ON CONFLICT (tenant, request_id) DO UPDATE SET
  pcs_id = EXCLUDED.pcs_id, state = EXCLUDED.state, http_status = EXCLUDED.http_status,
  answer = EXCLUDED.answer
WHERE requests.answer IS DISTINCT FROM EXCLUDED.answer
   OR requests.http_status IS DISTINCT FROM EXCLUDED.http_status
"""


def ensure_schema(conn: psycopg.Connection[Any]) -> None:
    with conn.transaction():
        conn.execute(DDL)


def get_outcome(conn: psycopg.Connection[Any], tenant: str, pcs_id: str) -> dict[str, Any] | None:
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM outcomes WHERE tenant = %s AND pcs_id = %s", (tenant, pcs_id))
        row = cur.fetchone()
    if row is not None:
        row["record"] = bytes(row["record"])
    return row


def get_request(conn: psycopg.Connection[Any], tenant: str, request_id: str
                ) -> dict[str, Any] | None:  # fmt: skip
    with conn.cursor(row_factory=dict_row) as cur:
        cur.execute("SELECT * FROM requests WHERE tenant = %s AND request_id = %s",
                    (tenant, request_id))  # fmt: skip
        return cur.fetchone()


def write(conn: psycopg.Connection[Any], outcome_rows: Iterable[tuple[Any, ...]],
          request_rows: Iterable[tuple[Any, ...]]) -> None:  # fmt: skip
    """Upsert one batch in one transaction. Outcome rows: (tenant, pcs_id, stamp ms, counter,
    origin, request id, body sha256, outcome dict, record bytes); request rows: (tenant,
    request id, pcs_id, state, http status, answer dict)."""
    outcomes = [(*r[:7], Jsonb(r[7]), r[8]) for r in outcome_rows]
    requests = [(*r[:5], Jsonb(r[5])) for r in request_rows]
    with conn.transaction(), conn.cursor() as cur:
        if outcomes:
            cur.executemany(_UPSERT_OUTCOME, outcomes)
        if requests:
            cur.executemany(_UPSERT_REQUEST, requests)
