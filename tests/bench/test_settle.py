"""bench.harness.settle: a run waits for the platform's processes to go quiet, and gives up
after its timeout with the busy figure, against a real busy process (no platform needed)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from bench import harness


def _layout(run_dir: Path) -> Any:
    return SimpleNamespace(run_dir=run_dir)


def test_no_threshold_means_no_wait(tmp_path: Path) -> None:
    assert harness.settle(_layout(tmp_path), 0) is None


def test_waits_while_busy_and_returns_once_quiet(tmp_path: Path) -> None:
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"],
                               start_new_session=True)  # fmt: skip
    try:
        (tmp_path / "eu-west-worker-0.json").write_text(json.dumps({"pid": spinner.pid}))
        started = time.monotonic()
        busy = harness.settle(_layout(tmp_path), 0.5, timeout_s=0.7, window_s=0.2)
        assert time.monotonic() - started >= 0.7  # kept measuring until the timeout
        assert busy is not None and busy >= 0.5  # and gave up, still busy
    finally:
        spinner.kill()
        spinner.wait()
    sleeper = subprocess.Popen(["sleep", "30"], start_new_session=True)
    try:
        (tmp_path / "eu-west-worker-0.json").write_text(json.dumps({"pid": sleeper.pid}))
        quiet = harness.settle(_layout(tmp_path), 0.5, timeout_s=5, window_s=0.3)
        assert quiet is not None and quiet < 0.5
    finally:
        sleeper.kill()
        sleeper.wait()
