"""Is a TCP port free, and if not, which process holds it (read from /proc, no extra tools)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

_LISTEN = "0A"


def is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def is_listening(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def holder(port: int) -> str:
    """A human description of the process listening on `port`, e.g. "pid 123 (redis-server)"."""
    inodes = _listening_inodes(port)
    if not inodes:
        inodes = _listening_inodes(port, state=None)
        if not inodes:
            return "an unknown process (no socket on that port visible in /proc/net)"
    for pid_dir in Path("/proc").iterdir():
        if not pid_dir.name.isdigit():
            continue
        try:
            fds = list((pid_dir / "fd").iterdir())
        except OSError:  # gone, or another user's
            continue
        for fd in fds:
            try:
                target = os.readlink(fd)
            except OSError:  # closed meanwhile: the others of this process still count
                continue
            if target.startswith("socket:[") and target[8:-1] in inodes:
                return f"pid {pid_dir.name} ({_cmdline(pid_dir)})"
    return "a process this user cannot inspect"


def _listening_inodes(port: int, state: str | None = _LISTEN) -> set[str]:
    """Inodes of sockets bound to local `port` (listening only, unless `state` is None)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            cols = line.split()
            if (
                len(cols) > 9
                and (state is None or cols[3] == state)
                and int(cols[1].rsplit(":", 1)[1], 16) == port
                and cols[9] != "0"
            ):
                inodes.add(cols[9])
    return inodes


def _cmdline(pid_dir: Path) -> str:
    try:
        raw = (pid_dir / "cmdline").read_bytes().replace(b"\0", b" ").strip()
    except OSError:
        return "?"
    text = raw.decode(errors="replace")
    return text if len(text) <= 120 else text[:117] + "..."
