"""The reply path without the stream workers: a reply record on the process's own partition of
flk.replies answers the waiting request; a reply nobody waits for is dropped and counted."""

from __future__ import annotations

import concurrent.futures
import time
import uuid

import httpx
import pytest
from confluent_kafka import Producer

from infra.layout import WORKER_WEB, Layout
from schemas.codec import codec
from tests.gateway.helpers import scrape, signed_body, wal_ends, wal_records
from topics.wal import WalHeaders

pytestmark = pytest.mark.platform


def _workers_running(platform: Layout) -> bool:
    try:
        port = platform.regions[0].port(WORKER_WEB)
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_reply_answers_the_waiting_request(platform: Layout) -> None:
    if _workers_running(platform):
        pytest.skip("real workers answer first; covered by test_e2e")
    region = platform.regions[0]
    pcs, body = signed_body(platform.home, "default")
    rid = f"rep-{uuid.uuid4()}"
    since = wal_ends(region)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        fut = pool.submit(httpx.post, region.gateway_url(1) + "/v1/pcs/submit", content=body,
                          headers={"X-Request-Id": rid}, timeout=10)
        msg = wal_records(region, since, {rid})[rid]
        h = WalHeaders.decode(msg.headers())
        assert h.reply_to is not None
        reply = {"request_id": rid, "tenant": "default", "pcs_id": pcs["pcs_id"],
                 "http_status": 202, "status": "escalated", "accepted": True,
                 "escalated": True, "reason": "regime_mismatch", "detail": None,
                 "recomputed_D_hat": 1.5, "recomputed_budget": 0.25, "regime": "sticky",
                 "dedup_hit": True, "conflict": True, "policy_version": h.policy_version}
        p = Producer({"bootstrap.servers": region.kafka_bootstrap})
        p.produce(h.reply_to.topic, codec("reply").encode(reply), rid.encode(),
                  partition=h.reply_to.partition)
        p.flush(5)
        r = fut.result()
    assert r.status_code == 202, r.text
    assert r.json() == {"request_id": rid, "status": "escalated", "pcs_id": pcs["pcs_id"],
                        "tenant": "default", "accepted": True, "escalated": True,
                        "reason": "regime_mismatch", "recomputed_D_hat": 1.5,
                        "recomputed_budget": 0.25, "regime": "sticky", "dedup_hit": True,
                        "conflict": True, "policy_version": h.policy_version,
                        "region": region.name}  # fmt: skip


def test_stale_replies_are_dropped(platform: Layout) -> None:
    region = platform.regions[1]
    url = region.gateway_url(0)
    key = ("flk_gateway_replies_dropped_total", (("region", region.name), ("why", "stale")))
    before = scrape(url).get(key, 0.0)
    reply = {"request_id": f"nobody-{uuid.uuid4()}", "tenant": "default", "pcs_id": None,
             "http_status": 200, "status": "accepted", "accepted": True, "escalated": False,
             "dedup_hit": False, "policy_version": "x"}
    p = Producer({"bootstrap.servers": region.kafka_bootstrap})
    for _ in range(3):
        p.produce("flk.replies", codec("reply").encode(reply), partition=0)
    p.flush(5)
    deadline = time.monotonic() + 10
    while scrape(url).get(key, 0.0) < before + 3:
        assert time.monotonic() < deadline
        time.sleep(0.2)
