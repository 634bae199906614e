"""Gateway throughput and latency (issue 4). A benchmark, not a test.

    .venv/bin/python bench/gateway.py [--region eu-west] [--seconds 10] [--connections 32]
                                      [--rates 250,500,1000] [--modes async,wait]

Needs the running platform (`flk up`). Adds a tenant `gw-bench` (HMAC key, no rate limit) to
the tenants file for the run and restores the file afterwards. Bodies are distinct signed PCS
records generated before the clock starts. The load generator is a minimal HTTP/1.1 keep-alive
client on asyncio (uvloop), one request in flight per connection.

- saturation: `--connections` closed-loop clients against ONE gateway process for `--seconds`;
  reports requests/s, status counts, latency percentiles, and requests per CPU-second of that
  gateway process (user + system time from /proc/<pid>/stat).
- fixed rates: open loop (requests are scheduled at the rate whatever the answers; latency is
  measured from the scheduled time, so a stall is not hidden), spread over both processes of
  the region; p50/p95/p99.

Modes: `async` sends `Prefer: respond-async` (gateway + WAL acknowledgement only: 202 pending);
`wait` is the full submit (WAL, then the dedup decision from the stream worker: 200).
Everything runs on the same machine (Kafka, MirrorMaker, workers, the load generator), so the
numbers are a floor for the gateway, not a ceiling.

Result: one document in the common envelope (bench/harness.py, benchmark "gateway"),
bench/results/gateway.json (or `--out`): `results.rows`, one row per measurement (mode, kind
"saturation" or "fixed_rate", offered and achieved rate, statuses, pending and error shares,
p50/p95/p99, CPU-seconds per platform process over the row from /proc, requests per gateway
CPU-second) and one raw HDR histogram per row (`histograms[row["histogram"]]`). `final_share`
is the share of final (not 202-pending, not error) answers over the `wait` rows.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import yaml
from flk_pcs import HmacSigner, build_pcs, encode_body, sign_pcs
from hdrh.histogram import HdrHistogram

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import client, harness  # noqa: E402
from gateway.devkeys import tenants_path  # noqa: E402
from gateway.tenants import write_tenants  # noqa: E402
from infra import apps  # noqa: E402
from infra.layout import Layout, Region, load_layout  # noqa: E402
from infra.procs import Supervisor  # noqa: E402

TENANT = "gw-bench"


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks  # utime + stime


def _bodies(n: int, secret: str) -> list[bytes]:
    signer = HmacSigner(secret)
    out = []
    for _ in range(n):
        pcs = build_pcs(merkle_root=secrets.token_hex(32), epoch=1, shard_id="bench",
                        scales=[2, 4, 8, 16], N_j={"2": 3, "4": 9, "8": 27, "16": 81},
                        coh_star=0.8, r=0.5)
        out.append(encode_body(sign_pcs(pcs, signer)))
    return out


def _request(body: bytes, mode: str) -> bytes:
    headers = [("X-Tenant-Id", TENANT), ("Content-Type", "application/json")]
    if mode == "async":
        headers.append(("Prefer", "respond-async"))
    return client.post("/v1/pcs/submit", body, headers)


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _summary(lat: list[float], statuses: Counter[int], seconds: float) -> dict[str, Any]:
    n = len(lat)
    pending = statuses.get(202, 0)
    errors = sum(v for k, v in statuses.items() if k >= 500)
    return {
        "requests": n, "seconds": round(seconds, 2),
        "requests_per_second": round(n / seconds), "achieved_rate": round(n / seconds, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "pending_share": round(pending / n, 4) if n else None,
        "error_share": round(errors / n, 4) if n else None,
        "p50_ms": round(_pct(lat, 50) * 1000, 2), "p95_ms": round(_pct(lat, 95) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2), "max_ms": round(max(lat, default=0) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2) if lat else None,
    }  # fmt: skip


def _histogram(lat: list[float]) -> HdrHistogram:
    h = harness.histogram()
    for x in lat:
        h.record_value(max(1, int(x * 1e6)))
    return h


def _gateway_cpu(cpu: dict[str, float], region: Region) -> float:
    return round(sum(v for k, v in cpu.items() if k.startswith(f"{region.name}-gateway")), 2)


async def saturation(region: Region, requests: list[bytes], connections: int, seconds: float,
                     index: int = 0) -> tuple[list[float], Counter[int], float]:  # fmt: skip
    """Closed loop: `connections` clients, one request in flight each, for `seconds`."""
    port = region.port(80 + index)
    queue = iter(requests)
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    stop_at = time.monotonic() + seconds

    async def one_client() -> None:
        conn = client.Conn(port)
        try:
            while time.monotonic() < stop_at:
                request = next(queue, None)
                if request is None:
                    return
                t0 = time.monotonic()
                try:
                    status, _ = await conn.send(request)
                except client.ERRORS:
                    conn.close()
                    status = 599
                lat.append(time.monotonic() - t0)
                statuses[status] += 1
        finally:
            conn.close()

    t0 = time.monotonic()
    await asyncio.gather(*(one_client() for _ in range(connections)))
    return lat, statuses, time.monotonic() - t0


async def fixed_rate(region: Region, requests: list[bytes], rate: float, seconds: float,
                     n_gateways: int = 2) -> tuple[list[float], Counter[int], float]:  # fmt: skip
    """Open loop at `rate`, spread over the region's `n_gateways` processes."""
    n = min(len(requests), int(rate * seconds))
    eps = [("127.0.0.1", region.port(80 + k)) for k in range(n_gateways)]
    pool = client.Pool()
    for ep in eps:
        pool.warm(ep, 64)
    lat: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(i: int, due: float) -> None:
        try:
            status, _ = await pool.send(eps[i % n_gateways], requests[i])
        except client.ERRORS:
            status = 599
        lat.append(time.monotonic() - due)  # from the scheduled time: no coordinated omission
        statuses[status] += 1

    t0 = time.monotonic()
    try:
        await client.open_loop([i / rate for i in range(n)], one, start=t0)
    finally:
        pool.close()
    return lat, statuses, time.monotonic() - t0


def _with_tenant(layout: Layout, secret: str) -> bytes:
    path = tenants_path(layout.home)
    original = path.read_bytes()
    doc = yaml.safe_load(original)
    doc["tenants"][TENANT] = {
        "read_token": secrets.token_urlsafe(20), "rate_per_s": 1e6, "burst": 1_000_000,
        "daily_quota": 0,
        "keys": [{"key_id": "bench-1", "alg": "hmac", "secret": secret, "valid_from_ms": 0}],
    }  # fmt: skip
    write_tenants(path, doc)
    return original


def _wait_drained(region: Region, timeout: float = 180.0) -> int:
    """Until the region's dedup stage has caught up (so `wait` runs do not measure a backlog
    left by the previous run); returns the lag left."""
    deadline = time.monotonic() + timeout
    lag = 0
    while time.monotonic() < deadline:
        lag = int(httpx.get(region.gateway_url(0) + "/readyz").json().get("dedup_lag") or 0)
        if lag < 100:
            break
        time.sleep(1.0)
    return lag


def _wait_tenant(region: Region, n_gw: int) -> None:
    """Until every gateway process the run uses knows the bench tenant (a malformed probe is
    400 once it does, 401 unknown_tenant before)."""
    for _ in range(100):
        codes = [httpx.post(region.gateway_url(k) + "/v1/pcs/submit", content=b"{}",
                            headers={"X-Tenant-Id": TENANT}).status_code for k in range(n_gw)]
        if all(code == 400 for code in codes):
            return
        time.sleep(0.2)
    raise SystemExit("the gateways did not load the bench tenant")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--region", default="eu-west")
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rates", default="250,500,1000")
    ap.add_argument("--modes", default="wait,async")
    ap.add_argument("--out", type=Path, default=None, help="result file (default bench/results/)")
    ap.add_argument("--settle", type=float, default=0.0, metavar="CORES",
                    help="first wait until the platform uses fewer cores than this (0: no wait)")
    args = ap.parse_args()
    layout = load_layout()
    idle = harness.settle(layout, args.settle)
    region = layout.region(args.region)
    pid = Supervisor(layout.run_dir).pid(f"{region.name}-gateway-0")
    if pid is None:
        raise SystemExit(f"{region.name}-gateway-0 is not running; start the platform (flk up)")
    n_gw = min(2, apps.counts()[0])
    secret = secrets.token_hex(16)
    rates = [float(r) for r in args.rates.split(",") if r]
    modes = [m for m in args.modes.split(",") if m]
    need = int(max([4000 * args.seconds] + [r * args.seconds for r in rates]))
    print(f"signing {need} bodies ...", file=sys.stderr)
    bodies = _bodies(need, secret)
    original = _with_tenant(layout, secret)
    rows: list[dict[str, Any]] = []
    hists: dict[str, HdrHistogram] = {}
    total = harness.CpuMeter(layout)
    meter = harness.CpuMeter(layout)

    def row(mode: str, kind: str, name: str, measured: tuple[list[float], Counter[int], float],
            cpu: dict[str, float], **extra: Any) -> dict[str, Any]:  # fmt: skip
        lat, statuses, wall = measured
        out = {"mode": mode, "kind": kind, "histogram": name, **extra,
               **_summary(lat, statuses, wall), "cpu_seconds": cpu}  # fmt: skip
        hists[name] = _histogram(lat)
        rows.append(out)
        brief = {k: v for k, v in out.items() if k != "cpu_seconds"}
        print(f"[{mode}] {name}: {json.dumps(brief)}", file=sys.stderr)
        return out

    try:
        _wait_tenant(region, n_gw)
        total.begin()
        for mode in modes:
            if mode == "wait":
                print(f"dedup lag before the wait runs: {_wait_drained(region)}", file=sys.stderr)
            requests = [_request(b, mode) for b in bodies]
            meter.begin()
            cpu0 = _cpu_seconds(pid)
            sat = client.run(saturation(region, requests, args.connections, args.seconds))
            one_cpu = _cpu_seconds(pid) - cpu0
            cpu = meter.end()
            row(mode, "saturation", f"{mode}.saturation", sat, cpu, gateways=1,
                connections=args.connections, offered_rate=None,
                gateway_cpu_seconds=round(one_cpu, 2),
                requests_per_gateway_cpu_second=round(len(sat[0]) / one_cpu) if one_cpu else None)
            for rate in rates:
                if mode == "wait":
                    fresh = [_request(b, mode) for b in _bodies(int(rate * args.seconds), secret)]
                    _wait_drained(region)
                else:
                    fresh = requests
                meter.begin()
                fixed = client.run(fixed_rate(region, fresh, rate, args.seconds, n_gw))
                cpu = meter.end()
                gw_cpu = _gateway_cpu(cpu, region)
                row(mode, "fixed_rate", f"{mode}.fixed.{rate:g}", fixed, cpu, gateways=n_gw,
                    offered_rate=rate, target_rate=rate, gateway_cpu_seconds=gw_cpu,
                    requests_per_gateway_cpu_second=round(len(fixed[0]) / gw_cpu)
                    if gw_cpu else None)  # fmt: skip
        cpu_total = total.end()
    finally:
        tmp = tenants_path(layout.home).with_name(".bench-restore.tmp")
        tmp.write_bytes(original)
        os.chmod(tmp, 0o600)
        os.replace(tmp, tenants_path(layout.home))
    statuses: Counter[str] = Counter()
    final = pending = errors = 0
    wait_final = wait_n = 0
    for r in rows:
        for k, v in r["statuses"].items():
            statuses[k] += v
            code = int(k)
            is_final = code != 202 and code < 500
            final += v if is_final else 0
            pending += v if code == 202 else 0
            errors += v if code >= 500 else 0
            if r["mode"] == "wait":
                wait_n += v
                wait_final += v if is_final else 0
    result = harness.envelope(
        benchmark="gateway", profile=",".join(modes),
        command=harness.gateways_prefix() + ".venv/bin/python bench/gateway.py "
        + " ".join(sys.argv[1:]),
        params={"region": region.name, "seconds": args.seconds, "connections": args.connections,
                "rates": rates, "modes": modes, "fixed_rate_gateways": n_gw, "tenant": TENANT},
        offered_rate=None, achieved_rate=None,
        final_share=round(wait_final / wait_n, 4) if wait_n else None,
        cpu_seconds=cpu_total, histograms=hists,
        answers={"final": final, "pending": pending, "errors": errors,
                 "by_status": dict(statuses)},
        results={"rows": rows, "region": region.name, "idle_cores_before": idle,
                 "aims": {"requests_per_gateway_cpu_second": 3000, "p99_ms_at_1000_rps": 50}},
    )  # fmt: skip
    path = args.out or harness.RESULTS / "gateway.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    for r in rows:
        print(f"{r['histogram']}: {r['requests_per_second']} req/s, p50/p95/p99 "
              f"{r['p50_ms']}/{r['p95_ms']}/{r['p99_ms']} ms, "
              f"{r['requests_per_gateway_cpu_second']} req per gateway CPU-s")  # fmt: skip
    print(f"→ {path}")


if __name__ == "__main__":
    main()
