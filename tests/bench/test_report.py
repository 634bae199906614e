"""bench/report.py on fixture result files: one generated section per benchmark kind, "not
measured yet" for a kind without an envelope result, defensive rendering of partial scale
results, prose outside the markers kept."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench import report
from bench.harness import REQUIRED, SCHEMA

MACHINE = {"cpu_model": "Test CPU", "cpu_count": 2, "memory_gib": 8.0, "load_average": [1.0]}


def envelope(benchmark: str, results: dict[str, Any], **extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {k: None for k in REQUIRED}
    doc.update(
        schema=SCHEMA,
        benchmark=benchmark,
        profile="p",
        command=f"python -m bench.{benchmark} --x",
        git_commit="0123456789abcdef",
        machine=MACHINE,
        versions={},
        params={},
        cpu_seconds={},
        latency_ms={},
        histograms={},
        started_at="2026-01-01T00:00:00Z",
        results=results,
    )
    doc.update(extra)
    return doc


def write(tmp: Path, name: str, doc: dict[str, Any]) -> None:
    (tmp / name).write_text(json.dumps(doc))


SCALE = {
    "checkpoints": [
        {
            "keys": 0,
            "fill": {"records": 0, "seconds": 0.0, "records_per_s": None, "worker_cpu_s": 0.0},
            "measure": {
                "offered_rate": 300.0,
                "achieved_rate": 299.5,
                "final_share": 1.0,
                "latency_ms": {"p50": 12.5, "p99": 80.25},
                "cpu_seconds": {},
            },
        },
        {
            "keys": 1_000_000,
            "fill": {
                "records": 1_000_000,
                "seconds": 250.0,
                "records_per_s": 4000.0,
                "worker_cpu_s": 200.0,
                "records_per_worker_cpu_s": 5000,
            },
            "probe": {"records": 100_000, "records_per_s": 3900.0,
                      "records_per_worker_cpu_s": 4800},
            "measure": {"achieved_rate": 290.0},  # partial: fields missing
        },
        {"keys": 3_000_000},  # no fill, no measure
    ],
    "flatness": {"achieved_rate_ratio": 0.968, "flat": True},
}


def test_every_kind_renders_from_fixture_files(tmp_path: Path) -> None:
    write(tmp_path, "scale.json", envelope("scale", SCALE))
    write(
        tmp_path,
        "replay.json",
        envelope(
            "replay",
            {"records": 50000, "seconds": 4.0, "records_per_s": 12500.0, "replay_cpu_s": 3.5,
             "records_per_cpu_s": 14285.7, "target_records_per_s": 10000},
            params={"region": "eu-west"},
        ),
    )  # fmt: skip
    write(
        tmp_path,
        "gateway.json",
        envelope(
            "gateway",
            {"rows": [
                {"mode": "wait", "kind": "saturation", "gateways": 1, "connections": 32,
                 "achieved_rate": 1500.0, "requests_per_gateway_cpu_second": 2100,
                 "p50_ms": 20.0, "p95_ms": 30.0, "p99_ms": 45.5, "pending_share": 0.0,
                 "error_share": 0.0},
                {"mode": "wait", "kind": "fixed_rate", "gateways": 2, "offered_rate": 250.0,
                 "achieved_rate": 249.9, "requests_per_gateway_cpu_second": 1900,
                 "p50_ms": 8.0, "p95_ms": 15.0, "p99_ms": 22.0, "pending_share": 0.01,
                 "error_share": 0.0},
            ]},
        ),
    )  # fmt: skip
    write(tmp_path, "streams_worker.json", {"command": "old format", "results": {}})
    write(
        tmp_path,
        "e2e-steady.json",
        envelope(
            "e2e",
            {"gateway_cpu_s": 1.5, "worker_cpu_s": 2.0},
            profile="steady",
            offered_rate=150.0,
            achieved_rate=149.0,
            final_share=1.0,
            latency_ms={"origin_answer": {"count": 10, "p50": 20.0, "p99": 40.0}},
            cpu_seconds={"load-generator": 0.25, "eu-west-gateway-0": 1.0,
                         "us-east-gateway-1": 0.5, "eu-west-kafka": 0.75, "us-east-mirror": 0.5},
            answers={"final": 240, "pending": 10, "errors": 3},
            params={"gateways": 2},
        ),
    )  # fmt: skip
    doc = "# Performance\n\nintro prose\n\n<!-- generated:replay:start -->\nold\n"
    doc += "<!-- generated:replay:end -->\n\nprose after replay\n"
    out = report.expected_doc(doc, results=tmp_path)

    assert out.startswith("# Performance\n\nintro prose\n\n<!-- generated:replay:start -->")
    assert "prose after replay" in out and "\nold\n" not in out
    for kind in report.SECTIONS:
        start, end = report.markers(kind)
        assert out.count(start) == 1 and out.count(end) == 1, kind
    # Every table names the command and machine of its run.
    for kind in ("scale", "replay", "gateway", "e2e"):
        assert f"`python -m bench.{kind} --x`" in out, kind
    assert out.count("Test CPU, 2 cores, 8.0 GiB") == 4
    # Scale: one row per checkpoint, missing fields as "–", flatness shown.
    assert "| 0 | **–** | – | 0 | – | – | 300.0 | 299.5 | 100.00% | 12.5 / 80.2 |" in out
    assert ("| 1,000,000 | **3,900.0** | 4,800 | 1,000,000 | 4,000.0 | 5,000 | – | 290.0 | – | – |"
            in out)
    assert "| 3,000,000 | **–** | – | – | – | – | – | – | – | – |" in out
    assert "achieved_rate_ratio 0.968" in out
    # Replay, gateway, e2e figures.
    assert "**12,500.0**" in out and "10,000 (met)" in out
    assert "closed loop, 32 conn." in out and "20.0 / 30.0 / 45.5" in out
    assert "| 250.0 | 249.9 | 1,900 | 8.0 / 15.0 / 22.0 | 1.00% |" in out
    assert "| steady | 150.0 | 149.0 | 100.00% | 2 | 20.0 / 40.0 | – |" in out
    # CPU per answered submission (250 answered): gateways 1.5 s → 6 ms, both regions summed.
    assert ("| steady | 149.0 | 6.00 | 0.00 | 3.00 | 2.00 | 0.00 | 0.00 | 0.00 | 1.00 | **12.00** |"
            in out)
    # streams_worker: only a file that predates the envelope → not measured yet.
    start, end = report.markers("streams_worker")
    section = out[out.index(start) : out.index(end)]
    assert "Not measured yet" in section and "streams_worker.json` predates" in section
    # Regenerating a generated doc changes nothing.
    assert report.expected_doc(out, results=tmp_path) == out


def test_no_results_at_all(tmp_path: Path) -> None:
    out = report.expected_doc("# Performance\n", results=tmp_path)
    assert out.count("Not measured yet") == len(report.SECTIONS)
    assert "predates" not in out
