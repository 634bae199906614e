from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from flk_pcs import HmacSigner, build_pcs, encode_body, sign_pcs
from flk_pcs.client import Accepted, Client, Escalated, Pending
from flk_pcs.errors import (
    BadRequest,
    NotFound,
    PayloadTooLarge,
    PendingTimeout,
    RateLimited,
    RequestRejected,
    TransportError,
    Unauthorized,
    Unavailable,
)
from pcs_fake_gateway import FakeGateway, Reply, outcome_body

SUBMIT = "POST /v1/pcs/submit"


@pytest.fixture
def gw() -> Iterator[FakeGateway]:
    g = FakeGateway()
    yield g
    g.close()


@pytest.fixture
def gw2() -> Iterator[FakeGateway]:
    g = FakeGateway()
    yield g
    g.close()


def _dead_url() -> str:
    # A port that was just free: connecting is refused.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Sleeps(list[float]):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def _client(endpoints: Any, sleeps: Sleeps | None = None, **kw: Any) -> Client:
    return Client(endpoints, tenant="acme", read_token="tok", timeout=5.0,  # noqa: S106
                  sleep=sleeps if sleeps is not None else Sleeps(), rng=lambda: 1.0, **kw)


PCS = sign_pcs(build_pcs(merkle_root="ab" * 32, epoch=1, shard_id="s", scales=[2, 4, 8],
                         N_j={2: 4, 4: 16, 8: 64}, coh_star=0.5, r=0.5,
                         sent_at="2025-01-01T00:00:00Z"), HmacSigner("acme-secret"))


def test_accepted_with_headers_and_exact_body(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(200, outcome_body("r-1")))
    with _client(gw.url) as c:
        result = c.submit(PCS, request_id="r-1")
    assert isinstance(result, Accepted)
    assert result.recomputed_D_hat == 2.0 and result.region == "eu-west"
    (req,) = gw.requests(SUBMIT)
    assert req.headers["X-Tenant-Id"] == "acme"
    assert req.headers["X-Request-Id"] == "r-1"
    assert req.body == encode_body(PCS)
    assert "Prefer" not in req.headers


def test_escalated_is_a_value_not_an_error(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(202, outcome_body("r", "escalated", reason="regime_mismatch",
                                              still_accepted=True)))
    with _client(gw.url) as c:
        result = c.submit(PCS)
    assert isinstance(result, Escalated)
    assert result.reason == "regime_mismatch" and result.accepted and result.escalated


def test_request_id_is_generated_once_and_kept_across_retries(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(503, {"error": "wal_unavailable", "detail": "x"}),
              Reply(503, {"error": "wal_unavailable", "detail": "x"}),
              Reply(200, outcome_body("ignored")))
    sleeps = Sleeps()
    with _client(gw.url, sleeps, backoff_base=0.1) as c:
        result = c.submit(PCS)
    ids = {r.headers["X-Request-Id"] for r in gw.requests(SUBMIT)}
    assert len(gw.requests(SUBMIT)) == 3 and len(ids) == 1
    assert isinstance(result, Accepted)
    # Full jitter with rng = 1.0: the upper bound of each window, doubling.
    assert sleeps == [0.1, 0.2]


def test_retry_after_is_honoured(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(429, {"error": "rate_limited", "detail": "slow down"},
                            {"Retry-After": "3"}), Reply(200, outcome_body("r")))
    sleeps = Sleeps()
    with _client(gw.url, sleeps) as c:
        assert isinstance(c.submit(PCS), Accepted)
    assert sleeps == [3.0]


def test_retry_after_http_date(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(503, {"error": "backpressure", "detail": ""},
                            {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"}),
              Reply(200, outcome_body("r")))
    sleeps = Sleeps()
    with _client(gw.url, sleeps) as c:
        assert isinstance(c.submit(PCS), Accepted)
    assert sleeps == [0.0]  # a date in the past: retry at once


@pytest.mark.parametrize(
    ("status", "code", "error"),
    [(400, "missing_field", BadRequest), (401, "bad_signature", Unauthorized),
     (413, "too_large", PayloadTooLarge)],
)
def test_never_retried(gw: FakeGateway, status: int, code: str, error: type[Exception]) -> None:
    gw.script(SUBMIT, Reply(status, {"error": code, "detail": "d", "request_id": "srv-1"}))
    with _client(gw.url) as c, pytest.raises(error) as info:
        c.submit(PCS)
    assert len(gw.requests(SUBMIT)) == 1
    assert info.value.code == code  # type: ignore[attr-defined]
    assert info.value.request_id == "srv-1"  # type: ignore[attr-defined]


def test_error_without_json_body_still_typed(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(400, b"<html>bad</html>"))
    with _client(gw.url) as c, pytest.raises(BadRequest) as info:
        c.submit(PCS)
    assert info.value.code == "http_400"


def test_retries_exhausted_raise_the_last_typed_error(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(429, {"error": "quota_exceeded", "detail": "d"}))
    with _client(gw.url, max_attempts=3) as c, pytest.raises(RateLimited) as info:
        c.submit(PCS)
    assert info.value.code == "quota_exceeded"
    assert len(gw.requests(SUBMIT)) == 3


def test_failover_on_connection_refused(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(200, outcome_body("r")))
    sleeps = Sleeps()
    with _client([_dead_url(), gw.url], sleeps) as c:
        assert isinstance(c.submit(PCS), Accepted)
        assert isinstance(c.submit(PCS), Accepted)
    assert len(gw.requests(SUBMIT)) == 2
    assert sleeps == []  # switching to an untried endpoint needs no backoff


def test_failover_on_503_and_back_after_health_ttl(gw: FakeGateway, gw2: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(503, {"error": "backpressure", "detail": ""}),
              Reply(200, outcome_body("r")))
    gw2.script(SUBMIT, Reply(200, outcome_body("r", region="us-east")))
    now = [0.0]
    with _client([gw.url, gw2.url], clock=lambda: now[0], health_ttl=10.0) as c:
        first = c.submit(PCS)
        assert isinstance(first, Accepted) and first.region == "us-east"
        # Still within the TTL: the primary stays marked unhealthy, no probe.
        c.submit(PCS)
        assert len(gw2.requests(SUBMIT)) == 2 and not gw.requests("GET /readyz")
        now[0] = 11.0  # past the TTL: the primary is probed, is ready, and is used again
        again = c.submit(PCS)
        assert isinstance(again, Accepted) and again.region == "eu-west"
    assert len(gw.requests("GET /readyz")) == 1


def test_unready_primary_is_skipped(gw: FakeGateway, gw2: FakeGateway) -> None:
    gw.ready = False
    gw.script(SUBMIT, Reply(200, outcome_body("r")))
    gw2.script(SUBMIT, Reply(200, outcome_body("r", region="us-east")))
    with _client([gw.url, gw2.url]) as c:
        assert c.healthy_endpoints() == [gw2.url]
        result = c.submit(PCS)
        assert isinstance(result, Accepted) and result.region == "us-east"
    assert not gw.requests(SUBMIT)


def test_all_endpoints_down_is_a_transport_error() -> None:
    sleeps = Sleeps()
    with _client([_dead_url(), _dead_url()], sleeps, max_attempts=4) as c:
        with pytest.raises(TransportError) as info:
            c.submit(PCS, request_id="r-9")
    assert info.value.code == "transport_error" and info.value.request_id == "r-9"
    # 4 attempts over 2 endpoints = 2 rounds: one backoff, between the rounds (rng = 1.0).
    assert sleeps == [0.2]


def test_pending_then_polling(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(202, {"request_id": "r-5", "status": "pending"},
                            {"Location": "/v1/requests/r-5"}))
    gw.script("GET /v1/requests/r-5", Reply(404, {"error": "not_found", "detail": ""}),
              Reply(200, {"request_id": "r-5", "status": "pending"}),
              Reply(200, outcome_body("r-5", "escalated", reason="D_hat_mismatch")))
    sleeps = Sleeps()
    with _client(gw.url, sleeps) as c:
        pending = c.submit(PCS, request_id="r-5", respond_async=True)
        assert isinstance(pending, Pending)
        assert pending.location == "/v1/requests/r-5"
        result = c.wait(pending, interval=0.1)
    assert isinstance(result, Escalated) and result.reason == "D_hat_mismatch"
    assert gw.requests(SUBMIT)[0].headers["Prefer"] == "respond-async"
    polls = gw.requests("GET /v1/requests/r-5")
    assert len(polls) == 3
    assert all(p.headers["Authorization"] == "Bearer tok" for p in polls)
    assert sleeps == [0.1, 0.2]


def test_pending_that_ends_rejected(gw: FakeGateway) -> None:
    gw.script("GET /v1/requests/r-6",
              Reply(200, {"request_id": "r-6", "status": "rejected", "error": "bad_signature",
                          "detail": "no key verifies"}))
    with _client(gw.url) as c, pytest.raises(RequestRejected) as info:
        c.wait("r-6")
    assert info.value.code == "bad_signature"


def test_rejected_request_carries_the_rejection_status(gw: FakeGateway) -> None:
    # The gateway's shape (routes._stored_answer): 200 with the rejection's own http_status.
    gw.script("GET /v1/requests/r-6b",
              Reply(200, {"request_id": "r-6b", "status": "rejected", "tenant": "acme",
                          "pcs_id": "ab" * 32, "http_status": 401, "error": "bad_signature",
                          "detail": None, "region": "eu-west"}))
    with _client(gw.url) as c, pytest.raises(RequestRejected) as info:
        c.request_status("r-6b")
    assert (info.value.status, info.value.code, info.value.detail) == (401, "bad_signature", "")
    assert info.value.request_id == "r-6b"


def test_pending_timeout(gw: FakeGateway) -> None:
    gw.script("GET /v1/requests/r-7", Reply(200, {"request_id": "r-7", "status": "pending"}))
    now = [0.0]

    def sleep(s: float) -> None:
        now[0] += s

    with Client(gw.url, tenant="acme", sleep=sleep, clock=lambda: now[0]) as c:
        with pytest.raises(PendingTimeout) as info:
            c.wait("r-7", timeout=2.0, interval=0.5)
    assert info.value.request_id == "r-7" and info.value.waited <= 2.0


def test_outcome_read(gw: FakeGateway) -> None:
    pcs_id = "ab" * 32
    gw.script(f"GET /v1/pcs/{pcs_id}", Reply(200, outcome_body("r", dedup_hit=True)))
    with _client(gw.url) as c:
        result = c.outcome(pcs_id)
        assert isinstance(result, Accepted) and result.dedup_hit
        with pytest.raises(NotFound):
            c.outcome("cd" * 32)
    (req,) = gw.requests(f"GET /v1/pcs/{pcs_id}")
    assert req.headers["Authorization"] == "Bearer tok"
    assert req.headers["X-Tenant-Id"] == "acme"


def test_5xx_without_retry_after_uses_backoff(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(500, {"error": "internal", "detail": ""}))
    sleeps = Sleeps()
    with _client(gw.url, sleeps, max_attempts=3, backoff_base=0.5, backoff_cap=0.8) as c:
        with pytest.raises(Unavailable):
            c.submit(PCS)
    assert sleeps == [0.5, 0.8]  # capped


def test_raw_bytes_are_sent_unchanged(gw: FakeGateway) -> None:
    gw.script(SUBMIT, Reply(200, outcome_body("r")))
    raw = b'{"odd":  "spacing"}'
    with _client(gw.url) as c:
        c.submit(raw)
    assert gw.requests(SUBMIT)[0].body == raw
