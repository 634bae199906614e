"""The submit path against the running gateways (SPEC §4 order, SPEC §5 WAL before verdict).

These need no stream workers: every answer here is given by the gateway itself (413, 401, 429,
400 and 401 after the WAL write, 202 pending with `Prefer: respond-async`).
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from flk import registry
from infra.layout import Layout
from tests.gateway.helpers import (
    extra_tenants,
    read_token,
    ready_facts,
    signed_body,
    wal_ends,
    wal_records,
)
from topics.wal import ReplyTo, Stamp, WalHeaders

pytestmark = pytest.mark.platform

MIB = 1024 * 1024


def _post(url: str, body: bytes, **headers: str) -> httpx.Response:
    return httpx.post(url + "/v1/pcs/submit", content=body, headers=headers, timeout=10)


@pytest.mark.parametrize("region_name", ["eu-west", "us-east"])
def test_wal_before_parse(platform: Layout, region_name: str) -> None:
    """A malformed body is in flk.wal byte for byte, with the contract's headers, and got 400."""
    region = platform.region(region_name)
    since = wal_ends(region)
    exact = b'{"x": "' + secrets.token_hex(MIB // 2)[: MIB - 8].encode() + b'"'
    malformed = [b'{"pcs_id": "abc", "epoch": 1.0, \xff broken', b"[1, 2, 3]", b"",
                 exact]  # exactly the limit: neither refused nor truncated
    bodies = {f"wbp-{uuid.uuid4()}": b for b in malformed}
    assert len(list(bodies.values())[3]) == MIB
    for k, (rid, body) in enumerate(bodies.items()):
        r = _post(region.gateway_url(k % 2), body, **{"X-Request-Id": rid})
        assert r.status_code == 400, r.text
        assert r.headers["x-request-id"] == rid
        err = r.json()
        assert err["request_id"] == rid and err["error"] in (
            "malformed_json", "not_an_object", "invalid_unicode")
    found = wal_records(region, since, set(bodies))
    assert set(found) == set(bodies)
    facts = ready_facts(region, 0)
    for rid, body in bodies.items():
        msg = found[rid]
        assert msg.value() == body  # byte for byte
        assert msg.key() == f"default/~{rid}".encode()
        h = WalHeaders.decode(msg.headers())
        assert (h.tenant, h.origin, h.request_id) == ("default", region_name, rid)
        assert h.body_sha256 == hashlib.sha256(body).hexdigest()
        assert h.keyset_version == facts["keyset_version"]
        assert h.policy_version == facts["policy_version"]
        assert h.reply_to is not None and h.reply_to.topic == "flk.replies"
        assert h.stamp > Stamp(0, 0)
        # Workers can load exactly the versions the record names.
        assert registry.keyset(platform.home, h.keyset_version).version == h.keyset_version
        assert registry.policy(platform.home, h.policy_version).version == h.policy_version


def test_reply_address_is_the_process_partition(platform: Layout) -> None:
    region = platform.regions[0]
    since = wal_ends(region)
    rids = {0: f"ra-{uuid.uuid4()}", 1: f"ra-{uuid.uuid4()}"}
    for k, rid in rids.items():
        assert _post(region.gateway_url(k), b"nope", **{"X-Request-Id": rid}).status_code == 400
    found = wal_records(region, since, set(rids.values()))
    for k, rid in rids.items():
        assert WalHeaders.decode(found[rid].headers()).reply_to == ReplyTo("flk.replies", k)


def test_oversize_is_413_and_never_written(platform: Layout) -> None:
    region = platform.regions[0]
    since = wal_ends(region)
    rid = f"big-{uuid.uuid4()}"
    r = _post(region.gateway_url(0), b"{" + b" " * MIB + b"}", **{"X-Request-Id": rid})
    assert r.status_code == 413 and r.json()["error"] == "payload_too_large"
    assert r.headers["x-request-id"] == rid

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit applies while reading
        for _ in range(17):
            yield b"x" * 65536

    r2 = httpx.post(region.gateway_url(1) + "/v1/pcs/submit", content=chunks(), timeout=10)
    assert r2.status_code == 413
    assert wal_records(region, since, {rid}, timeout=2) == {}


def test_unknown_tenant_is_401_before_the_wal(platform: Layout) -> None:
    region = platform.regions[1]
    since = wal_ends(region)
    _, body = signed_body(platform.home, "default")
    rid = f"ut-{uuid.uuid4()}"
    r = _post(region.gateway_url(0), body, **{"X-Tenant-Id": "no-such-tenant",
                                              "X-Request-Id": rid})
    assert r.status_code == 401 and r.json()["error"] == "unknown_tenant"
    assert wal_records(region, since, {rid}, timeout=2) == {}


@pytest.mark.parametrize("tenant", ["default", "acme"])
def test_bad_signature_is_401_after_the_wal(platform: Layout, tenant: str) -> None:
    region = platform.regions[0]
    since = wal_ends(region)
    pcs, _ = signed_body(platform.home, tenant)
    sig = bytearray(pcs["sig"].encode())
    sig[5] = ord("A") if sig[5] != ord("A") else ord("B")
    bad = json.dumps({**pcs, "sig": sig.decode()}).encode()
    missing = json.dumps({k: v for k, v in pcs.items() if k != "sig"}).encode()
    other, _ = signed_body(platform.home, "acme" if tenant == "default" else "default")
    cross = json.dumps(other).encode()  # signed by the other tenant's key
    cases = {f"bs-{uuid.uuid4()}": case for case in [
        (bad, "bad_signature"), (missing, "missing_signature"), (cross, "bad_signature")]}
    for rid, (body, code) in cases.items():
        r = _post(region.gateway_url(1), body, **{"X-Tenant-Id": tenant, "X-Request-Id": rid})
        assert r.status_code == 401, r.text
        assert r.json() == {"error": code, "detail": r.json()["detail"], "request_id": rid}
    found = wal_records(region, since, set(cases))
    assert set(found) == set(cases)  # in the WAL, keyed by tenant/pcs_id
    for rid, msg in found.items():
        assert msg.value() == cases[rid][0]
        assert msg.key().startswith(f"{tenant}/".encode()) and b"~" not in msg.key()


def test_request_id_is_echoed_generated_or_refused(platform: Layout) -> None:
    url = platform.regions[0].gateway_url(0)
    r = _post(url, b"x")
    assert r.status_code == 400 and uuid.UUID(r.headers["x-request-id"])
    assert r.json()["request_id"] == r.headers["x-request-id"]
    r = _post(url, b"x", **{"X-Request-Id": "has space"})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_id"
    r = _post(url, b"x", **{"X-Request-Id": "a" * 129})
    assert r.status_code == 400 and r.json()["error"] == "invalid_request_id"


def test_respond_async_is_pending_and_readable(platform: Layout) -> None:
    region = platform.regions[0]
    pcs, body = signed_body(platform.home, "acme")
    rid = f"async-{uuid.uuid4()}"
    r = _post(region.gateway_url(0), body, **{"X-Tenant-Id": "acme", "X-Request-Id": rid,
                                              "Prefer": "respond-async"})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/v1/requests/{rid}"
    got = r.json()
    assert got["status"] == "pending" and got["pcs_id"] == pcs["pcs_id"]
    assert got["tenant"] == "acme" and got["region"] == region.name
    token = read_token(platform.home, "acme")
    poll = httpx.get(region.gateway_url(1) + r.headers["location"],
                     headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert poll.status_code in (200, 202), poll.text
    assert poll.json()["request_id"] == rid


def test_a_tenant_cannot_read_another_tenants_requests(platform: Layout) -> None:
    region = platform.regions[0]
    rid = f"iso-{uuid.uuid4()}"
    assert _post(region.gateway_url(0), b"{}", **{"X-Tenant-Id": "acme",
                                                   "X-Request-Id": rid}).status_code == 400
    url = region.gateway_url(1) + f"/v1/requests/{rid}"
    own = httpx.get(url, headers={"Authorization": f"Bearer {read_token(platform.home, 'acme')}"})
    assert own.status_code == 200 and own.json()["status"] == "rejected"
    assert own.json()["error"] == "missing_field"
    other = read_token(platform.home, "default")
    assert httpx.get(url, headers={"Authorization": f"Bearer {other}"}).status_code == 404
    # Claiming the other tenant with one's own token does not work either.
    claim = httpx.get(url, headers={"Authorization": f"Bearer {other}", "X-Tenant-Id": "acme"})
    assert claim.status_code == 401
    assert httpx.get(url).status_code == 401
    assert httpx.get(url, headers={"Authorization": "Bearer wrong-token-xxxxxxxx"}
                     ).status_code == 401


def test_over_rate_across_two_gateway_processes_is_429(platform: Layout) -> None:
    name = f"rate-{secrets.token_hex(3)}"
    tenant = {"read_token": secrets.token_urlsafe(20), "rate_per_s": 0.01, "burst": 4,
              "daily_quota": 0, "keys": []}
    region = platform.regions[0]
    with extra_tenants(platform, {name: tenant}):
        codes = []
        for i in range(8):
            r = _post(region.gateway_url(i % 2), b"{}", **{"X-Tenant-Id": name})
            codes.append(r.status_code)
            if r.status_code == 429:
                assert r.json()["error"] == "rate_limited"
                assert int(r.headers["retry-after"]) >= 1
        # 4 tokens in the region's shared bucket: 4 reach the WAL (400: `{}` is malformed),
        # whichever process took them; the other region has its own bucket.
        assert codes == [400] * 4 + [429] * 4
        other = platform.regions[1]
        assert _post(other.gateway_url(0), b"{}", **{"X-Tenant-Id": name}).status_code == 400


def test_reload_rotates_keys_in_running_gateways(platform: Layout) -> None:
    name = f"rot-{secrets.token_hex(3)}"
    base = {"read_token": secrets.token_urlsafe(20), "rate_per_s": 100, "burst": 100,
            "daily_quota": 0}
    k1: dict[str, Any] = {"key_id": "k1", "alg": "hmac", "secret": secrets.token_hex(16),
                         "valid_from_ms": 0}
    k2: dict[str, Any] = {"key_id": "k2", "alg": "hmac", "secret": secrets.token_hex(16),
                         "valid_from_ms": 0}
    from flk_pcs import HmacSigner, encode_body, sign_pcs

    from tests.gateway.helpers import new_pcs

    def body(secret: str) -> bytes:
        out: bytes = encode_body(sign_pcs(new_pcs(), HmacSigner(secret)))
        return out

    url = platform.regions[1].gateway_url(0)
    hdr = {"X-Tenant-Id": name, "Prefer": "respond-async"}
    with extra_tenants(platform, {name: {**base, "keys": [k1]}}):
        assert _post(url, body(k1["secret"]), **hdr).status_code == 202
        assert _post(url, body(k2["secret"]), **hdr).status_code == 401
        with extra_tenants(platform, {name: {**base, "keys": [k2]}}):
            assert _post(url, body(k2["secret"]), **hdr).status_code == 202
            r = _post(url, body(k1["secret"]), **hdr)  # removed: stops verifying
            assert r.status_code == 401 and r.json()["error"] == "bad_signature"
    assert _post(url, body(k2["secret"]), **hdr).status_code == 401  # tenant gone again
