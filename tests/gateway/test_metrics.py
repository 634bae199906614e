"""Metrics scraped before and after a known mix of requests: the deltas per
{region, tenant, status} are exactly the mix (issue 4 acceptance)."""

from __future__ import annotations

import json
import secrets
from collections import Counter

import httpx
import pytest
from flk_pcs import HmacSigner, encode_body, sign_pcs

from infra.layout import Layout
from tests.gateway.helpers import extra_tenants, new_pcs, scrape

pytestmark = pytest.mark.platform


def _submits(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], region: str
             ) -> Counter[tuple[str, str]]:  # fmt: skip
    out: Counter[tuple[str, str]] = Counter()
    for (name, labels), value in samples.items():
        d = dict(labels)
        if name == "flk_gateway_requests_total" and d["route"] == "submit" \
                and d["region"] == region:
            out[(d["tenant"], d["status"])] += int(value)
    return out


def test_metrics_deltas_equal_the_mix(platform: Layout) -> None:
    region = platform.regions[0]
    name = f"mix-{secrets.token_hex(3)}"
    secret = secrets.token_hex(16)
    tenant = {"read_token": secrets.token_urlsafe(20), "rate_per_s": 0.001, "burst": 7,
              "daily_quota": 0,
              "keys": [{"key_id": "m1", "alg": "hmac", "secret": secret, "valid_from_ms": 0}]}
    urls = [region.gateway_url(0), region.gateway_url(1)]
    with extra_tenants(platform, {name: tenant}):
        before = Counter[tuple[str, str]]()
        for url in urls:
            before += _submits(scrape(url), region.name)
        good = [encode_body(sign_pcs(new_pcs(), HmacSigner(secret))) for _ in range(2)]
        forged = [encode_body(sign_pcs(new_pcs(), HmacSigner("not-the-key"))) for _ in range(2)]
        plan: list[tuple[bytes, dict[str, str], str]] = (
            [(b"{}", {}, "400")] * 3
            + [(b" " * (1024 * 1024 + 1), {}, "413")] * 2
            + [(b, {}, "401") for b in forged]
            + [(b, {"Prefer": "respond-async"}, "202") for b in good]
            + [(b"{}", {}, "429")] * 2  # the bucket held 7 tokens
        )
        expected: Counter[tuple[str, str]] = Counter()
        for i, (body, extra, status) in enumerate(plan):
            r = httpx.post(urls[i % 2] + "/v1/pcs/submit", content=body,
                           headers={"X-Tenant-Id": name, **extra}, timeout=10)
            assert str(r.status_code) == status, (i, r.text)
            expected[(name, status)] += 1
        r = httpx.post(urls[0] + "/v1/pcs/submit", content=json.dumps({}).encode(),
                       headers={"X-Tenant-Id": f"{name}-nope"}, timeout=10)
        assert r.status_code == 401
        expected[("unknown", "401")] += 1
        after = Counter[tuple[str, str]]()
        for url in urls:
            after += _submits(scrape(url), region.name)
    delta = Counter({k: after[k] - before.get(k, 0) for k in after})
    delta = Counter({k: v for k, v in delta.items() if v})
    assert delta == expected
