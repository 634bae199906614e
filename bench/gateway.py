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
numbers are a floor for the gateway, not a ceiling. Results: bench/results/gateway.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import uvloop
import yaml
from flk_pcs import HmacSigner, build_pcs, encode_body, sign_pcs

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gateway.devkeys import tenants_path  # noqa: E402
from gateway.tenants import write_tenants  # noqa: E402
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
    prefer = b"Prefer: respond-async\r\n" if mode == "async" else b""
    return (b"POST /v1/pcs/submit HTTP/1.1\r\nHost: bench\r\nX-Tenant-Id: " + TENANT.encode()
            + b"\r\nContent-Type: application/json\r\n" + prefer
            + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)


class Conn:
    def __init__(self, port: int) -> None:
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def send(self, request: bytes) -> int:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.port)
        assert self.reader is not None
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _pct(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]


def _summary(lat: list[float], statuses: Counter[int], seconds: float) -> dict[str, Any]:
    return {
        "requests": len(lat), "seconds": round(seconds, 2),
        "requests_per_second": round(len(lat) / seconds),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "p50_ms": round(_pct(lat, 50) * 1000, 2), "p95_ms": round(_pct(lat, 95) * 1000, 2),
        "p99_ms": round(_pct(lat, 99) * 1000, 2), "max_ms": round(max(lat) * 1000, 2),
        "mean_ms": round(statistics.fmean(lat) * 1000, 2),
    }  # fmt: skip


async def saturation(region: Region, pid: int, bodies: list[bytes], mode: str,
                     connections: int, seconds: float, index: int = 0
                     ) -> dict[str, Any]:  # fmt: skip
    port = region.port(80 + index)
    queue = iter(bodies)
    lat: list[float] = []
    statuses: Counter[int] = Counter()
    stop_at = 0.0

    async def client() -> None:
        conn = Conn(port)
        try:
            while time.perf_counter() < stop_at:
                body = next(queue, None)
                if body is None:
                    return
                t0 = time.perf_counter()
                status = await conn.send(_request(body, mode))
                lat.append(time.perf_counter() - t0)
                statuses[status] += 1
        finally:
            conn.close()

    cpu0, t0 = _cpu_seconds(pid), time.perf_counter()
    stop_at = t0 + seconds
    await asyncio.gather(*(client() for _ in range(connections)))
    wall, cpu = time.perf_counter() - t0, _cpu_seconds(pid) - cpu0
    out = _summary(lat, statuses, wall)
    out.update(connections=connections, gateway_cpu_seconds=round(cpu, 2),
               requests_per_gateway_cpu_second=round(len(lat) / cpu) if cpu else None)
    return out


async def fixed_rate(region: Region, bodies: list[bytes], mode: str, rate: float,
                     seconds: float, n_gateways: int = 2) -> dict[str, Any]:  # fmt: skip
    n = min(len(bodies), int(rate * seconds))
    free: list[asyncio.Queue[Conn]] = []
    for k in range(n_gateways):
        q: asyncio.Queue[Conn] = asyncio.Queue()
        for _ in range(64):
            q.put_nowait(Conn(region.port(80 + k)))
        free.append(q)
    lat: list[float] = []
    statuses: Counter[int] = Counter()

    async def one(i: int, due: float) -> None:
        q = free[i % n_gateways]
        # Open loop: a request never waits for a free connection (that would hide latency).
        conn = q.get_nowait() if not q.empty() else Conn(region.port(80 + i % n_gateways))
        try:
            status = await conn.send(_request(bodies[i], mode))
        except (OSError, asyncio.IncompleteReadError):
            conn.close()
            conn = Conn(conn.port)
            status = 599
        q.put_nowait(conn)
        lat.append(time.perf_counter() - due)  # from the scheduled time: no coordinated omission
        statuses[status] += 1

    tasks = []
    t0 = time.perf_counter()
    for i in range(n):
        due = t0 + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, due)))
    await asyncio.gather(*tasks)
    for q in free:
        while not q.empty():
            q.get_nowait().close()
    out = _summary(lat, statuses, time.perf_counter() - t0)
    out["target_rate"] = rate
    return out


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


def _wait_tenant(region: Region) -> None:
    probe = b"{}"
    for _ in range(100):
        r = httpx.post(region.gateway_url(0) + "/v1/pcs/submit", content=probe,
                       headers={"X-Tenant-Id": TENANT})
        r1 = httpx.post(region.gateway_url(1) + "/v1/pcs/submit", content=probe,
                        headers={"X-Tenant-Id": TENANT})
        if r.status_code == 400 and r1.status_code == 400:
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
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "gateway.json"))
    args = ap.parse_args()
    layout = load_layout()
    region = layout.region(args.region)
    pid = Supervisor(layout.run_dir).pid(f"{region.name}-gateway-0")
    if pid is None:
        raise SystemExit(f"{region.name}-gateway-0 is not running; start the platform (flk up)")
    secret = secrets.token_hex(16)
    rates = [float(r) for r in args.rates.split(",") if r]
    modes = [m for m in args.modes.split(",") if m]
    need = int(max([4000 * args.seconds] + [r * args.seconds for r in rates]))
    print(f"signing {need} bodies ...", file=sys.stderr)
    bodies = _bodies(need, secret)
    original = _with_tenant(layout, secret)
    results: dict[str, Any] = {}
    try:
        _wait_tenant(region)
        uvloop.install()
        for mode in modes:
            if mode == "wait":
                print(f"dedup lag before the wait runs: {_wait_drained(region)}", file=sys.stderr)
            sat = asyncio.run(saturation(region, pid, bodies, mode, args.connections,
                                         args.seconds))
            print(f"[{mode}] saturation: {json.dumps(sat)}", file=sys.stderr)
            fixed = {}
            for rate in rates:
                fresh = _bodies(int(rate * args.seconds), secret) if mode == "wait" else bodies
                if mode == "wait":
                    _wait_drained(region)
                res = asyncio.run(fixed_rate(region, fresh, mode, rate, args.seconds))
                print(f"[{mode}] {rate:.0f} req/s: {json.dumps(res)}", file=sys.stderr)
                fixed[str(int(rate))] = res
            results[mode] = {"saturation_one_process": sat, "fixed_rate_two_processes": fixed}
    finally:
        tmp = tenants_path(layout.home).with_name(".bench-restore.tmp")
        tmp.write_bytes(original)
        os.chmod(tmp, 0o600)
        os.replace(tmp, tenants_path(layout.home))
    report = {
        "command": "bench/gateway.py " + " ".join(sys.argv[1:]),
        "cpu_count": os.cpu_count(), "python": platform.python_version(),
        "load_average_at_end": list(os.getloadavg()),
        "region": region.name, "seconds": args.seconds,
        "aims": {"requests_per_gateway_cpu_second": 3000, "p99_ms_at_1000_rps": 50},
        "results": results,
    }  # fmt: skip
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
