"""The gateway's logs (issue 4: "Logs never contain a body"): one access line per submit in the
process's access log (`gateway-<k>-access.log`), and nothing of a body in it or in the
process's own log (`gateway-<k>.log`)."""

from __future__ import annotations

import secrets
import time

import httpx
import pytest

from infra.layout import Layout
from tests.gateway.helpers import signed_body

pytestmark = pytest.mark.platform


def test_each_submit_has_an_access_line_and_no_body_is_logged(platform: Layout) -> None:
    region = platform.regions[0]
    url = region.gateway_url(0) + "/v1/pcs/submit"
    marker = secrets.token_hex(16)  # in both bodies, nowhere else
    bad_rid, ok_rid = f"log-bad-{secrets.token_hex(6)}", f"log-ok-{secrets.token_hex(6)}"
    # Malformed: answered 400 after the WAL has it; a parse error must not echo the body.
    bad = httpx.post(url, content=f'{{"merkle_root": "{marker}", '.encode(), timeout=10,
                     headers={"X-Tenant-Id": "default", "X-Request-Id": bad_rid})  # fmt: skip
    assert bad.status_code == 400, bad.text
    _, body = signed_body(platform.home, "default", shard_id=f"log-{marker}")
    ok = httpx.post(url, content=body, timeout=10,
                    headers={"X-Tenant-Id": "default", "X-Request-Id": ok_rid})  # fmt: skip
    assert ok.status_code in (200, 202), ok.text

    log = region.log_dir / "gateway-0-access.log"
    deadline = time.monotonic() + 15  # access lines are flushed every second
    text = ""
    while not (bad_rid in text and ok_rid in text):
        if time.monotonic() > deadline:
            pytest.fail(f"no access line for {bad_rid} / {ok_rid} in {log} within 15 s")
        time.sleep(0.2)
        text = log.read_text(errors="replace")
    lines = {rid: [line for line in text.splitlines() if rid in line] for rid in (bad_rid, ok_rid)}
    assert len(lines[bad_rid]) == 1 and "status=400" in lines[bad_rid][0], lines
    assert len(lines[ok_rid]) == 1 and f"status={ok.status_code}" in lines[ok_rid][0], lines
    assert marker not in text, "a request body reached the gateway's access log"
    assert marker not in (region.log_dir / "gateway-0.log").read_text(errors="replace"), \
        "a request body reached the gateway's log"
