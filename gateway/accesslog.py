"""The gateway's access log: one line per submit, in a file of its own that rotates by size.

A line is about 200 bytes; at 1,500 submits/s that is 26 GB a day, so the file cannot grow
without bound, and it cannot share the process's log (`gateway-<k>.log`), which the supervisor
holds open as the process's stdout. Lines are kept in memory and written with one `write` per
`flush` (the gateway flushes every second, and at shutdown), or as soon as `max_lines` are
waiting. Before a write that would take the file past `max_bytes`, the file is renamed to
`<name>.1` (`.1` to `.2`, …; the oldest of `backups` is dropped) and a new one started: the
naming of the standard library's RotatingFileHandler, without its stat, seek and flush per
line. A file exceeds `max_bytes` only when one flush alone is larger. Nothing here knows what
a line says; the caller never passes a body (tests/gateway/test_logging.py).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import IO


class AccessLog:
    def __init__(self, path: Path, max_bytes: int, backups: int, max_lines: int = 10_000) -> None:
        if max_bytes < 1 or backups < 0 or max_lines < 1:
            raise ValueError("max_bytes and max_lines must be ≥ 1, backups ≥ 0")
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self.max_lines = max_lines
        self._lines: list[str] = []
        self._file: IO[bytes] | None = None
        self._size = 0
        self._second = -1
        self._prefix = ""

    def line(self, text: str) -> None:
        """Queue `text` as one line, prefixed with the local time to the millisecond."""
        now = time.time()
        second = int(now)
        if second != self._second:  # strftime once a second, not once a line
            self._second = second
            self._prefix = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(second))
        self._lines.append(f"{self._prefix},{int((now - second) * 1000):03d} {text}\n")
        if len(self._lines) >= self.max_lines:
            self.flush()

    def flush(self) -> None:
        if not self._lines:
            return
        data = "".join(self._lines).encode("utf-8", "replace")
        self._lines.clear()
        f = self._open()
        if self._size > 0 and self._size + len(data) > self.max_bytes:
            f = self._rotate()
        f.write(data)
        f.flush()
        self._size += len(data)

    def close(self) -> None:
        self.flush()
        if self._file is not None:
            self._file.close()
            self._file = None

    def _open(self) -> IO[bytes]:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")
            self._size = self._file.tell()
        return self._file

    def _rotate(self) -> IO[bytes]:
        assert self._file is not None
        self._file.close()
        if self.backups > 0:
            for k in range(self.backups - 1, 0, -1):
                older = self._backup(k)
                if older.exists():
                    os.replace(older, self._backup(k + 1))
            os.replace(self.path, self._backup(1))
        self._file = open(self.path, "wb")
        self._size = 0
        return self._file

    def _backup(self, k: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{k}")
