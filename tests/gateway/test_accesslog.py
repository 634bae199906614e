"""The access log's rotation (gateway/accesslog.py): bounded files, no line lost or split
within what is kept, the newest lines in the live file."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.accesslog import AccessLog


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _kept(path: Path, backups: int) -> list[str]:
    """Every kept line, oldest first: the highest-numbered backup first, the live file last."""
    out: list[str] = []
    for k in range(backups, 0, -1):
        out += _lines(path.with_name(f"{path.name}.{k}"))
    return out + _lines(path)


def test_lines_are_written_on_flush_with_a_time_prefix(tmp_path: Path) -> None:
    log = AccessLog(tmp_path / "logs" / "a.log", max_bytes=1 << 20, backups=2)
    log.line("submit request_id=r1 status=200")
    assert not (tmp_path / "logs" / "a.log").exists()  # nothing before a flush
    log.close()
    (line,) = _lines(tmp_path / "logs" / "a.log")
    date, clock, text = line.split(" ", 2)
    assert len(date) == 10 and len(clock) == 12 and clock[8] == ","  # HH:MM:SS,mmm
    assert text == "submit request_id=r1 status=200"


def test_rotation_keeps_the_newest_lines_in_order_within_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(path, max_bytes=2_000, backups=3)
    for i in range(1_000):
        log.line(f"submit request_id=r{i:04d}")
        if i % 10 == 9:
            log.flush()
    log.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["a.log", "a.log.1", "a.log.2", "a.log.3"]
    for name in files:
        assert (tmp_path / name).stat().st_size <= 2_000, name
    ids = [int(line.rsplit("=r", 1)[1]) for line in _kept(path, 3)]
    # what is kept is the tail of what was written: contiguous, in order, ending at the last
    assert ids == list(range(ids[0], 1_000))
    assert len(ids) > 3 * 2_000 // 60  # three full backups' worth of ~45-byte lines at least


def test_no_backups_starts_the_file_again(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(path, max_bytes=500, backups=0)
    for i in range(100):
        log.line(f"line {i}")
        log.flush()
    log.close()
    assert [p.name for p in tmp_path.iterdir()] == ["a.log"]
    assert path.stat().st_size <= 500 and _lines(path)[-1].endswith("line 99")


def test_a_reopened_log_counts_what_the_file_already_holds(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_bytes(b"x" * 900 + b"\n")
    log = AccessLog(path, max_bytes=1_000, backups=1)
    log.line("y" * 200)
    log.close()
    assert _lines(path.with_name("a.log.1")) == ["x" * 900]
    assert _lines(path)[0].endswith("y" * 200)


def test_a_full_buffer_is_written_without_waiting_for_the_flush(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    log = AccessLog(path, max_bytes=1 << 20, backups=1, max_lines=5)
    for i in range(7):
        log.line(f"line {i}")
    assert len(_lines(path)) == 5
    log.close()
    assert len(_lines(path)) == 7


def test_bad_bounds_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        AccessLog(tmp_path / "a.log", max_bytes=0, backups=1)
    with pytest.raises(ValueError):
        AccessLog(tmp_path / "a.log", max_bytes=10, backups=-1)
