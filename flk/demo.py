"""`flk demo`: realistic signed traffic through both regions' gateways, a live view, and the
independent check at the end (flk/check.py)."""

from __future__ import annotations

import asyncio
import json
import random
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from bench import client
from bench.workload import Mix, Submission, Workload, signers
from flk.check import Ack, CheckResult, check_until
from gateway.devkeys import load_signing_keys
from infra import apps, mirror
from infra.layout import Layout

ACKED = (200, 202, 400, 401)  # the request is in the WAL (SPEC §4: verdicts come after the ack)
IN_FLIGHT = 64  # requests waiting for an answer at most (the demo paces itself down)


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    by_region: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    latencies_ms: list[float] = field(default_factory=list)
    lag_ms: dict[str, int | None] = field(default_factory=dict)
    sent: int = 0

    def record(self, region: str, label: str, ms: float) -> None:
        self.by_region[region][label] += 1
        self.latencies_ms.append(ms)

    def quantile(self, q: float) -> float:
        if not self.latencies_ms:
            return 0.0
        data = sorted(self.latencies_ms[-5000:])
        return data[min(len(data) - 1, int(q * len(data)))]


def _label(status: int, body: dict[str, object]) -> str:
    if status == 200 or status == 202:
        if body.get("status") == "pending":
            return "pending"
        if body.get("dedup_hit"):
            return "conflict" if body.get("conflict") else "duplicate"
        return "escalated" if body.get("escalated") else "accepted"
    if status in (400, 401):
        return "rejected"
    return f"http_{status}"


async def _send(pool: client.Pool, endpoint: client.Endpoint, region: str, sub: Submission,
                stats: Stats, log: TextIO) -> None:  # fmt: skip
    request = client.post("/v1/pcs/submit", sub.body, (
        ("X-Tenant-Id", sub.tenant), ("X-Request-Id", sub.request_id),
        ("Content-Type", "application/json")))  # fmt: skip
    t0 = time.monotonic()
    try:
        status, raw = await pool.send(endpoint, request)
    except client.ERRORS as exc:
        stats.record(region, f"error_{type(exc).__name__}", (time.monotonic() - t0) * 1000)
        return
    ms = (time.monotonic() - t0) * 1000
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    stats.record(region, _label(status, body), ms)
    if status in ACKED:
        log.write(json.dumps({
            "request_id": sub.request_id, "tenant": sub.tenant, "pcs_id": sub.pcs_id,
            "http_status": status, "region": region, "kind": sub.kind,
            "answer": body.get("status") or body.get("error"),
        }) + "\n")  # fmt: skip


def _lag_poller(layout: Layout, stats: Stats, stop: threading.Event) -> None:
    while not stop.is_set():
        for region in layout.regions:
            for src in layout.others(region):
                try:
                    lag = mirror.heartbeat_age_ms(region, src)
                except Exception:  # a status probe: show "-" rather than stop the demo
                    lag = None
                stats.lag_ms[f"{src.name}->{region.name}"] = lag
        stop.wait(2.0)


def _render(stats: Stats, out: TextIO, final: bool = False) -> None:
    elapsed = max(1e-6, time.monotonic() - stats.started)
    done = sum(sum(c.values()) for c in stats.by_region.values())
    lines = [f"sent {stats.sent}  answered {done}  rate {done / elapsed:,.0f}/s  "
             f"p50 {stats.quantile(0.5):.1f} ms  p99 {stats.quantile(0.99):.1f} ms"]  # fmt: skip
    for region in sorted(stats.by_region):
        c = stats.by_region[region]
        cols = ["accepted", "escalated", "duplicate", "conflict", "rejected", "pending"]
        other = sum(v for k, v in c.items() if k not in cols)
        rest = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in cols)
        lines.append(f"  {region:<8} " + "  ".join(f"{k} {c[k]}" for k in cols)
                     + (f"  other {other} ({rest})" if other else ""))  # fmt: skip
    lag = ", ".join(
        f"{k} {'-' if v is None else f'{v} ms'}" for k, v in sorted(stats.lag_ms.items())
    )
    lines.append(f"  CRR lag  {lag or '-'}")
    if out.isatty() and not final:
        out.write("\x1b[s" + "\n".join(lines) + "\x1b[u")
    elif out.isatty():
        out.write("\x1b[J" + "\n".join(lines) + "\n")
    else:
        out.write(" | ".join(lines) + "\n")
    out.flush()


async def _drive(layout: Layout, subs: list[Submission], rate: float, stats: Stats,
                 log: TextIO, out: TextIO) -> None:  # fmt: skip
    n_gateways, _ = apps.counts()
    urls = [(r.name, r.gateway_url(k)) for r in layout.regions for k in range(n_gateways)]
    rng = random.Random(7)
    # The benchmarks' lean HTTP/1.1 client: a general-purpose one spent about as much CPU per
    # request as the gateway answering it, on the same cores.
    pool = client.Pool(timeout=10.0)
    try:
        tasks: set[asyncio.Task[None]] = set()
        # The demo paces itself down rather than pile up requests the platform cannot take yet:
        # at most IN_FLIGHT requests wait for an answer at any time.
        slots = asyncio.Semaphore(IN_FLIGHT)

        async def send(url: str, region: str, sub: Submission) -> None:
            try:
                await _send(pool, client.endpoint(url), region, sub, stats, log)
            finally:
                slots.release()

        t0 = time.monotonic()
        last_render = 0.0
        for i, sub in enumerate(subs):
            delay = t0 + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            await slots.acquire()
            region, url = rng.choice(urls)
            task = asyncio.create_task(send(url, region, sub))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            stats.sent += 1
            now = time.monotonic()
            if now - last_render > (0.5 if out.isatty() else 2.0):
                _render(stats, out)
                last_render = now
        if tasks:
            await asyncio.wait(tasks)
    finally:
        pool.close()


def run(layout: Layout, *, records: int, rate: float, seed: int, mix: Mix, log_path: Path,
        check_timeout_s: float = 120.0, out: TextIO = sys.stderr) -> CheckResult:  # fmt: skip
    keys = load_signing_keys(layout.home)
    workload = Workload(signers(keys), mix=mix, seed=seed)
    out.write(f"Generating {records} signed records (tenants: {', '.join(sorted(keys))}) ...\n")
    subs = [workload.next() for _ in range(records)]
    stats = Stats()
    stop = threading.Event()
    poller = threading.Thread(target=_lag_poller, args=(layout, stats, stop), daemon=True)
    poller.start()
    out.write(f"Sending at {rate:.0f}/s through {len(layout.regions)} regions' gateways ...\n")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        stats.started = time.monotonic()
        client.run(_drive(layout, subs, rate, stats, log, out))
    stop.set()
    _render(stats, out, final=True)
    acks = [Ack(**{k: d[k] for k in ("request_id", "tenant", "pcs_id", "http_status", "region")})
            for d in map(json.loads, log_path.read_text().splitlines())]  # fmt: skip
    out.write(f"Independent check of {len(acks)} acknowledged requests in every region "
              f"(log: {log_path}) ...\n")  # fmt: skip

    def say(message: str) -> None:
        out.write(f"  {message}\n")

    return check_until(layout, acks, check_timeout_s, progress=say)
