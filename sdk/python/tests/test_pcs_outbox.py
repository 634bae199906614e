from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flk_pcs import HmacSigner, build_pcs, sign_pcs
from flk_pcs.client import Client
from flk_pcs.outbox import Outbox
from pcs_fake_gateway import FakeGateway, Reply, outcome_body

SUBMIT = "POST /v1/pcs/submit"


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    g = FakeGateway()
    yield g
    g.close()


def _pcs(epoch: int) -> dict[str, object]:
    return sign_pcs(build_pcs(merkle_root="ab" * 32, epoch=epoch, shard_id="s", scales=[2, 4],
                              N_j={2: 4, 4: 16}, coh_star=0.5, r=0.5,
                              sent_at="2025-01-01T00:00:00Z"), HmacSigner("k"))


def _client(url: str) -> Client:
    return Client(url, tenant="acme", max_attempts=2, sleep=lambda s: None)


def test_survives_restart_and_keeps_request_ids(tmp_path: Path, gw: FakeGateway) -> None:
    db = tmp_path / "outbox.sqlite"
    with Outbox(db) as box:
        a = box.enqueue(_pcs(1))
        b = box.enqueue(_pcs(2), tenant="other")
    # The gateway is down for the first flush: nothing is lost, order is kept.
    gw.script(SUBMIT, Reply(503, {"error": "wal_unavailable", "detail": ""}))
    with Outbox(db) as box, _client(gw.url) as c:
        report = box.flush(c)
        assert report.stopped_by is not None and report.remaining == 2
        assert [e.seq for e in box.pending()] == [a.seq, b.seq]
        assert box.pending()[0].attempts == 1
    gw.script(SUBMIT, Reply(202, {"request_id": "x", "status": "pending"}))
    with Outbox(db) as box, _client(gw.url) as c:
        report = box.flush(c)
        assert [e.seq for e, _ in report.delivered] == [a.seq, b.seq]
        assert report.remaining == 0 and box.pending() == []
    sent = gw.requests(SUBMIT)
    # The same request id on every try of an entry: the server can dedup redeliveries.
    assert [s.headers["X-Request-Id"] for s in sent] == [a.request_id, a.request_id,
                                                          a.request_id, b.request_id]
    assert sent[-1].headers["X-Tenant-Id"] == "other"
    assert all(s.headers["Prefer"] == "respond-async" for s in sent[2:])
    assert json.loads(sent[2].body)["ft"]["outbox_seq"] == a.seq


def test_rejections_become_dead_letters(tmp_path: Path, gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(401, {"error": "bad_signature", "detail": ""}),
              Reply(200, outcome_body("r")))
    with Outbox(tmp_path / "o.sqlite") as box, _client(gw.url) as c:
        bad = box.enqueue(_pcs(1))
        box.enqueue(_pcs(2))
        report = box.flush(c)
        assert [e.seq for e, _ in report.dead] == [bad.seq]
        assert len(report.delivered) == 1 and report.remaining == 0
        (dead,) = box.dead_letters()
        assert json.loads(dead.last_error or "")["error"] == "bad_signature"
        assert box.flush(c).delivered == []  # never retried
    assert len(gw.requests(SUBMIT)) == 2


def test_raw_bytes_are_stored_verbatim(tmp_path: Path, gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(200, outcome_body("r")))
    with Outbox(tmp_path / "o.sqlite") as box, _client(gw.url) as c:
        box.enqueue(b'{"raw": true}', request_id="fixed-id")
        box.flush(c)
    (req,) = gw.requests(SUBMIT)
    assert req.body == b'{"raw": true}' and req.headers["X-Request-Id"] == "fixed-id"
