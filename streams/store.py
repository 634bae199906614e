"""The region's outcome store in PostgreSQL: the latest outcome per `(tenant, pcs_id)` and what
became of each request. Written by the stream workers (streams/sink.py), read by the gateway
for `GET /v1/pcs/{pcs_id}` and `GET /v1/requests/{request_id}` (SPEC §4).

Every write is an idempotent upsert, so a batch written twice (redelivery after a crash)
leaves the same rows. A batch is COPYed into session-private staging tables and upserted from
there in one statement per table: 6 µs of worker CPU per record where row-by-row
`executemany` took 37 µs (docs/performance.md, "Stream workers"). Rows are written in the dedup
stage's processing order, which is the order of `flk.outcomes` in the partition, so the table
holds the same latest outcome per key as the compacted topic.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable
from typing import Any, Final

import orjson
import psycopg
from psycopg.rows import dict_row

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

_STAGING: Final = """
CREATE TEMP TABLE IF NOT EXISTS flk_outcomes_in (LIKE outcomes) ON COMMIT DELETE ROWS;
CREATE TEMP TABLE IF NOT EXISTS flk_requests_in (LIKE requests) ON COMMIT DELETE ROWS;
"""
# The rows' column order (the requests table's own order differs: the staging tables are
# filled by name, the inline route names them too).
_OUTCOME_COLUMNS: Final = ("tenant, pcs_id, winner_stamp_ms, winner_stamp_counter, "
                           "winner_origin, winner_request_id, body_sha256, outcome, record")
_REQUEST_COLUMNS: Final = "tenant, request_id, pcs_id, state, http_status, answer"
_COPY_OUTCOMES: Final = f"COPY flk_outcomes_in ({_OUTCOME_COLUMNS}) FROM STDIN"
_COPY_REQUESTS: Final = f"COPY flk_requests_in ({_REQUEST_COLUMNS}) FROM STDIN"

_ON_CONFLICT_OUTCOME: Final = """
ON CONFLICT (tenant, pcs_id) DO UPDATE SET
  winner_stamp_ms = EXCLUDED.winner_stamp_ms, winner_stamp_counter = EXCLUDED.winner_stamp_counter,
  winner_origin = EXCLUDED.winner_origin, winner_request_id = EXCLUDED.winner_request_id,
  body_sha256 = EXCLUDED.body_sha256, outcome = EXCLUDED.outcome, record = EXCLUDED.record
WHERE outcomes.record IS DISTINCT FROM EXCLUDED.record
"""
_ON_CONFLICT_REQUEST: Final = """
ON CONFLICT (tenant, request_id) DO UPDATE SET
  pcs_id = EXCLUDED.pcs_id, state = EXCLUDED.state, http_status = EXCLUDED.http_status,
  answer = EXCLUDED.answer
WHERE requests.answer IS DISTINCT FROM EXCLUDED.answer
   OR requests.http_status IS DISTINCT FROM EXCLUDED.http_status
"""
# The statements below are joined from the constants above only (S608 is about data in SQL
# text; values travel as COPY rows or are quoted by psycopg's mogrify).
_UPSERT_OUTCOME: Final = (
    "INSERT INTO outcomes SELECT * FROM flk_outcomes_in" + _ON_CONFLICT_OUTCOME)  # noqa: S608
_UPSERT_REQUEST: Final = (
    "INSERT INTO requests SELECT * FROM flk_requests_in" + _ON_CONFLICT_REQUEST)  # noqa: S608

# A batch of at most this many rows (outcomes and requests together) goes as one statement
# string with its values inline: one round trip where the staging route takes seven. Per row
# inline values cost more (quoting in the client, parsing in the server), so larger batches
# are COPYed. Measured against the platform's PostgreSQL (docs/performance.md, session 5):
# 2 rows 0.4 ms of wall time and 0.3 ms of CPU (client + server) inline against 2.2 ms and
# 1.3 ms staged; 40 rows 3.2 ms of CPU inline against 2.5 ms staged.
INLINE_MAX_ROWS: Final = 16
_UPSERT_OUTCOME_INLINE: Final = (
    f"INSERT INTO outcomes ({_OUTCOME_COLUMNS}) VALUES {{}}"  # noqa: S608
    + _ON_CONFLICT_OUTCOME)
_UPSERT_REQUEST_INLINE: Final = (
    f"INSERT INTO requests ({_REQUEST_COLUMNS}) VALUES {{}}"  # noqa: S608
    + _ON_CONFLICT_REQUEST)
_OUTCOME_VALUES: Final = "(%s,%s,%s,%s,%s,%s,%s,%s::jsonb,%s)"
_REQUEST_VALUES: Final = "(%s,%s,%s,%s,%s,%s::jsonb)"


def _outcome_values(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*r[:7], orjson.dumps(r[7]).decode(), r[8])


def _request_values(r: tuple[Any, ...]) -> tuple[Any, ...]:
    return (*r[:5], orjson.dumps(r[5]).decode())


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


_staged: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()


def write(conn: psycopg.Connection[Any], outcome_rows: Iterable[tuple[Any, ...]],
          request_rows: Iterable[tuple[Any, ...]]) -> None:  # fmt: skip
    """Upsert one batch in one transaction. Outcome rows: (tenant, pcs_id, stamp ms, counter,
    origin, request id, body sha256, outcome dict, record bytes); request rows: (tenant,
    request id, pcs_id, state, http status, answer dict). At most one row per primary key
    (an upsert statement cannot change a row twice). On an autocommit connection a small
    batch goes inline (`INLINE_MAX_ROWS`)."""
    outcome_rows, request_rows = list(outcome_rows), list(request_rows)
    if conn.autocommit and len(outcome_rows) + len(request_rows) <= INLINE_MAX_ROWS:
        _write_inline(conn, outcome_rows, request_rows)
        return
    if conn not in _staged:
        with conn.transaction():
            conn.execute(_STAGING)
        _staged.add(conn)
    with conn.transaction(), conn.cursor() as cur:
        with cur.copy(_COPY_OUTCOMES) as copy:
            for r in outcome_rows:
                copy.write_row(_outcome_values(r))
        with cur.copy(_COPY_REQUESTS) as copy:
            for r in request_rows:
                copy.write_row(_request_values(r))
        cur.execute(_UPSERT_OUTCOME)
        cur.execute(_UPSERT_REQUEST)


def _write_inline(conn: psycopg.Connection[Any], outcome_rows: list[tuple[Any, ...]],
                  request_rows: list[tuple[Any, ...]]) -> None:  # fmt: skip
    """The batch's upserts between BEGIN and COMMIT in one simple-protocol query string, the
    values quoted by psycopg (`ClientCursor.mogrify`); the string is sent without parameters,
    so nothing in it is read as a placeholder again."""
    with psycopg.ClientCursor(conn) as cur:
        parts = ["BEGIN"]
        if outcome_rows:
            parts.append(cur.mogrify(
                _UPSERT_OUTCOME_INLINE.format(",".join([_OUTCOME_VALUES] * len(outcome_rows))),
                [x for r in outcome_rows for x in _outcome_values(r)]))
        if request_rows:
            parts.append(cur.mogrify(
                _UPSERT_REQUEST_INLINE.format(",".join([_REQUEST_VALUES] * len(request_rows))),
                [x for r in request_rows for x in _request_values(r)]))
        parts.append("COMMIT")
        cur.execute(";\n".join(parts))
