"""Scale benchmark (issue 7, measurement 5): sustained unique-key ingest while the dedup window
grows, measured at several table sizes. Run by hand on a machine with room, not in CI.

    .venv/bin/python -m bench.scale --checkpoints 0,1M,3M,10M --probe 100k \\
        --measure-seconds 20 --rate 400 [--region eu-west] [--safety 2] [--out PATH]

Needs the running platform (`flk up`). 10M keys need ~35 GB per region that stores them; the
published run used a one-region platform of its own, so nothing is mirrored afterwards and
the disk is reclaimed by deleting its home:

    FLK_HOME=/work/scale-home FLK_PORT_BASE=24000 FLK_REGIONS=eu-west bin/flk up
    FLK_HOME=/work/scale-home FLK_PORT_BASE=24000 FLK_REGIONS=eu-west \\
        .venv/bin/python -m bench.scale --checkpoints 0,1M,3M,10M --rate 400 --safety 1.5

In order:

1. Disk check, before touching anything: `BYTES_PER_KEY` (measured, see below) × the largest
   checkpoint × the number of regions (the paused mirror replicates the fill into the other
   region once it runs again) × `SAFETY`, against the free space of the filesystem holding
   FLK_HOME. Not enough: exit 2 with one line, nothing changed.
2. The mirror *into* the other region(s) (`<other>-mirror`, MirrorMaker 2 in dedicated mode)
   is stopped through the platform's supervisor for the whole run, so the other region spends
   no CPU on the fill; it is started again at the end (also on error or Ctrl-C) and waited
   for until healthy. It then replicates the whole fill to the other region, whose worker
   decides it there: background work after the benchmark (about as long as the fill).
3. For each checkpoint N (keys added to the region's dedup table by this run, on top of what
   it held): fill through the WAL up to N — distinct signed HMAC records of the walgen tenant
   `st-bench` (default dedup window, 14 days, far longer than any run) appended to
   `flk.wal` in chunks, as a gateway writes them, with at most about two chunks undecided so
   the gateways' backpressure (50 000 records of lag) never trips — then wait until the
   region's dedup consumer group has committed past everything appended. Measured per fill
   segment: records, wall seconds from the first append to the last commit, records decided
   per second, worker CPU-seconds and records per worker CPU-second, generator CPU apart
   (`load-generator`), the growth on disk of the region, and a curve of windows of about
   `--window-seconds`. Then the probe: `--probe` more keys through the WAL, measured the same
   way — the same-size ingest figure at every checkpoint, which the flatness compares (the
   fill segments have different sizes). Then, after `--settle-seconds`, unique-key ingest
   through the region's
   gateways at `--rate` for `--measure-seconds` (bench/e2e.py's open-loop driver, tenant
   `default`): offered and achieved rate, final share, latency, CPU-seconds per process.

Result: one document in the envelope of bench/harness.py, `bench/results/scale.json` (or
`--out`): `results.checkpoints[]` with `keys`, `fill`, `probe` and `measure`,
`results.disk`, `results.flatness` (last checkpoint ÷ first, for the gateway ingest at the
fixed rate and for the saturated probe rate; target ≥ 0.9), one raw HDR histogram per checkpoint
(`answer_at_<N>`). Top level: the fixed offered rate, the achieved rate at the last (largest)
checkpoint, the lowest final share of all checkpoints, CPU-seconds summed over the measured
intervals.

`BYTES_PER_KEY`: the growth on disk of one region per record of a fill (Kafka: WAL record,
changelog entry, outcome, reply; PostgreSQL: outcome row, request row and their indexes;
RocksDB entry), measured with this script on the local platform and rounded up: 3 429 B/key
over a 9 700-record fill on a table of ~400 000 keys (PostgreSQL 1 885, changelog 357,
outcomes 349, WAL 298, replies 187, RocksDB 352). Every run records its own figure
(`fill.bytes_per_key`, `results.disk.measured_bytes_per_key`) and stops with exit 2 when
the remaining keys at the measured figure would not fit; override the constant with
`--bytes-per-key`. Nothing of the fill is reclaimed during a run: the WAL is kept 15 days and
compaction finds no duplicate keys in the changelog or the outcomes. At 10M keys in both
regions that is about 69 GB before the safety factor.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import Any

import httpx
from confluent_kafka import Consumer, TopicPartition
from hdrh.histogram import HdrHistogram
from prometheus_client.parser import text_string_to_metric_families

from bench import e2e, harness
from bench.workload import Mix
from infra import apps, jvm, mirror
from infra.layout import WORKER_WEB, Layout, Region, load_layout
from infra.procs import Service, Supervisor
from streams import walgen
from streams.settings import dedup_group
from topics.catalogue import WAL
from topics.wal import ReplyTo

BYTES_PER_KEY = 3_500  # one region, measured 3 429; see the module docstring
SAFETY = 2.0
TENANT = "st-bench"  # HMAC, policy default window (14 days): walgen.policy_document()
REPLY_TO = ReplyTo("flk.replies", 7)  # no gateway reads partition 7 with the default 2
_COUNT = re.compile(r"(\d+(?:\.\d+)?)([kKmM]?)")
_SUFFIX = {"": 1, "k": 1_000, "m": 1_000_000}


def log(msg: str) -> None:
    print(f"[scale] {msg}", file=sys.stderr, flush=True)


# --- pure logic ---------------------------------------------------------------------------


def parse_count(text: str) -> int:
    """'0', '5000', '5k', '1M', '1.5M' → a whole number of keys."""
    m = _COUNT.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a count (e.g. 0, 5000, 5k, 1M, 2.5M)")
    value = float(m.group(1)) * _SUFFIX[m.group(2).lower()]
    if value != int(value):
        raise ValueError(f"{text!r} is not a whole number of keys")
    return int(value)


def parse_checkpoints(text: str) -> list[int]:
    """A comma-separated, strictly increasing list of counts."""
    out = [parse_count(p) for p in text.split(",") if p.strip()]
    if not out:
        raise ValueError("no checkpoints given")
    if any(b <= a for a, b in itertools.pairwise(out)):
        raise ValueError(f"checkpoints must increase strictly: {out}")
    return out


def human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}" if unit != "B" else f"{int(n)} B"
        n /= 1024
    return f"{n:.1f} TiB"  # unreachable


@dataclass(frozen=True)
class DiskEstimate:
    keys: int
    bytes_per_key: int
    regions: int
    safety: float
    free_bytes: int
    path: str

    @property
    def needed_bytes(self) -> int:
        return int(self.keys * self.bytes_per_key * self.regions * self.safety)

    @property
    def ok(self) -> bool:
        return self.needed_bytes <= self.free_bytes

    def message(self) -> str:
        verdict = "enough" if self.ok else "not enough disk space"
        return (
            f"{verdict}: {self.keys:,} keys need {human(self.needed_bytes)} "
            f"({self.bytes_per_key} B/key × {self.regions} regions × {self.safety:g} safety), "
            f"{human(self.free_bytes)} free on {self.path}"
        )

    def as_dict(self) -> dict[str, Any]:
        return {"keys": self.keys, "bytes_per_key": self.bytes_per_key, "regions": self.regions,
                "safety": self.safety, "needed_bytes": self.needed_bytes,
                "free_bytes": self.free_bytes, "path": self.path, "ok": self.ok}  # fmt: skip


def flatness(checkpoints: list[dict[str, Any]], target: float = 0.9) -> dict[str, Any]:
    """Last checkpoint ÷ first: gateway ingest at the fixed rate, and the fill (saturated)."""

    def ratio(a: float | None, b: float | None) -> float | None:
        return round(b / a, 3) if a and b is not None else None

    first, last = checkpoints[0], checkpoints[-1]
    # The probe at each checkpoint (same size every time) is the like-for-like ingest figure;
    # without probes, the fill segments (of growing sizes) stand in.
    probes = [c["probe"] for c in checkpoints if (c.get("probe") or {}).get("records")]
    fills = probes if len(probes) == len(checkpoints) else [
        c["fill"] for c in checkpoints if c["fill"]["records"] > 0]
    out: dict[str, Any] = {
        "target": target,
        "from_keys": first["keys"],
        "to_keys": last["keys"],
        "achieved_rate_ratio": ratio(first["measure"]["achieved_rate"],
                                     last["measure"]["achieved_rate"]),
        "p99_ratio": ratio(first["measure"]["latency_ms"].get("p99"),
                           last["measure"]["latency_ms"].get("p99")),
        "fill_records_per_s_ratio": None,
        "fill_records_per_worker_cpu_s_ratio": None,
    }  # fmt: skip
    if len(fills) >= 2:
        out["fill_records_per_s_ratio"] = ratio(
            fills[0]["records_per_s"], fills[-1]["records_per_s"]
        )
        out["fill_records_per_worker_cpu_s_ratio"] = ratio(
            fills[0]["records_per_worker_cpu_s"], fills[-1]["records_per_worker_cpu_s"]
        )
    ratios = [out[k] for k in ("achieved_rate_ratio", "fill_records_per_s_ratio")
              if out[k] is not None]  # fmt: skip
    out["flat"] = bool(ratios) and all(r >= target for r in ratios)
    return out


# --- the platform -------------------------------------------------------------------------


def region_bytes(region: Region) -> dict[str, int]:
    """Bytes allocated on disk by one region's data, by component (Kafka topics grouped)."""

    def tree(path: Path) -> int:
        total = 0
        for root, _dirs, files in os.walk(path):
            for name in files:
                try:
                    total += os.lstat(os.path.join(root, name)).st_blocks * 512
                except OSError:
                    continue  # a segment deleted or a file renamed meanwhile
        return total

    out = {"postgres": tree(region.data_dir / "postgres"),
           "rocksdb": tree(region.data_dir / "streams")}  # fmt: skip
    data = region.data_dir / "kafka" / "data"
    for entry in data.iterdir() if data.is_dir() else []:
        if not entry.is_dir():
            continue
        topic = entry.name.rsplit("-", 1)[0]
        group = ("kafka_wal" if topic == WAL else "kafka_mirrored_wal" if topic.endswith(WAL)
                 else "kafka_changelog" if topic.endswith("-changelog")
                 else "kafka_outcomes" if topic == "flk.outcomes"
                 else "kafka_replies" if topic == "flk.replies" else "kafka_other")  # fmt: skip
        out[group] = out.get(group, 0) + tree(entry)
    return out


def worker_counters(region: Region, workers: int) -> dict[str, float]:
    """The dedup stage's counters summed over the region's workers (Prometheus /metrics)."""
    out: dict[str, float] = {}
    for k in range(workers):
        try:
            text = httpx.get(f"http://127.0.0.1:{region.port(WORKER_WEB + k)}/metrics",
                             timeout=5.0).text  # fmt: skip
        except httpx.HTTPError:
            continue
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name.startswith("flk_stream_") and s.name.endswith("_total"):
                    name = s.name.removeprefix("flk_stream_").removesuffix("_total")
                    if "reason" not in s.labels:
                        out[name] = out.get(name, 0.0) + s.value
    return out


def worker_pids(sup: Supervisor, region: Region, workers: int) -> list[int | None]:
    return [sup.pid(f"{region.name}-worker-{k}") for k in range(workers)]


def wait_workers_ready(region: Region, workers: int, timeout_s: float = 300.0) -> None:
    """Wait until every worker of the region answers /readyz (someone may have restarted one)."""
    deadline = time.monotonic() + timeout_s
    urls = [f"http://127.0.0.1:{region.port(WORKER_WEB + k)}/readyz" for k in range(workers)]
    waited = False
    while not all(apps.ready(u) for u in urls):
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers of {region.name} are not ready after {timeout_s} s")
        if not waited:
            log(f"waiting for the workers of {region.name} to be ready")
            waited = True
        time.sleep(1.0)


class GroupProgress:
    """Committed offsets of the region's dedup consumer group on `flk.wal` against the high
    watermarks, read like the gateway's backpressure does (gateway/backpressure.py): a consumer
    carrying the group's id that never subscribes, so it never joins the group."""

    def __init__(self, region: Region) -> None:
        self.consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap,
                                  "group.id": dedup_group(region.name),
                                  "enable.auto.commit": False})  # fmt: skip
        meta = self.consumer.list_topics(WAL, timeout=10).topics[WAL]
        self.parts = [TopicPartition(WAL, p) for p in sorted(meta.partitions)]

    def committed(self) -> dict[int, int]:
        return {tp.partition: max(0, tp.offset)
                for tp in self.consumer.committed(self.parts, timeout=10)}  # fmt: skip

    def highs(self) -> dict[int, int]:
        return {tp.partition: self.consumer.get_watermark_offsets(tp, timeout=10)[1]
                for tp in self.parts}  # fmt: skip

    def behind(self, target: dict[int, int]) -> int:
        done = self.committed()
        return sum(max(0, high - done.get(p, 0)) for p, high in target.items())

    def close(self) -> None:
        self.consumer.close()


@contextmanager
def mirrors_paused(layout: Layout, region: Region, health_timeout_s: float) -> Iterator[list[str]]:
    """Stop the MirrorMaker process of every other region (the flows *into* it) for the block;
    start each again afterwards, whatever happened, and wait until healthy."""
    sup = Supervisor(layout.run_dir)
    java, jars = jvm.java_bin(), jvm.ensure_jars(layout)  # before stopping anything
    services: list[Service] = [mirror.service(layout, other, java, jars)
                               for other in layout.others(region)]  # fmt: skip
    paused = [svc for svc in services if sup.pid(svc.key) is not None]
    for svc in services:
        if svc not in paused:
            log(f"{svc.key} is not running; it is left alone")
    try:
        for svc in paused:
            log(f"pausing {svc.key} (replication {region.name} -> {svc.region})")
            sup.stop(svc.key, svc.stop_timeout_s)
        yield [svc.key for svc in paused]
    finally:
        for svc in paused:
            log(f"starting {svc.key} again")
            sup.launch(svc)
        for svc in paused:
            deadline = time.monotonic() + health_timeout_s
            while time.monotonic() < deadline:
                if sup.pid(svc.key) is None:
                    log(f"WARNING: {svc.key} exited after its restart; see {svc.log}")
                    break
                try:
                    if svc.health is None or svc.health():
                        log(f"{svc.key} healthy again")
                        break
                except Exception as exc:  # health probes raise client-specific errors
                    log(f"{svc.key} not healthy yet ({type(exc).__name__})")
                time.sleep(2.0)
            else:
                log(
                    f"WARNING: {svc.key} runs but is not healthy after {health_timeout_s:.0f} s "
                    f"(it may still be replicating the fill); check `bin/flk status`"
                )


# --- the fill -----------------------------------------------------------------------------


@dataclass
class Filler:
    layout: Layout
    region: Region
    workers: int
    chunk: int
    window_s: float
    run_id: str = ""
    produced_total: int = 0

    def __post_init__(self) -> None:
        self.run_id = self.run_id or uuid.uuid4().hex[:8]
        self.rng = random.Random(f"scale-{self.run_id}")
        self.versions = walgen.publish(self.layout.home)
        self.clock = walgen.Clock()
        self.producer = walgen.producer(self.region.kafka_bootstrap)
        self.progress = GroupProgress(self.region)
        self.sup = Supervisor(self.layout.run_dir)

    def _records(self, n: int) -> list[walgen.WalRecord]:
        out: list[walgen.WalRecord] = []
        for _ in range(n):
            i = self.produced_total + len(out)
            data = walgen.body(TENANT, self.rng, epoch=i)
            out.append(walgen.wal_record(
                data, tenant=TENANT, origin=self.region.name,
                request_id=f"scale-{self.run_id}-{i}", stamp=self.clock.now(),
                versions=self.versions, reply_to=REPLY_TO))  # fmt: skip
        return out

    def _worker_cpu(self, cpu: dict[str, float]) -> float:
        prefix = f"{self.region.name}-worker-"
        return round(sum(v for k, v in cpu.items() if k.startswith(prefix)), 2)

    def fill(self, n: int, keys_before: int) -> dict[str, Any]:
        """Append `n` new keys to the WAL and wait until the dedup stage committed past them."""
        if n <= 0:
            return {"records": 0, "seconds": 0.0, "records_per_s": None, "worker_cpu_s": 0.0,
                    "records_per_worker_cpu_s": None}  # fmt: skip
        wait_workers_ready(self.region, self.workers)
        disk0 = region_bytes(self.region)
        counters0 = worker_counters(self.region, self.workers)
        pids0 = worker_pids(self.sup, self.region, self.workers)
        meter = harness.CpuMeter(self.layout)
        win_meter = harness.CpuMeter(self.layout)
        start = self.progress.committed()
        produced = 0
        windows: list[dict[str, Any]] = []
        batch = self._records(min(self.chunk, n))
        meter.begin()
        win_meter.begin()
        t0 = time.monotonic()
        win = (t0, 0)
        last_log = t0

        def decided() -> int:
            done = self.progress.committed()
            return sum(max(0, done[p] - start.get(p, 0)) for p in done)

        def tick(force: bool = False) -> None:
            nonlocal win, last_log
            now = time.monotonic()
            if not force and now - last_log < 5.0:
                return
            last_log = now
            d = min(decided(), n)  # other traffic counts too: the figure is approximate
            rate = d / max(1e-9, now - t0)
            eta = (n - d) / rate if rate > 0 else float("inf")
            log(
                f"fill {keys_before + d:,}/{keys_before + n:,} keys: appended {produced:,}, "
                f"decided {d:,} ({rate:,.0f}/s), ETA {_duration(eta)}"
            )
            if now - win[0] >= self.window_s and d > win[1]:
                cpu = win_meter.end()
                wcpu = self._worker_cpu(cpu)
                windows.append({"keys": keys_before + d, "records": d - win[1],
                                "seconds": round(now - win[0], 2),
                                "records_per_s": round((d - win[1]) / (now - win[0]), 1),
                                "worker_cpu_s": wcpu,
                                "records_per_worker_cpu_s":
                                    round((d - win[1]) / wcpu) if wcpu else None})  # fmt: skip
                win_meter.begin()
                win = (now, d)

        while batch:
            # At most about two chunks undecided: the gateways' backpressure never trips.
            high = self.progress.highs()
            while self.progress.behind(high) > self.chunk:
                tick()
                time.sleep(0.2)
                high = self.progress.highs()
            walgen.produce(self.region.kafka_bootstrap, WAL, batch, self.producer)
            produced += len(batch)
            self.produced_total += len(batch)
            tick()
            batch = self._records(min(self.chunk, n - produced))
        target = self.progress.highs()
        while self.progress.behind(target) > 0:
            tick()
            time.sleep(0.2)
        elapsed = time.monotonic() - t0
        cpu = meter.end()
        tick(force=True)
        wcpu = self._worker_cpu(cpu)
        counters1 = worker_counters(self.region, self.workers)
        delta = {
            k: counters1.get(k, 0.0) - counters0.get(k, 0.0)
            for k in ("records_processed", "first_writes", "records_rejected", "dedup_hits")
        }
        restarted = worker_pids(self.sup, self.region, self.workers) != pids0
        disk1 = region_bytes(self.region)
        growth = sum(disk1.values()) - sum(disk0.values())
        return {
            "records": n,
            "seconds": round(elapsed, 2),
            "records_per_s": round(n / elapsed, 1),
            "worker_cpu_s": wcpu,
            "records_per_worker_cpu_s": round(n / wcpu) if wcpu else None,
            "generator_cpu_s": cpu.get("load-generator"),
            "cpu_seconds": cpu,
            "worker_counters": {k: int(v) for k, v in delta.items()},
            "worker_restarted": restarted,
            "disk_growth_bytes": growth,
            "disk_growth_by_component": {k: disk1.get(k, 0) - disk0.get(k, 0)
                                         for k in sorted(set(disk0) | set(disk1))},
            "bytes_per_key": round(growth / n),
            "windows": windows,
        }  # fmt: skip

    def close(self) -> None:
        self.producer.flush(30)
        self.progress.close()


def _duration(s: float) -> str:
    if s == float("inf"):
        return "?"
    s = int(s)
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# --- measuring at a checkpoint ------------------------------------------------------------


def measure(layout: Layout, region: Region, workers: int, rate: float, seconds: float
            ) -> tuple[dict[str, Any], HdrHistogram]:  # fmt: skip
    """Unique keys through the region's gateways at `rate` for `seconds` (bench/e2e.py)."""
    wait_workers_ready(region, workers)
    sup = Supervisor(layout.run_dir)
    keys = [
        f"{region.name}-{k}"
        for k in (
            *(f"worker-{i}" for i in range(workers)),
            *(f"gateway-{i}" for i in range(apps.counts()[0])),
        )
    ]
    pids0 = [sup.pid(k) for k in keys]
    alone = replace(layout, regions=(region,))  # origin = this region, no mirror watch
    profile = e2e.Profile("scale", Mix(0, 0, 0, 0), "origin")
    env = e2e.run(alone, profile, rate, seconds)
    restarted = [k for k, pid in zip(keys, pids0, strict=True) if sup.pid(k) != pid]
    if restarted:
        log(f"WARNING: {', '.join(restarted)} restarted during the measurement (not by us)")
    hist = HdrHistogram.decode(env["histograms"]["origin_answer"].encode("ascii"))
    out = {
        "offered_rate": env["offered_rate"],
        "achieved_rate": env["achieved_rate"],
        "final_share": env["final_share"],
        "answers": env["answers"],
        "latency_ms": env["latency_ms"]["origin_answer"],
        "cpu_seconds": env["cpu_seconds"],
        "gateway_cpu_s": env["results"]["gateway_cpu_s"],
        "worker_cpu_s": env["results"]["worker_cpu_s"],
        "elapsed_s": env["results"]["elapsed_s"],
        "restarted_during_measure": restarted,
    }
    return out, hist


# --- the run ------------------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run(args: argparse.Namespace, layout: Layout, checkpoints: list[int],
        estimate: DiskEstimate) -> dict[str, Any]:  # fmt: skip
    region = layout.region(args.region)
    _, workers = apps.counts()
    results: list[dict[str, Any]] = []
    hists: dict[str, HdrHistogram] = {}
    added = 0
    grown = filled = 0  # disk growth and records over every fill segment so far
    bpk: int | None = None
    with mirrors_paused(layout, region, args.mirror_timeout) as paused:
        filler = Filler(layout, region, workers, args.chunk, args.window_seconds)
        try:
            for target in checkpoints:
                fill = filler.fill(target - added, added)
                added += fill["records"]
                if fill["records"]:
                    grown += fill["disk_growth_bytes"]
                    filled += fill["records"]
                    bpk = max(1, round(grown / filled))
                    log(
                        f"fill to {target:,}: {fill['records']:,} records in "
                        f"{fill['seconds']} s = {fill['records_per_s']}/s, "
                        f"{fill['records_per_worker_cpu_s']} per worker CPU-s, "
                        f"{fill['bytes_per_key']} B/key on disk"
                    )
                    bad = fill["worker_counters"]["records_rejected"]
                    if bad > 0.01 * fill["records"]:
                        raise RuntimeError(
                            f"the worker rejected {bad} of {fill['records']} "
                            "fill records: keys are not being added"
                        )
                    remaining = (checkpoints[-1] - added) * bpk * estimate.regions
                    free = shutil.disk_usage(layout.home).free
                    if remaining * 1.2 > free:
                        raise DiskFull(
                            f"stopping: the remaining {checkpoints[-1] - added:,} keys "
                            f"need about {human(remaining)} at the measured "
                            f"{bpk} B/key, {human(free)} free"
                        )
                probe: dict[str, Any] | None = None
                if args.probe:
                    # Ingest at this table size, measured the same way at every checkpoint.
                    probe = filler.fill(args.probe, added)
                    added += probe["records"]
                    log(
                        f"probe at {target:,}: {probe['records']:,} records in "
                        f"{probe['seconds']} s = {probe['records_per_s']}/s, "
                        f"{probe['records_per_worker_cpu_s']} per worker CPU-s"
                    )
                if args.settle_seconds:
                    time.sleep(args.settle_seconds)
                log(f"measuring at {added:,} keys: {args.rate:g}/s for {args.measure_seconds:g} s")
                meas, hist = measure(layout, region, workers, args.rate, args.measure_seconds)
                added += meas["answers"].get("final", 0) + meas["answers"].get("pending", 0)
                log(
                    f"at {target:,}: achieved {meas['achieved_rate']}/s, final "
                    f"{meas['final_share']:.2%}, p50 {meas['latency_ms'].get('p50')} ms, "
                    f"p99 {meas['latency_ms'].get('p99')} ms"
                )
                results.append({"keys": target, "keys_after_measure": added, "fill": fill,
                                "probe": probe, "measure": meas})  # fmt: skip
                hists[f"answer_at_{target}"] = hist
        finally:
            filler.close()
    cpu: dict[str, float] = {}
    for c in results:
        for k, v in c["measure"]["cpu_seconds"].items():
            cpu[k] = round(cpu.get(k, 0.0) + v, 2)
    answers: dict[str, Any] = {"final": 0, "pending": 0, "errors": 0}
    for c in results:
        for k in answers:
            answers[k] += c["measure"]["answers"].get(k, 0)
    disk = {**estimate.as_dict(),
            "measured_bytes_per_key": bpk,
            "free_bytes_after": shutil.disk_usage(layout.home).free,
            "region_bytes_after": region_bytes(region)}  # fmt: skip
    command = (
        f"python -m bench.scale --checkpoints {args.checkpoints} --probe {args.probe} "
        f"--measure-seconds {args.measure_seconds:g} --rate {args.rate:g} "
        f"--region {region.name} --safety {args.safety:g}"
    )
    return harness.envelope(
        benchmark="scale", profile="scale", command=command,
        params={"checkpoints": checkpoints, "rate": args.rate,
                "measure_seconds": args.measure_seconds, "region": region.name,
                "fill_tenant": TENANT, "measure_tenant": "default", "chunk": args.chunk,
                "settle_seconds": args.settle_seconds, "mirrors_paused": paused,
                "probe": args.probe},
        offered_rate=results[-1]["measure"]["offered_rate"],
        achieved_rate=results[-1]["measure"]["achieved_rate"],
        final_share=min(c["measure"]["final_share"] for c in results),
        cpu_seconds=cpu, histograms=hists, answers=answers,
        results={"checkpoints": results, "disk": disk, "flatness": flatness(results)},
    )  # fmt: skip


class DiskFull(RuntimeError):
    pass


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--checkpoints",
        default="0,1M,3M,10M",
        help="keys added to the dedup table at which to measure (k/M suffixes)",
    )
    ap.add_argument("--measure-seconds", type=float, default=20.0)
    ap.add_argument(
        "--probe",
        type=parse_count,
        default=100_000,
        help="keys of the fixed-size ingest probe at each checkpoint (0: none)",
    )
    ap.add_argument("--rate", type=float, default=300.0, help="offered submissions per second")
    ap.add_argument("--region", default="eu-west")
    ap.add_argument("--out", type=Path, default=None, help="result file (default bench/results/)")
    ap.add_argument("--chunk", type=int, default=10_000, help="WAL records appended at once")
    ap.add_argument(
        "--settle-seconds",
        type=float,
        default=5.0,
        help="pause between the end of a fill and its measurement",
    )
    ap.add_argument(
        "--window-seconds",
        type=float,
        default=60.0,
        help="length of the fill-rate windows in the result",
    )
    ap.add_argument(
        "--bytes-per-key",
        type=int,
        default=BYTES_PER_KEY,
        help="disk bytes per key in one region for the disk check",
    )
    ap.add_argument(
        "--safety",
        type=float,
        default=SAFETY,
        help="factor on the estimated bytes for the disk check (the fill re-checks as it goes)",
    )
    ap.add_argument(
        "--mirror-timeout",
        type=float,
        default=900.0,
        help="seconds to wait for a restarted mirror to be healthy",
    )
    args = ap.parse_args(argv)
    try:
        checkpoints = parse_checkpoints(args.checkpoints)
    except ValueError as exc:
        ap.error(str(exc))
    layout = load_layout()
    layout.region(args.region)  # an unknown region fails here, naming the known ones
    if args.safety < 1.0:
        ap.error("--safety must be at least 1")
    keys = checkpoints[-1] + args.probe * len(checkpoints)
    estimate = DiskEstimate(keys, args.bytes_per_key, len(layout.regions), args.safety,
                            shutil.disk_usage(layout.home).free, str(layout.home))  # fmt: skip
    if not estimate.ok:
        print(f"bench.scale: {estimate.message()}", file=sys.stderr)
        return 2
    log(estimate.message())
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        result = run(args, layout, checkpoints, estimate)
    except DiskFull as exc:
        print(f"bench.scale: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print(f"bench.scale: interrupted ({exc or 'Ctrl-C'}); no result written", file=sys.stderr)
        return 130
    if args.out:
        path = args.out
        path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    else:
        path = harness.write(result, "scale")
    for c in result["results"]["checkpoints"]:
        f, m = c.get("probe") or c["fill"], c["measure"]
        print(
            f"{c['keys']:>12,} keys: {'probe' if c.get('probe') else 'fill'} "
            f"{f['records_per_s'] or '-'}/s "
            f"({f['records_per_worker_cpu_s'] or '-'} per worker CPU-s); ingest "
            f"{m['achieved_rate']}/s of {m['offered_rate']}/s, final {m['final_share']:.2%}, "
            f"p50 {m['latency_ms'].get('p50')} ms, p99 {m['latency_ms'].get('p99')} ms"
        )
    print(f"flatness: {json.dumps(result['results']['flatness'])} → {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
