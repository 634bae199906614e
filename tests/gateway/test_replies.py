"""The reply path without the stream workers: a reply record on the process's own partition of
flk.replies answers the waiting request; a reply nobody waits for is dropped and counted; with
the region's workers stopped a submit is answered 202 pending, and its Location reads pending
until a worker decides it."""

from __future__ import annotations

import concurrent.futures
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka import Producer

from infra import apps
from infra.layout import WORKER_WEB, Layout, Region
from infra.procs import Supervisor
from schemas.codec import codec
from tests.gateway.helpers import read_token, scrape, signed_body, wal_ends, wal_records
from topics.wal import WalHeaders

pytestmark = pytest.mark.platform


def _worker_ready(region: Region, k: int) -> bool:
    try:
        url = f"http://127.0.0.1:{region.port(WORKER_WEB + k)}/readyz"
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture(scope="module")
def no_workers(platform: Layout) -> Iterator[Region]:
    """The first region with its stream workers stopped; restarted (and ready) afterwards."""
    region = platform.regions[0]
    sup = Supervisor(platform.run_dir)
    _, n_workers = apps.counts()
    services = [apps.worker(region, k) for k in range(n_workers)]
    sup.stop_many([svc.key for svc in services])
    try:
        yield region
    finally:
        for svc in services:
            sup.start(svc, 120)
        deadline = time.monotonic() + 120
        while not all(_worker_ready(region, k) for k in range(n_workers)):
            assert time.monotonic() < deadline, "the workers did not become ready again"
            time.sleep(0.5)


def test_reply_answers_the_waiting_request(platform: Layout, no_workers: Region) -> None:
    region = no_workers
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


def test_an_answer_given_at_once_reads_back_from_its_marker(
        platform: Layout, no_workers: Region) -> None:  # fmt: skip
    """With the region's workers stopped the outcome store cannot have the request, so a 400
    or 401 given at once is read back (from the other process) from the gateway's marker:
    `rejected`, with the status and code that were answered; another tenant gets 404."""
    region = no_workers
    auth = {"Authorization": f"Bearer {read_token(platform.home, 'default')}"}
    _, forged = signed_body(platform.home, "acme")  # acme's key: a bad signature for default
    for body, status in ((b'{"not": "a pcs"}', 400), (forged, 401)):
        rid = f"marker-{uuid.uuid4()}"
        r = httpx.post(region.gateway_url(0) + "/v1/pcs/submit", content=body,
                       headers={"X-Request-Id": rid}, timeout=10)
        assert r.status_code == status, r.text
        url = region.gateway_url(1) + f"/v1/requests/{rid}"
        deadline = time.monotonic() + 5
        while (read := httpx.get(url, headers=auth, timeout=5)).status_code == 404:
            assert time.monotonic() < deadline, "the marker was never readable"
            time.sleep(0.1)
        assert read.status_code == 200, read.text
        got = read.json()
        assert got["status"] == "rejected" and got["request_id"] == rid
        assert got["http_status"] == status and got["error"] == r.json()["error"]
        assert got["tenant"] == "default" and got["region"] == region.name
        other = {"Authorization": f"Bearer {read_token(platform.home, 'acme')}"}
        assert httpx.get(url, headers=other, timeout=5).status_code == 404


def test_a_pending_request_reads_pending_until_decided(platform: Layout,
                                                        no_workers: Region) -> None:  # fmt: skip
    region = no_workers
    pcs, body = signed_body(platform.home, "default")
    rid = f"pend-{uuid.uuid4()}"
    auth = {"Authorization": f"Bearer {read_token(platform.home, 'default')}"}
    url = region.gateway_url(0)
    r = httpx.post(url + "/v1/pcs/submit", content=body, headers={"X-Request-Id": rid},
                   timeout=10)
    assert r.status_code == 202, r.text
    assert r.json()["status"] == "pending" and r.json()["pcs_id"] == pcs["pcs_id"]
    location = r.headers["Location"]
    assert location == f"/v1/requests/{rid}"
    # Read from the other process of the region: the marker is the region's, not the process's.
    read = httpx.get(region.gateway_url(1) + location, headers=auth, timeout=5)
    assert read.status_code == 202, read.text
    assert read.headers["Location"] == location
    assert read.json()["status"] == "pending" and read.json()["pcs_id"] == pcs["pcs_id"]
    other = httpx.get(url + location, timeout=5,
                      headers={"Authorization": f"Bearer {read_token(platform.home, 'acme')}"})
    assert other.status_code == 404, other.text  # another tenant does not see it
    _restart_and_wait_decided(platform, region, url + location, auth, rid)


def _restart_and_wait_decided(platform: Layout, region: Region, url: str,
                              auth: dict[str, str], rid: str) -> None:  # fmt: skip
    sup = Supervisor(platform.run_dir)
    _, n_workers = apps.counts()
    for k in range(n_workers):
        sup.start(apps.worker(region, k), 120)
    deadline = time.monotonic() + 120
    while True:
        read = httpx.get(url, headers=auth, timeout=5)
        if read.status_code == 200:
            break
        assert read.status_code == 202, read.text
        assert time.monotonic() < deadline, "the worker never decided the pending request"
        time.sleep(0.5)
    assert read.json()["status"] == "accepted" and read.json()["request_id"] == rid


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
