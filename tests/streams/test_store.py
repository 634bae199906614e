"""The outcome store's batch write (streams/store.py) against the platform's PostgreSQL: the
inline route (small batches, one round trip) and the staged route (COPY) store the same rows,
an upsert replaces a changed row and leaves an unchanged one, and values that need quoting
(quotes, `%`, backslashes, non-ASCII, NUL-free binary, NULL) come back as written."""

from __future__ import annotations

import os
import secrets
from typing import Any

import psycopg
import pytest

from infra.layout import Layout
from streams import store

pytestmark = pytest.mark.platform


def _rows(tag: str, n: int) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    outcomes, requests = [], []
    for i in range(n):
        pcs_id = f"{tag}-{i}"
        outcome = {"status": "accepted", "pcs_id": pcs_id, "detail": "it's 100% \\ \"quoted\" – ü",
                   "scores": {"d": 0.5, "n": None}}  # fmt: skip
        outcomes.append(("t'1", pcs_id, 1_700_000_000_000 + i, i, "eu-west", f"req-{pcs_id}",
                         "ab" * 32, outcome, os.urandom(64) + b"\\x00%s'"))  # fmt: skip
        requests.append(("t'1", f"req-{pcs_id}", None if i % 2 else pcs_id, "decided", 200,
                         {"status": "accepted", "why": "50% 'off'"}))  # fmt: skip
    return outcomes, requests


@pytest.mark.parametrize("rows", [2, store.INLINE_MAX_ROWS // 2 + 5])
def test_a_batch_reads_back_as_written_and_upserts(platform: Layout, rows: int) -> None:
    """`rows` records: 2 go inline (4 rows), the larger batch is staged (COPY)."""
    dsn = platform.regions[0].postgres_dsn
    tag = f"store-{secrets.token_hex(4)}"
    outcomes, requests = _rows(tag, rows)
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.ensure_schema(conn)
        store.write(conn, outcomes, requests)
        for o, r in zip(outcomes, requests, strict=True):
            got = store.get_outcome(conn, o[0], o[1])
            assert got is not None
            assert (got["winner_stamp_ms"], got["winner_stamp_counter"], got["winner_origin"],
                    got["winner_request_id"], got["body_sha256"]) == o[2:7]  # fmt: skip
            assert got["outcome"] == o[7] and got["record"] == o[8]
            req = store.get_request(conn, r[0], r[1])
            assert req is not None
            assert (req["pcs_id"], req["state"], req["http_status"], req["answer"]) == r[2:]
        # A changed outcome replaces the row; the same rows again change nothing.
        changed = [(*o[:7], {**o[7], "status": "escalated"}, o[8] + b"!") for o in outcomes]
        store.write(conn, changed, requests)
        store.write(conn, changed, requests)
        for o in changed:
            got = store.get_outcome(conn, o[0], o[1])
            assert got is not None and got["outcome"]["status"] == "escalated"
            assert got["record"] == o[8]
        n = conn.execute("SELECT count(*) FROM outcomes WHERE pcs_id LIKE %s",
                         (f"{tag}-%",)).fetchone()  # fmt: skip
        assert n is not None and n[0] == rows


def test_small_batches_go_inline_large_ones_staged(
        platform: Layout, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    dsn = platform.regions[0].postgres_dsn
    routes: list[str] = []
    real_inline = store._write_inline
    def inline(*args: Any) -> None:
        routes.append("inline")
        real_inline(*args)

    monkeypatch.setattr(store, "_write_inline", inline)
    with psycopg.connect(dsn, autocommit=True) as conn:
        store.ensure_schema(conn)
        store.write(conn, *_rows(f"route-{secrets.token_hex(4)}", 2))
        store.write(conn, *_rows(f"route-{secrets.token_hex(4)}", store.INLINE_MAX_ROWS))
    assert routes == ["inline"]
