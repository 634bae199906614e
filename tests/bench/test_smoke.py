"""The CI smoke profile of the end-to-end benchmark: the result document is valid and at
least 99 % of the answers are final (not pending). Its speed is not gated (issue 7)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import REQUIRED, validate
from infra.layout import REPO_ROOT, Layout

pytestmark = pytest.mark.platform


def test_smoke_profile_result_is_valid_and_final(platform: Layout, tmp_path: Path) -> None:
    out = tmp_path / "smoke.json"
    run = subprocess.run(
        [sys.executable, "-m", "bench.e2e", "--profile", "smoke", "--out", str(out)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(out.read_text())
    assert validate(result) == []
    assert result["answers"]["errors"] == 0, result["answers"]
    assert result["final_share"] >= 0.99, result["answers"]
    assert result["latency_ms"]["origin_answer"]["count"] >= 0.99 * result["results"]["submissions"]
    assert any("gateway" in k for k in result["cpu_seconds"]), result["cpu_seconds"]


def test_validate_rejects_a_broken_document() -> None:
    assert "missing 'histograms'" in validate({"schema": 1})
    bad: dict[str, object] = {k: None for k in REQUIRED}
    bad.update(schema=1, final_share=1.5, histograms={"x": "not-hdr"})
    problems = validate(bad)
    assert any("final_share" in p for p in problems)
    assert any("histogram 'x'" in p for p in problems)


def test_performance_doc_matches_the_results() -> None:
    check = subprocess.run(
        [sys.executable, "-m", "bench.report", "--check"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert check.returncode == 0, check.stderr
