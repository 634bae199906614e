"""WAL before verdict when the broker fails (SPEC §5), on a scratch platform instance (its own
FLK_HOME and port block, one region) so that the shared platform is never disturbed:

- the broker killed (kill -9) under load: every request that got a verdict (2xx/4xx) is in the
  WAL after the broker restarts;
- the broker stopped: a malformed body gets 503 + Retry-After, not 400; after the restart 400.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from flk.config import Config
from infra.layout import Layout, load_layout
from infra.procs import Supervisor
from tests.conftest import FLK, SCRATCH_WAL_OUTAGE, scratch_env
from tests.gateway.helpers import signed_body
from topics.wal import WalHeaders

pytestmark = [pytest.mark.platform, pytest.mark.slow]


def _up(env: dict[str, str]) -> None:
    result = subprocess.run([FLK, "up"], env=env, capture_output=True, text=True, timeout=300,
                            check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]


def _all_wal_request_ids(layout: Layout) -> set[str]:
    region = layout.regions[0]
    c = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "flk-test-unused",
                  "enable.auto.commit": False})
    found: set[str] = set()
    try:
        parts = c.list_topics("flk.wal", timeout=10).topics["flk.wal"].partitions
        ends = {p: c.get_watermark_offsets(TopicPartition("flk.wal", p), timeout=10)[1]
                for p in parts}
        c.assign([TopicPartition("flk.wal", p, 0) for p in parts])
        done: set[int] = {p for p, end in ends.items() if end == 0}
        deadline = time.monotonic() + 60
        while len(done) < len(parts) and time.monotonic() < deadline:
            for msg in c.consume(1000, timeout=0.5):
                if msg.error() is not None:
                    continue
                found.add(WalHeaders.decode(msg.headers()).request_id)  # type: ignore[arg-type]
                part, offset = msg.partition() or 0, msg.offset() or 0
                if offset + 1 >= ends[part]:
                    done.add(part)
    finally:
        c.close()
    return found


def _wait_ready(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, "the gateway did not become ready"
        time.sleep(0.3)


def test_broker_failures_never_lose_a_verdict(scratch_home: Path) -> None:
    env = scratch_env(scratch_home, SCRATCH_WAL_OUTAGE, regions="eu-west")
    env.update({"FLK_WORKERS": "0", "FLK_GATEWAYS": "1"})
    layout = load_layout(Config(None, environ=env))
    region = layout.regions[0]
    url = region.gateway_url(0)
    sup = Supervisor(layout.run_dir)
    from infra import platform as plat

    try:
        _up(env)
        # --- kill -9 under load -----------------------------------------------------------
        verdicts: dict[str, int] = {}
        stop = threading.Event()
        lock = threading.Lock()

        def load(n: int) -> None:
            with httpx.Client(timeout=10) as http:
                i = 0
                while not stop.is_set():
                    rid = f"load-{n}-{i}-{uuid.uuid4().hex[:8]}"
                    body = signed_body(layout.home, "default")[1] if i % 2 else b"{bad"
                    try:
                        r = http.post(url + "/v1/pcs/submit", content=body,
                                      headers={"X-Request-Id": rid, "Prefer": "respond-async"})
                    except httpx.HTTPError:
                        time.sleep(0.05)
                        continue
                    with lock:
                        verdicts[rid] = r.status_code
                    i += 1

        threads = [threading.Thread(target=load, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        # Under load until enough verdicts are in (a slow, shared CI machine needs longer).
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with lock:
                if sum(1 for s in verdicts.values() if s < 500) >= 40:
                    break
            time.sleep(0.1)
        assert sup.kill(f"{region.name}-kafka")
        time.sleep(3.0)
        stop.set()
        for t in threads:
            t.join(30)
        statuses = set(verdicts.values())
        answered = {rid for rid, s in verdicts.items() if s < 500}
        assert len(answered) > 20, statuses
        assert 503 in statuses, statuses  # the dead broker was noticed
        assert statuses <= {202, 400, 503}, statuses
        _up(env)  # restarts the broker
        in_wal = _all_wal_request_ids(layout)
        lost = answered - in_wal
        assert lost == set(), f"{len(lost)} of {len(answered)} answered requests not in the WAL"
        print(f"kill -9 under load: {len(answered)} verdicts, all in the WAL; "
              f"{len(verdicts) - len(answered)} got 503")

        # --- broker stopped: 503, not 400 --------------------------------------------------
        _wait_ready(url)
        assert sup.stop(f"{region.name}-kafka")
        t0 = time.monotonic()
        r = httpx.post(url + "/v1/pcs/submit", content=b"{malformed", timeout=15)
        took = time.monotonic() - t0
        assert r.status_code == 503, r.text
        assert r.json()["error"] == "wal_unavailable" and int(r.headers["retry-after"]) >= 1
        assert took < 4.0, f"503 took {took:.1f} s (request budget 4 s)"
        deadline = time.monotonic() + 10
        while httpx.get(url + "/readyz").status_code != 503:
            assert time.monotonic() < deadline, "readyz stayed green without a broker"
            time.sleep(0.3)
        _up(env)
        _wait_ready(url)
        r = httpx.post(url + "/v1/pcs/submit", content=b"{malformed", timeout=15)
        assert r.status_code == 400 and r.json()["error"] == "malformed_json"
    finally:
        plat.down(layout)
