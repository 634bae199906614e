"""The scale benchmark's pure logic: checkpoint counts, the disk-space refusal (exit 2 before
anything is touched) and the flatness ratios. The benchmark itself runs by hand (issue 7)."""

from __future__ import annotations

from typing import Any

import pytest

from bench import scale


@pytest.mark.parametrize(
    ("text", "count"),
    [("0", 0), ("5000", 5000), ("5k", 5000), ("15K", 15000), ("1M", 1_000_000),
     ("2.5M", 2_500_000), (" 3m ", 3_000_000)],
)  # fmt: skip
def test_parse_count(text: str, count: int) -> None:
    assert scale.parse_count(text) == count


@pytest.mark.parametrize("text", ["", "-1", "1G", "1.5k5", "abc", "0.0001k"])
def test_parse_count_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        scale.parse_count(text)


def test_parse_checkpoints() -> None:
    assert scale.parse_checkpoints("0,1M,3M,10M") == [0, 1_000_000, 3_000_000, 10_000_000]
    assert scale.parse_checkpoints("0, 5k, 15k") == [0, 5000, 15000]
    for bad in ("", "1M,1M", "3M,1M"):
        with pytest.raises(ValueError):
            scale.parse_checkpoints(bad)


def test_disk_estimate() -> None:
    est = scale.DiskEstimate(10_000_000, 3500, 2, 2.0, free_bytes=70 * 2**30, path="/x")
    assert est.needed_bytes == 140_000_000_000
    assert not est.ok
    msg = est.message()
    assert "not enough disk space" in msg and "130.4 GiB" in msg and "70.0 GiB free" in msg
    assert scale.DiskEstimate(1_000_000, 3500, 2, 2.0, 70 * 2**30, "/x").ok


def test_refuses_without_touching_anything(monkeypatch: pytest.MonkeyPatch,
                                           capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    class Usage:
        free = 10 * 2**30

    monkeypatch.setattr("shutil.disk_usage", lambda path: Usage())

    def touched(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the platform was touched after a failed disk check")

    monkeypatch.setattr(scale, "run", touched)
    monkeypatch.setattr(scale, "mirrors_paused", touched)
    assert scale.main(["--checkpoints", "0,10M"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not enough disk space" in err[0] and "10.0 GiB free" in err[0]


def _checkpoint(keys: int, achieved: float, fill_rate: float | None, per_cpu: float | None
                ) -> dict[str, Any]:  # fmt: skip
    return {"keys": keys,
            "fill": {"records": 0 if fill_rate is None else 1000, "records_per_s": fill_rate,
                     "records_per_worker_cpu_s": per_cpu},
            "measure": {"achieved_rate": achieved, "latency_ms": {"p99": 50.0}}}  # fmt: skip


def test_flatness() -> None:
    flat = scale.flatness([_checkpoint(0, 300, None, None), _checkpoint(1, 299, 3000, 4500),
                           _checkpoint(10, 295, 2800, 4400)])  # fmt: skip
    assert flat["achieved_rate_ratio"] == pytest.approx(0.983)
    assert flat["fill_records_per_s_ratio"] == pytest.approx(0.933)
    assert flat["flat"] is True
    falls = scale.flatness([_checkpoint(0, 300, None, None), _checkpoint(1, 300, 3000, 4500),
                            _checkpoint(10, 300, 1500, 2250)])  # fmt: skip
    assert falls["fill_records_per_s_ratio"] == 0.5
    assert falls["flat"] is False
