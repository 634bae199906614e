"""Records per CPU-second of one stream worker process (issue 5). A benchmark, not a test.

    .venv/bin/python bench/streams_worker.py [--records 30000] [--region eu-west]

Needs the running platform (`flk up`). For each signature algorithm (HMAC, Ed25519) it stops
the region's worker 0, appends `--records` distinct signed records to `flk.wal` (a backlog, as
a gateway would: headers, receive stamps, a reply address), starts the worker again through the
platform's supervisor, and measures the worker process's CPU time (user + system, from
/proc via psutil) and wall time from its first processed record until the backlog is drained.
So the figure covers the whole per-record path of the real process: Kafka fetch through Faust,
verify, dedup against RocksDB, changelog + outcome + reply produce and flush, the PostgreSQL
sink, offsets. Results: bench/results/streams_worker.json and the "Stream workers" section of
docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

from infra import apps
from infra.layout import WORKER_WEB, Region, load_layout
from infra.procs import Supervisor
from streams import walgen
from topics.catalogue import WAL
from topics.wal import ReplyTo, Stamp

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench/results/streams_worker.json"
DOC = ROOT / "docs/performance.md"
START, END = "<!-- streams_worker:start -->", "<!-- streams_worker:end -->"
TARGET = 5000  # HMAC records per worker CPU-second (issue 5)


def status(region: Region) -> dict[str, Any]:
    url = f"http://127.0.0.1:{region.port(WORKER_WEB)}/status"
    try:
        data: dict[str, Any] = httpx.get(url, timeout=2.0).json()
        return data
    except (httpx.HTTPError, ValueError):
        return {}


def run(region: Region, home: Path, tenant: str, n: int) -> dict[str, Any]:
    versions = walgen.publish(home)
    rng = random.Random(5)
    run_id = uuid.uuid4().hex[:8]
    base = int(time.time() * 1000)
    reply = ReplyTo("flk.replies", 7)  # no gateway reads partition 7 with the default 2
    records = [
        walgen.wal_record(walgen.body(tenant, rng, epoch=i), tenant=tenant, origin=region.name,
                          request_id=f"bench-{run_id}-{i}", stamp=Stamp(base + i // 10, i % 10),
                          versions=versions, reply_to=reply)
        for i in range(n)
    ]  # fmt: skip
    sup = Supervisor(load_layout().run_dir)
    svc = apps.worker(region, 0)
    sup.stop(svc.key)
    walgen.produce(region.kafka_bootstrap, WAL, records)
    sup.launch(svc)
    pid = sup.pid(svc.key)
    assert pid is not None
    proc = psutil.Process(pid)
    first: tuple[float, float] | None = None
    deadline = time.monotonic() + 600
    processed = 0.0
    while time.monotonic() < deadline:
        st = status(region)
        processed = float(st.get("processed", 0))
        cpu = proc.cpu_times()
        now = time.monotonic()
        if first is None and processed > 0:
            first = (cpu.user + cpu.system, now)
            first_processed = processed
        if processed >= n and first is not None:
            spent = cpu.user + cpu.system - first[0]
            wall = now - first[1]
            done = processed - first_processed
            return {"tenant": tenant, "records": n, "measured_records": int(done),
                    "cpu_seconds": round(spent, 3), "wall_seconds": round(wall, 3),
                    "records_per_cpu_second": round(done / spent),
                    "records_per_second": round(done / wall)}  # fmt: skip
        # Polling costs the worker CPU too (an HTTP request each): often enough to place the
        # end within 0.2 s, rarely enough to stay below 1 % of what is measured.
        time.sleep(0.2 if first is not None else 0.02)
    raise SystemExit(f"worker processed only {processed} of {n} records in 600 s")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--doc-only", action="store_true",
                    help="rewrite the docs section from the saved results, measure nothing")
    ap.add_argument("--records", type=int, default=30000)
    ap.add_argument("--region", default="eu-west")
    args = ap.parse_args()
    if args.doc_only:
        write_doc(json.loads(RESULTS.read_text(encoding="utf-8")))
        return
    layout = load_layout()
    region = layout.region(args.region)
    results = {
        "hmac": run(region, layout.home, "st-bench", args.records),
        "ed25519": run(region, layout.home, "st-ed", args.records),
    }
    report = {
        "command": f".venv/bin/python bench/streams_worker.py --records {args.records}",
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "python": platform.python_version(),
        "target_hmac_records_per_cpu_second": TARGET,
        "results": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    write_doc(report)
    print(json.dumps(report, indent=2))


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def write_doc(report: dict[str, Any]) -> None:
    r = report["results"]
    hmac_rate = r["hmac"]["records_per_cpu_second"]
    met = "met" if hmac_rate >= TARGET else "not met"
    rows = "\n".join(
        f"| {alg} | {x['measured_records']} | {x['cpu_seconds']} | "
        f"**{x['records_per_cpu_second']}** | {x['wall_seconds']} | {x['records_per_second']} |"
        for alg, x in r.items()
    )
    section = f"""{START}
## Stream workers (dedup stage, per worker process)

Command (platform running): `{report['command']}`

Machine: {report['cpu_model']}, {report['cpu_count']} CPUs shared with both regions' brokers,
MirrorMaker, PostgreSQL and the gateways; Python {report['python']}. Each run appends a backlog
of distinct signed records to `flk.wal`, restarts worker 0 and measures its process CPU time
(user + system) from the first processed record until the backlog is drained. Target:
≥ {TARGET} HMAC records per worker CPU-second — {met}.

| signature | records | CPU s | records / CPU-s | wall s | records / s |
|---|---|---|---|---|---|
{rows}

What a record costs: Faust's fetch and event machinery (~90 µs), the flk-pcs core path
(parse, signature, SPEC §3 engine; see "Core path"), a RocksDB read and a batched write, three
produced records (changelog entry, outcome, reply) through librdkafka, and a share of one
PostgreSQL upsert per batch. Table entries and outputs are produced with librdkafka and
flushed once per batch (up to `FLK_STREAM_BATCH_MAX` records): Faust's own per-key changelog
send through aiokafka measured ~250 µs per record on this machine, 2 900 records per CPU-second
before any verification. The machine is shared with other sessions' tests and benchmarks, so
a figure moves by about ±10 % from run to run (HMAC, same code: 5 262 and 5 466 in two
consecutive runs); CPU time, not wall time, is what is compared. Raw results:
`bench/results/streams_worker.json`.
{END}"""
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Performance\n"
    if START in text and END in text:
        text = text[: text.index(START)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    DOC.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
