"""`flk worker`, `flk replay`, `flk tail` as a user runs them: exit codes and exact messages."""

from __future__ import annotations

import json
import random
import subprocess
import time

import pytest

from infra.layout import Layout
from streams import walgen
from tests.conftest import FLK
from tests.streams.live import Replies, Submitter, key_of


def flk(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run([FLK, *args], capture_output=True, text=True, check=False,
                          env={**os.environ, **(env or {})}, timeout=600)  # fmt: skip


def test_an_unknown_region_is_a_usage_error() -> None:
    res = flk("replay", "--region", "nowhere")
    assert res.returncode == 2
    assert res.stderr == "Error: Unknown region 'nowhere'; known regions: eu-west, us-east\n"


def test_a_bad_time_names_the_option_and_the_value() -> None:
    res = flk("replay", "--region", "eu-west", "--from-time", "yesterday")
    assert res.returncode == 2
    assert res.stderr.endswith(
        "Error: Invalid value for '--from-time': 'yesterday' is neither milliseconds since the "
        "epoch nor an ISO 8601 time (e.g. 2026-01-31T12:00:00Z)\n")


def _worker_with(key: str, value: str) -> str:
    """What a worker started with one bad setting prints; it must stop with a usage error."""
    res = flk("worker", "--region", "eu-west", "--index", "5", env={key: value})
    assert res.returncode == 2
    return res.stderr


def test_a_bad_setting_stops_the_worker_naming_the_key() -> None:
    assert _worker_with("FLK_STREAM_BATCH_MAX", "0") == (
        "Error: Setting 'FLK_STREAM_BATCH_MAX' has invalid value 0: it must be between 1 and "
        "100000\n")
    assert ("Setting 'FLK_STREAM_SWEEP_GRACE' has invalid value 'soon'"
            in _worker_with("FLK_STREAM_SWEEP_GRACE", "soon"))  # fmt: skip
    assert _worker_with("FLK_STREAM_FETCH_INTERVAL_MS", "5000") == (
        "Error: Setting 'FLK_STREAM_FETCH_INTERVAL_MS' has invalid value 5000: it must be "
        "between 0 and 1000\n")
    assert _worker_with("FLK_STREAM_MIRROR_WITHIN_MS", "-1") == (
        "Error: Setting 'FLK_STREAM_MIRROR_WITHIN_MS' has invalid value -1: it must be "
        "between 0 and 10000\n")


@pytest.mark.platform
def test_tail_of_a_missing_topic(platform: Layout) -> None:
    res = flk("tail", "no.such.topic", "--region", "eu-west")
    assert res.returncode == 2
    assert res.stderr == ("Error: topic 'no.such.topic' does not exist in eu-west\n"
                          "Hint: list topics with the Kafka tools, or see topics/catalogue.py\n")


@pytest.mark.platform
def test_replay_diff_and_tail_on_fresh_records(platform: Layout) -> None:
    region = platform.region("eu-west")
    sub, replies = Submitter(platform, region, walgen.publish(platform.home)), Replies(region)
    rng = random.Random()
    data = walgen.body("st-b", rng)
    start = int(time.time() * 1000) - 2000
    recs = [sub.record(data, tenant="st-b"), sub.record(data, tenant="st-b")]
    sub.send(recs)
    replies.wait([r.request_id for r in recs])
    res = flk("replay", "--region", "eu-west", "--from-time", str(start), "--diff",
              "--tenant", "st-b", "--json")  # fmt: skip
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout)
    assert report["diff"]["differences"] == 0 and report["diff"]["compared"] >= 1
    assert report["side_topic"].startswith("flk.replay.") and report["records"] >= 2
    # The side topic holds the replayed outcome of the key, decoded by `flk tail`.
    res = flk("tail", report["side_topic"], "--region", "eu-west")
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    mine = [x for x in lines if x["key"] == key_of("st-b", data).decode()]
    assert len(mine) == 1 and mine[0]["value"]["schema"] == "outcome"
    assert mine[0]["value"]["winner_request_id"] == recs[0].request_id
    # WAL records are shown with their headers, without their body unless asked for.
    res = flk("tail", "flk.wal", "--region", "eu-west", "-n", "200")
    wal = [json.loads(line) for line in res.stdout.splitlines()]
    assert wal and all("body" not in x["value"] and "flk-request-id" in x["headers"]
                       for x in wal if "sha256" in x["value"])  # fmt: skip
    assert any("sha256" in x["value"] for x in wal)
    replies.close()
