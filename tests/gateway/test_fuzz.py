"""A schema-guided fuzz run against a live gateway (issue 4 acceptance): random headers, path
parameters and bodies (garbage, JSON values, mutations of a valid signed PCS) for every
operation of the OpenAPI document. No answer may be a 5xx other than the documented 503, and
every answer must be documented and match its schema (tests/gateway/test_openapi.py `check`).
Hypothesis prints the seed of a failing run (`--hypothesis-seed` reproduces it)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from infra.layout import load_layout
from tests.gateway.helpers import read_token, signed_body
from tests.gateway.test_openapi import check

pytestmark = pytest.mark.platform

LAYOUT = load_layout()
REGION = LAYOUT.regions[0]
_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
# Values an HTTP client can send (h11 refuses leading/trailing whitespace).
_header_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=140).filter(
    lambda s: s == s.strip())
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12,
)


@st.composite
def _bodies(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "json", "mutated", "valid"]))
    if kind == "bytes":
        return draw(st.binary(max_size=300))
    if kind == "json":
        return json.dumps(draw(_json)).encode()
    pcs, body = signed_body(LAYOUT.home, "default")
    if kind == "valid":
        return body
    field = draw(st.sampled_from(sorted(pcs)))
    mutated: dict[str, Any] = dict(pcs)
    if draw(st.booleans()):
        del mutated[field]
    else:
        mutated[field] = draw(_json)
    return json.dumps(mutated).encode()


_headers = st.fixed_dictionaries({}, optional={
    "X-Tenant-Id": st.sampled_from(["default", "acme", "nobody"]) | _header_text,
    "X-Request-Id": st.uuids().map(str) | _header_text,
    "Prefer": st.sampled_from(["respond-async", "wait=1"]),
})  # fmt: skip


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(body=_bodies(), headers=_headers)
def test_fuzz_submit(platform: Any, body: bytes, headers: dict[str, str]) -> None:
    headers = {**headers, "Prefer": "respond-async"} if "Prefer" not in headers else headers
    r = httpx.post(REGION.gateway_url(0) + "/v1/pcs/submit", content=body, headers=headers,
                   timeout=15)
    assert r.status_code < 500 or r.status_code == 503, r.text
    check(r, "/v1/pcs/submit", "post")


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    which=st.sampled_from(["/v1/pcs/{pcs_id}", "/v1/requests/{request_id}"]),
    param=st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E,
                                exclude_characters="/?#%"), min_size=1, max_size=80),
    who=st.sampled_from(["own", "other", "none", "garbage"]),
    tenant=st.sampled_from([None, "default", "acme", "nobody"]),
)
def test_fuzz_reads(platform: Any, which: str, param: str, who: str, tenant: str | None
                    ) -> None:  # fmt: skip
    headers: dict[str, str] = {}
    if who == "own":
        headers["Authorization"] = f"Bearer {read_token(LAYOUT.home, 'default')}"
    elif who == "other":
        headers["Authorization"] = f"Bearer {read_token(LAYOUT.home, 'acme')}"
    elif who == "garbage":
        headers["Authorization"] = "Bearer x"
    if tenant is not None:
        headers["X-Tenant-Id"] = tenant
    path = which.replace("{pcs_id}", param).replace("{request_id}", param)
    r = httpx.get(REGION.gateway_url(1) + path, headers=headers, timeout=15)
    assert r.status_code < 500 or r.status_code == 503, r.text
    check(r, which, "get")
