"""End-to-end benchmark through the gateways (issue 7): submit → outcome latency in the origin
region (the gateway's answer carries the dedup decision) and in the mirror region (the outcome
record arriving in its `flk.outcomes`), offered vs achieved rate, share of final answers, and
CPU-seconds per platform process.

    .venv/bin/python -m bench.e2e --profile steady [--rate 1000] [--seconds 20]

Profiles: smoke (CI: 200 submissions at 40/s), steady (unique keys at --rate), burst (2× the
rate for 2 s, then idle for 2 s: the same mean rate; it was 3×, a mean of 1.5×, before 26 Nov),
dup30 (30 % exact duplicates), multitenant (every development tenant, HMAC and Ed25519
alike), geo (traffic split over both regions). Open loop: each request
is scheduled at its time whatever the answers, and latency counts from the scheduled time, so a
stall is not hidden; the client is bench/client.py (keep-alive HTTP/1.1 on uvloop, requests
encoded before the clock starts). Results: bench/results/e2e-<profile>.json (envelope:
bench/harness.py).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from confluent_kafka import Consumer, TopicPartition

from bench import client, harness
from bench.workload import Mix, Submission, Workload, signers
from gateway.devkeys import load_signing_keys
from infra import apps
from infra.layout import Layout, Region, load_layout
from schemas.codec import codec
from topics.catalogue import OUTCOMES


@dataclass(frozen=True)
class Profile:
    name: str
    mix: Mix
    regions: str  # "origin" | "both"
    burst: bool = False
    rate: float | None = None
    seconds: float | None = None
    tenants: tuple[str, ...] = ("default",)


PROFILES = {
    "smoke": Profile("smoke", Mix(0.1, 0.0, 0.0, 0.0), "origin", rate=40, seconds=5),
    "steady": Profile("steady", Mix(0, 0, 0, 0), "origin"),
    "burst": Profile("burst", Mix(0, 0, 0, 0), "origin", burst=True),
    "dup30": Profile("dup30", Mix(0.30, 0, 0, 0), "origin"),
    "multitenant": Profile(
        "multitenant", Mix(0.05, 0.02, 0.02, 0.01), "origin", tenants=("default", "acme")
    ),
    "geo": Profile("geo", Mix(0.05, 0.02, 0, 0), "both", tenants=("default", "acme")),
}


class MirrorWatch(threading.Thread):
    """Arrival times of outcome records (by winner request id) in one region's flk.outcomes."""

    def __init__(self, region: Region) -> None:
        super().__init__(daemon=True)
        self.region = region
        self.arrivals: dict[str, float] = {}
        self.ready = threading.Event()
        self.stop = threading.Event()

    def run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.region.kafka_bootstrap,
                "group.id": "bench-e2e",
                "enable.auto.commit": False,
                "fetch.wait.max.ms": 200,
            }
        )
        meta = consumer.list_topics(OUTCOMES, timeout=10).topics[OUTCOMES]
        parts = []
        for p in meta.partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(OUTCOMES, p), timeout=10)
            parts.append(TopicPartition(OUTCOMES, p, high))
        consumer.assign(parts)
        self.ready.set()
        decode = codec("outcome").decode
        while not self.stop.is_set():
            msg = consumer.poll(0.1)
            if msg is None or msg.error() or msg.value() is None:
                continue
            value = msg.value()
            assert value is not None
            rid = decode(value)["winner_request_id"]
            self.arrivals.setdefault(rid, time.time())
        consumer.close()


def _requests(subs: list[Submission]) -> list[bytes]:
    """Every submission as HTTP bytes, encoded before the clock starts."""
    return [
        client.post(
            "/v1/pcs/submit",
            sub.body,
            (
                ("X-Tenant-Id", sub.tenant),
                ("X-Request-Id", sub.request_id),
                ("Content-Type", "application/json"),
            ),
        )
        for sub in subs
    ]


async def _drive(
    endpoints: list[tuple[str, client.Endpoint]],
    requests: list[bytes],
    schedule: list[float],
    answers: list[Any],
) -> None:
    pool = client.Pool(timeout=30)
    t0 = time.monotonic()
    wall0 = time.time()

    async def one(i: int, due: float) -> None:
        region, ep = endpoints[i % len(endpoints)]
        try:
            status, body = await pool.send(ep, requests[i])
        except client.ERRORS as exc:
            answers[i] = (region, "error", type(exc).__name__, time.monotonic() - due, 0.0)
            return
        latency = time.monotonic() - due
        try:
            doc = orjson.loads(body)
        except orjson.JSONDecodeError:
            doc = None
        pending = isinstance(doc, dict) and doc.get("status") == "pending"
        answers[i] = (
            region,
            status,
            "pending" if pending else "final",
            latency,
            wall0 + schedule[i],
        )

    try:
        await client.open_loop(schedule, one, start=t0)
    finally:
        pool.close()


def run(layout: Layout, profile: Profile, rate: float, seconds: float) -> dict[str, Any]:
    keys = load_signing_keys(layout.home)
    tenant_keys = {t: keys[t] for t in profile.tenants if t in keys}
    workload = Workload(signers(tenant_keys), mix=profile.mix, seed=int(time.time()))
    n = max(1, int(rate * seconds))
    print(f"[{profile.name}] generating {n} signed submissions ...", file=sys.stderr)
    subs = [workload.next() for _ in range(n)]
    if profile.burst:  # 2 s at 2× rate, 2 s idle: the same mean rate
        per_burst = int(rate * 2 * 2)
        schedule = [(i // per_burst) * 4 + (i % per_burst) / (rate * 2) for i in range(n)]
    else:
        schedule = [i / rate for i in range(n)]
    origin = layout.regions[0]
    regions = list(layout.regions) if profile.regions == "both" else [origin]
    n_gw, _ = apps.counts()
    urls = [(r.name, r.gateway_url(k)) for r in regions for k in range(n_gw)]
    endpoints = [(name, client.endpoint(url)) for name, url in urls]
    requests = _requests(subs)
    watch = MirrorWatch(layout.others(origin)[0]) if len(layout.regions) > 1 else None
    if watch:
        watch.start()
        watch.ready.wait(30)
    meter = harness.CpuMeter(layout)
    answers: list[Any] = [None] * n
    print(
        f"[{profile.name}] offering {rate:.0f}/s for {seconds:.0f} s to "
        f"{len(urls)} gateway processes ...",
        file=sys.stderr,
    )
    meter.begin()
    t0 = time.monotonic()
    client.run(_drive(endpoints, requests, schedule, answers))
    elapsed = time.monotonic() - t0
    cpu = meter.end()
    if watch:
        time.sleep(3)  # let the mirror catch up before reading its arrivals
        watch.stop.set()
    origin_h, mirror_h = harness.histogram(), harness.histogram()
    statuses: Counter[str] = Counter()
    final = pending = errors = 0
    for i, (region, status, kind, latency_s, sent_wall) in enumerate(answers):
        statuses[str(status)] += 1
        if status == "error" or status == 429 or status >= 500:
            errors += 1  # no answer, or refused (429, 503 overloaded/backpressure): not final
            continue
        if kind == "pending":
            pending += 1
        else:
            final += 1
            origin_h.record_value(max(1, int(latency_s * 1e6)))
        if watch and region == origin.name and subs[i].request_id in watch.arrivals:
            mirror_h.record_value(
                max(1, int((watch.arrivals[subs[i].request_id] - sent_wall) * 1e6))
            )
    answered = final + pending
    hist = {"origin_answer": origin_h}
    if watch:
        hist["mirror_outcome"] = mirror_h
    return harness.envelope(
        benchmark="e2e",
        profile=profile.name,
        command=(
            harness.gateways_prefix()
            + f"python -m bench.e2e --profile {profile.name} --rate {rate:g} --seconds {seconds:g}"
        ),
        params={
            "rate": rate,
            "seconds": seconds,
            "mix": vars(profile.mix),
            "regions": [r.name for r in regions],
            "gateways": len(urls),
            "tenants": list(tenant_keys),
        },
        offered_rate=round(n / (schedule[-1] or 1), 1),
        achieved_rate=round(answered / elapsed, 1),
        final_share=round(final / n, 4),
        cpu_seconds=cpu,
        histograms=hist,
        answers={"final": final, "pending": pending, "errors": errors, "by_status": dict(statuses)},
        results={
            "submissions": n,
            "elapsed_s": round(elapsed, 2),
            "gateway_cpu_s": round(sum(v for k, v in cpu.items() if "gateway" in k), 2),
            "worker_cpu_s": round(sum(v for k, v in cpu.items() if "worker" in k), 2),
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="steady")
    ap.add_argument("--rate", type=float, default=None, help="offered submissions per second")
    ap.add_argument("--seconds", type=float, default=None)
    ap.add_argument("--out", type=Path, default=None, help="result file (default bench/results/)")
    ap.add_argument("--settle", type=float, default=0.0, metavar="CORES",
                    help="first wait until the platform uses fewer cores than this (0: no wait)")
    args = ap.parse_args()
    profile = PROFILES[args.profile]
    rate = args.rate or profile.rate or 500.0
    seconds = args.seconds or profile.seconds or 20.0
    layout = load_layout()
    idle = harness.settle(layout, args.settle)
    result = run(layout, profile, rate, seconds)
    result["results"]["idle_cores_before"] = idle
    if args.settle:
        result["command"] += f" --settle {args.settle:g}"
    if args.out:
        path = args.out
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    else:
        path = harness.write(result, f"e2e-{profile.name}")
    lat = result["latency_ms"]
    print(
        f"[{profile.name}] offered {result['offered_rate']}/s achieved "
        f"{result['achieved_rate']}/s final {result['final_share']:.2%}; "
        f"origin {lat['origin_answer']}; mirror {lat.get('mirror_outcome')} → {path}"
    )


if __name__ == "__main__":
    main()
