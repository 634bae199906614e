"""What every benchmark run records (issue 7): one JSON result per run, same envelope.

    {"schema": 1, "benchmark", "profile", "command", "git_commit", "machine": {cpu_model,
     cpu_count, memory_gib}, "versions": {...}, "started_at", "params", "offered_rate",
     "achieved_rate", "requests", "answers": {final, pending, errors, by_status},
     "final_share", "cpu_seconds": {process: s}, "latency_ms": {name: {p50, p90, p99, max,
     count}}, "histograms": {name: HDR base64}, "results": {...}}

CPU-seconds come from /proc (utime + stime of each process group of the platform, children
included), taken before and after the measured interval. Latency histograms are HDR
(hdrhistogram, 1 µs – 60 s, 3 significant digits), kept raw so runs can be merged later.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from infra import jvm
from infra.layout import REPO_ROOT, Layout

RESULTS = REPO_ROOT / "bench" / "results"
SCHEMA = 1
REQUIRED = (
    "schema",
    "benchmark",
    "profile",
    "command",
    "git_commit",
    "machine",
    "versions",
    "params",
    "offered_rate",
    "achieved_rate",
    "final_share",
    "cpu_seconds",
    "latency_ms",
    "histograms",
    "results",
)


def histogram() -> HdrHistogram:
    return HdrHistogram(1, 60_000_000, 3)  # microseconds


def summary(h: HdrHistogram) -> dict[str, float]:
    if h.get_total_count() == 0:
        return {"count": 0}
    return {
        "count": h.get_total_count(),
        "p50": h.get_value_at_percentile(50) / 1000,
        "p90": h.get_value_at_percentile(90) / 1000,
        "p99": h.get_value_at_percentile(99) / 1000,
        "max": h.get_max_value() / 1000,
    }


def _ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    # utime, stime, cutime, cstime: the process and its waited-for children.
    return int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])


def _processes() -> dict[int, tuple[int, int]]:
    """pid → (parent pid, process group) of every process."""
    out: dict[int, tuple[int, int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            out[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return out


def _group_ticks(pgid: int, procs: dict[int, tuple[int, int]] | None = None) -> int:
    """CPU ticks of a service: its process group and every descendant of its leader — a
    PostgreSQL backend or an io worker starts its own session, so the group alone misses it."""
    procs = _processes() if procs is None else procs
    members: set[int] = set()
    for pid in procs:
        chain, p = [], pid
        while p > 1 and p not in members:
            chain.append(p)
            if p == pgid or procs.get(p, (0, 0))[1] == pgid:
                break
            p = procs.get(p, (0, 0))[0]
        if p > 1 and (p in members or p == pgid or procs.get(p, (0, 0))[1] == pgid):
            members.update(chain)
    return sum(_ticks(pid) for pid in members)


@dataclass
class CpuMeter:
    """CPU-seconds per platform process (by supervisor key) over an interval."""

    layout: Layout
    start: dict[str, int] = field(default_factory=dict)

    def _snapshot(self) -> dict[str, int]:
        out: dict[str, int] = {}
        procs = _processes()
        for path in sorted(self.layout.run_dir.glob("*.json")):
            pid = int(json.loads(path.read_text())["pid"])
            out[path.stem] = _group_ticks(pid, procs)
        out["load-generator"] = _ticks(os.getpid())
        return out

    def begin(self) -> None:
        self.start = self._snapshot()

    def end(self) -> dict[str, float]:
        hz = os.sysconf("SC_CLK_TCK")
        now = self._snapshot()
        return {k: round((now[k] - self.start.get(k, 0)) / hz, 2) for k in sorted(now)}


def settle(layout: Layout, below_cores: float, timeout_s: float = 240.0,
           window_s: float = 5.0) -> float | None:
    """Wait until the platform's processes together use less than `below_cores` over a
    `window_s` window (the previous run's backlog drained, compactions and sweeps done), at
    most `timeout_s`; the last window's figure. Every measured run starts from the same quiet
    machine this way; on two shared cores a run started during the last one's tail measures
    the tail. `below_cores` 0: no wait, None."""
    if below_cores <= 0:
        return None
    deadline = time.monotonic() + timeout_s
    while True:
        meter = CpuMeter(layout)
        meter.begin()
        time.sleep(window_s)
        cpu = meter.end()
        cores = round(sum(v for k, v in cpu.items() if k != "load-generator") / window_s, 2)
        if cores < below_cores:
            print(f"platform idle: {cores} cores", file=sys.stderr)
            return cores
        if time.monotonic() > deadline:
            print(f"platform still busy after {timeout_s:.0f} s ({cores} cores); measuring anyway",
                  file=sys.stderr)  # fmt: skip
            return cores
        print(f"waiting for the platform to settle: {cores} cores busy", file=sys.stderr)


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    mem = next(
        int(line.split()[1])
        for line in Path("/proc/meminfo").read_text().splitlines()
        if line.startswith("MemTotal")
    )
    return {
        "cpu_model": cpu,
        "cpu_count": os.cpu_count(),
        "memory_gib": round(mem / 2**20, 1),
        "load_average": list(os.getloadavg()),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "kafka": jvm.kafka_version()}
    for dist in (
        "flk",
        "flk-pcs",
        "confluent-kafka",
        "faust-streaming",
        "aiokafka",
        "starlette",
        "uvicorn",
    ):
        try:
            out[dist] = version(dist)
        except Exception:  # an optional package missing is not a reason to lose a result
            out[dist] = "?"
    return out


def _head() -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO_ROOT,
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head}-dirty" if dirty else head


# Taken when a benchmark starts (its first import of this module), not when it writes its
# result: a long run must name the code it ran, not what was committed meanwhile.
_STARTED = (_head(), time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))


def gateways_prefix() -> str:
    """`FLK_GATEWAYS=n ` for a result's command when the run chose how many of the platform's
    gateway processes per region take traffic, else nothing (the platform's default)."""
    n = os.environ.get("FLK_GATEWAYS")
    return f"FLK_GATEWAYS={n} " if n is not None else ""


def git_commit() -> str:
    return _STARTED[0]


def envelope(
    *,
    benchmark: str,
    profile: str,
    command: str,
    params: dict[str, Any],
    offered_rate: float | None,
    achieved_rate: float | None,
    final_share: float | None,
    cpu_seconds: dict[str, float],
    histograms: dict[str, HdrHistogram],
    results: dict[str, Any],
    answers: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "schema": SCHEMA,
        "benchmark": benchmark,
        "profile": profile,
        "command": command,
        "git_commit": git_commit(),
        "machine": machine(),
        "versions": versions(),
        "started_at": _STARTED[1],
        "params": params,
        "offered_rate": offered_rate,
        "achieved_rate": achieved_rate,
        "answers": answers or {},
        "final_share": final_share,
        "cpu_seconds": cpu_seconds,
        "latency_ms": {name: summary(h) for name, h in histograms.items()},
        "histograms": {name: h.encode().decode("ascii") for name, h in histograms.items()},
        "results": results,
    }


def validate(result: dict[str, Any]) -> list[str]:
    """What is wrong with a result document (empty when it is valid)."""
    problems = [f"missing {k!r}" for k in REQUIRED if k not in result]
    if result.get("schema") != SCHEMA:
        problems.append(f"schema {result.get('schema')!r} is not {SCHEMA}")
    share = result.get("final_share")
    if share is not None and not 0 <= share <= 1:
        problems.append(f"final_share {share!r} is not a share")
    for name, encoded in (result.get("histograms") or {}).items():
        try:
            HdrHistogram.decode(encoded.encode("ascii"))
        except Exception as exc:  # any decode failure makes the document invalid
            problems.append(f"histogram {name!r} does not decode: {exc}")
    return problems


def write(result: dict[str, Any], name: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=1, sort_keys=True) + "\n")
    return path
