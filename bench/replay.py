"""Replay throughput (issue 7, no HTTP): `streams.replay.replay` — the code `flk replay` runs —
over a region's existing WAL (`flk.wal` and its mirrors), in this process.

    .venv/bin/python -m bench.replay [--region eu-west] [--last N] [--min-records 50000]

Needs the running platform. Without `--last` the whole WAL of the region is replayed (as
`flk replay --region R` does); `--last N` starts at the WAL record time (`--from-time`) from
which about N records remain, for a short run. If the region's WAL holds fewer than
`--min-records` records, the difference is first appended to `flk.wal` with streams/walgen.py
(distinct signed HMAC records, as a gateway writes them; the live workers process them too).

Measured: records replayed, seconds (the replay call: every partition read, decided and its
outcomes produced and flushed), records/s, and the CPU-seconds of this process (the replay runs
in-process: the `load-generator` entry of harness.CpuMeter; librdkafka's threads included).
The run's side topic (`flk.replay.<run id>.outcomes`) is deleted afterwards unless
`--keep-side-topic`. Result: bench/results/replay.json (envelope: bench/harness.py).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from bench import harness
from infra import kafka
from infra.layout import Layout, Region, load_layout
from streams import replay as rp
from streams import walgen
from topics.catalogue import WAL, WAL_PARTITIONS
from topics.wal import ReplyTo, Stamp

TARGET = 10_000  # records/s (issue 7)
TENANT = "st-bench"


def _tps(layout: Layout, region: Region) -> list[TopicPartition]:
    return [
        TopicPartition(t, p)
        for t in rp.source_topics(layout, region)
        for p in range(WAL_PARTITIONS)
    ]


def count_from(consumer: Consumer, tps: list[TopicPartition], from_ms: int | None) -> int:
    """Records of `tps` a replay from `from_ms` would read (the bounds of streams.replay)."""
    total = 0
    starts: dict[tuple[str, int], int] = {}
    if from_ms is not None:
        found = consumer.offsets_for_times(
            [TopicPartition(tp.topic, tp.partition, from_ms) for tp in tps], timeout=10
        )
        starts = {(f.topic, f.partition): f.offset for f in found}
    for tp in tps:
        low, high = consumer.get_watermark_offsets(tp, timeout=10)
        start = low
        if from_ms is not None:
            off = starts[(tp.topic, tp.partition)]
            start = high if off < 0 else max(low, off)
        total += max(0, high - start)
    return total


def from_ms_for_last(consumer: Consumer, tps: list[TopicPartition], n: int) -> int:
    """The latest record time from which at least `n` records remain (binary search)."""
    lo, hi = 0, int(time.time() * 1000) + 1
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if count_from(consumer, tps, mid) >= n:
            lo = mid
        else:
            hi = mid
    return lo


def append(region: Region, home: Path, n: int) -> int:
    """Append `n` distinct signed records to the region's `flk.wal` (as streams_worker.py)."""
    versions = walgen.publish(home)
    rng = random.Random(7)
    run_id = uuid.uuid4().hex[:8]
    base = int(time.time() * 1000)
    reply = ReplyTo("flk.replies", 7)  # no gateway reads partition 7 with the default 2
    records = (
        walgen.wal_record(
            walgen.body(TENANT, rng, epoch=i),
            tenant=TENANT,
            origin=region.name,
            request_id=f"replay-bench-{run_id}-{i}",
            stamp=Stamp(base + i // 10, i % 10),
            versions=versions,
            reply_to=reply,
        )
        for i in range(n)
    )
    return walgen.produce(region.kafka_bootstrap, WAL, records)


def command(args: argparse.Namespace) -> str:
    cmd = f"python -m bench.replay --region {args.region}"
    if args.last is not None:
        cmd += f" --last {args.last}"
    if args.min_records != 50_000:
        cmd += f" --min-records {args.min_records}"
    return cmd


def run(layout: Layout, region: Region, args: argparse.Namespace) -> dict[str, Any]:
    tps = _tps(layout, region)
    probe = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "bench-replay"})
    try:
        held = count_from(probe, tps, None)
        appended = 0
        if held < args.min_records:
            print(f"WAL holds {held} records; appending {args.min_records - held}", file=sys.stderr)
            appended = append(region, layout.home, args.min_records - held)
        from_ms = None if args.last is None else from_ms_for_last(probe, tps, args.last)
        expected = count_from(probe, tps, from_ms)
    finally:
        probe.close()
    print(f"replaying {expected} records of {region.name} (from_ms={from_ms}) ...", file=sys.stderr)
    meter = harness.CpuMeter(layout)
    meter.begin()
    t0 = time.monotonic()
    report = rp.replay(layout, region, from_ms=from_ms, batch=args.batch)
    wall = time.monotonic() - t0
    cpu = meter.end()
    if not args.keep_side_topic:
        admin = kafka.admin(region)  # kept referenced until the futures are resolved
        for fut in admin.delete_topics([report.side_topic]).values():
            try:
                fut.result(30)
            except Exception as exc:  # a leftover side topic expires in a week anyway
                print(f"could not delete {report.side_topic}: {exc}", file=sys.stderr)
    own = cpu.get("load-generator", 0.0)
    rate = report.records / report.seconds if report.seconds else None
    return harness.envelope(
        benchmark="replay",
        profile=region.name,
        command=command(args),
        params={
            "region": region.name,
            "last": args.last,
            "from_ms": from_ms,
            "min_records": args.min_records,
            "appended": appended,
            "batch": args.batch,
            "source_topics": sorted({tp.topic for tp in tps}),
        },
        offered_rate=None,
        achieved_rate=round(rate, 1) if rate else None,
        final_share=None,
        cpu_seconds=cpu,
        histograms={},
        results={
            "records": report.records,
            "expected_records": expected,
            "outcomes": report.outcomes,
            "seconds": report.seconds,
            "wall_seconds_with_setup": round(wall, 3),
            "records_per_s": round(rate, 1) if rate else None,
            "replay_cpu_s": own,
            "records_per_cpu_s": round(report.records / own, 1) if own else None,
            "target_records_per_s": TARGET,
            "run_id": report.run_id,
            "side_topic": report.side_topic,
            "side_topic_kept": args.keep_side_topic,
        },
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--region", default="eu-west")
    ap.add_argument("--last", type=int, default=None, help="replay only about the last N records")
    ap.add_argument("--min-records", type=int, default=50_000)
    ap.add_argument("--batch", type=int, default=1000, help="consume batch (replay's default)")
    ap.add_argument("--keep-side-topic", action="store_true")
    ap.add_argument("--out", type=Path, default=None, help="result file (default bench/results/)")
    args = ap.parse_args()
    layout = load_layout()
    result = run(layout, layout.region(args.region), args)
    if args.out:
        path = args.out
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    else:
        path = harness.write(result, "replay")
    r = result["results"]
    print(
        f"replayed {r['records']} records in {r['seconds']} s: {r['records_per_s']} records/s, "
        f"{r['replay_cpu_s']} CPU-s ({r['records_per_cpu_s']} records/CPU-s) → {path}"
    )


if __name__ == "__main__":
    main()
