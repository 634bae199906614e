"""End to end in both regions, with the stream workers (issue 4 acceptance): valid → 200 with
the SPEC §4 fields, the same PCS again → the same outcome with dedup_hit, the same key with a
different body → conflict, escalation → 202, outcome reads behind the read token, the Python
SDK against the real gateway."""

from __future__ import annotations

import importlib.util
import time
import uuid
from typing import Any

import httpx
import pytest
from flk_pcs import encode_body, sign_pcs
from flk_pcs.client import Accepted, Client, Escalated

from infra.layout import WORKER_WEB, Layout, Region
from tests.gateway.helpers import new_pcs, read_token, signer_for

pytestmark = pytest.mark.platform

FIELDS = {"request_id", "status", "pcs_id", "tenant", "accepted", "escalated",
          "recomputed_D_hat", "recomputed_budget", "regime", "dedup_hit", "policy_version",
          "region"}  # fmt: skip


@pytest.fixture(scope="module")
def workers(platform: Layout) -> Layout:
    if importlib.util.find_spec("streams.worker") is None:
        pytest.skip("the stream workers (streams/worker.py, issue 5) are not built yet")
    deadline = time.monotonic() + 60
    for region in platform.regions:
        url = f"http://127.0.0.1:{region.port(WORKER_WEB)}/readyz"
        while True:
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"worker of {region.name} not ready"
            time.sleep(0.5)
    return platform


def _submit(region: Region, k: int, body: bytes, tenant: str = "default",
            rid: str | None = None) -> httpx.Response:  # fmt: skip
    headers = {"X-Tenant-Id": tenant, "X-Request-Id": rid or f"e2e-{uuid.uuid4()}"}
    return httpx.post(region.gateway_url(k) + "/v1/pcs/submit", content=body, headers=headers,
                      timeout=15)


def _final(region: Region, r: httpx.Response, tenant: str, home: Any) -> dict[str, Any]:
    """The decision, polling /v1/requests if the gateway answered pending."""
    body: dict[str, Any] = r.json()
    deadline = time.monotonic() + 30
    auth = {"Authorization": f"Bearer {read_token(home, tenant)}", "X-Tenant-Id": tenant}
    while body.get("status") == "pending":
        assert time.monotonic() < deadline, f"still pending: {body}"
        time.sleep(0.3)
        body = httpx.get(region.gateway_url(0) + r.headers["location"], headers=auth).json()
    return body


@pytest.mark.parametrize("region_name", ["eu-west", "us-east"])
@pytest.mark.parametrize("tenant", ["default", "acme"])
def test_valid_duplicate_and_conflict(workers: Layout, region_name: str, tenant: str) -> None:
    region = workers.region(region_name)
    pcs = sign_pcs(new_pcs(), signer_for(workers.home, tenant))
    body = encode_body(pcs)
    first = _submit(region, 0, body, tenant)
    assert first.status_code in (200, 202), first.text
    got = _final(region, first, tenant, workers.home)
    assert FIELDS <= set(got), set(got)
    assert (got["status"], got["accepted"], got["escalated"]) == ("accepted", True, False)
    assert (got["pcs_id"], got["tenant"], got["region"]) == (pcs["pcs_id"], tenant, region_name)
    assert got["dedup_hit"] is False and not got.get("conflict")
    if first.status_code == 200:
        assert first.json() == got

    again = _submit(region, 1, body, tenant)  # the other gateway process
    assert again.status_code == 200, again.text
    dup = again.json()
    assert dup["dedup_hit"] is True and not dup.get("conflict")
    same = ("status", "accepted", "escalated", "recomputed_D_hat", "recomputed_budget", "regime",
            "policy_version", "pcs_id")  # fmt: skip
    assert {k: dup[k] for k in same} == {k: got[k] for k in same}

    # Same key, different bytes: `seed` is not signed (SPEC §2), so the signature still holds.
    other = encode_body({**pcs, "seed": pcs["seed"] + 1})
    clash = _submit(region, 0, other, tenant)
    assert clash.status_code == 200, clash.text
    assert clash.json()["dedup_hit"] is True and clash.json()["conflict"] is True


def test_escalation_is_202_with_reason(workers: Layout) -> None:
    region = workers.regions[1]
    pcs = sign_pcs(new_pcs(D_hat=1.9), signer_for(workers.home, "default"))
    r = _submit(region, 1, encode_body(pcs))
    assert r.status_code == 202, r.text
    got = _final(region, r, "default", workers.home)
    assert (got["status"], got["accepted"], got["escalated"]) == ("escalated", False, True)
    assert got["reason"] == "D_hat_mismatch"


def test_outcome_reads_are_per_tenant(workers: Layout) -> None:
    region = workers.regions[0]
    pcs = sign_pcs(new_pcs(), signer_for(workers.home, "acme"))
    rid = f"e2e-read-{uuid.uuid4()}"
    r = _submit(region, 0, encode_body(pcs), "acme", rid)
    assert r.status_code in (200, 202)
    own = {"Authorization": f"Bearer {read_token(workers.home, 'acme')}"}
    other = {"Authorization": f"Bearer {read_token(workers.home, 'default')}"}
    url = region.gateway_url(1) + f"/v1/pcs/{pcs['pcs_id']}"
    deadline = time.monotonic() + 30
    while (got := httpx.get(url, headers=own)).status_code == 404:
        assert time.monotonic() < deadline, "the outcome never reached the outcome store"
        time.sleep(0.3)
    assert got.status_code == 200, got.text
    assert got.json()["pcs_id"] == pcs["pcs_id"] and got.json()["tenant"] == "acme"
    assert got.json()["request_id"] == rid
    assert httpx.get(url, headers=other).status_code == 404
    req = httpx.get(region.gateway_url(1) + f"/v1/requests/{rid}", headers=own)
    assert req.status_code == 200 and req.json()["status"] == "accepted"
    assert httpx.get(region.gateway_url(1) + f"/v1/requests/{rid}",
                     headers=other).status_code == 404


def test_an_answer_from_a_reply_is_readable_at_once(workers: Layout) -> None:
    """A worker replies only after the outcome store has the request, and the gateway keeps no
    marker of such an answer. The test holds a lock on the store's `requests` table for a
    second while it submits: the answer must wait for the lock (a reply sent before the store
    write would answer 200 at once, and the read-back would then be 404)."""
    import threading

    import psycopg
    import redis

    region = workers.regions[0]
    auth = {"Authorization": f"Bearer {read_token(workers.home, 'default')}"}
    pcs = sign_pcs(new_pcs(), signer_for(workers.home, "default"))
    rid = f"e2e-readback-{uuid.uuid4()}"
    with psycopg.connect(region.postgres_dsn) as conn:
        conn.execute("LOCK TABLE requests IN EXCLUSIVE MODE")  # reads go on, writes wait
        release = threading.Timer(1.0, conn.commit)
        release.start()
        t0 = time.monotonic()
        r = _submit(region, 0, encode_body(pcs), "default", rid)
        waited = time.monotonic() - t0
        release.join()
    assert r.status_code == 200, r.text
    assert waited >= 0.9, f"answered after {waited:.3f} s, before the store had the request"
    got = httpx.get(region.gateway_url(1) + f"/v1/requests/{rid}", headers=auth)
    assert got.status_code == 200, got.text
    assert got.json()["status"] == r.json()["status"] and got.json()["pcs_id"] == pcs["pcs_id"]
    client = redis.Redis.from_url(region.redis_url)
    try:
        assert client.exists(f"flk:req:default:{rid}") == 0  # the store answered, no marker
    finally:
        client.close()


def test_python_sdk_against_the_gateway(workers: Layout) -> None:
    eps = [r.gateway_url(0) for r in workers.regions]
    with Client(eps, tenant="default", read_token=read_token(workers.home, "default")) as client:
        pcs = sign_pcs(new_pcs(), signer_for(workers.home, "default"))
        result = client.submit(pcs)
        if not isinstance(result, (Accepted, Escalated)):
            result = client.wait(result, timeout=30)
        assert isinstance(result, Accepted) and result.pcs_id == pcs["pcs_id"]
        again = client.submit(pcs)
        assert isinstance(again, Accepted) and again.dedup_hit
