"""Start, watch and stop the platform's server processes.

Each server runs detached in its own session (process group) with its output in its own log
file, and is recorded in a pid file together with its kernel start time, so that `flk down`
never signals an unrelated process that happens to reuse the pid.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flk.errors import PlatformError, PortInUseError
from infra import ports

_REPO_ROOT = Path(__file__).resolve().parents[1]

HealthCheck = Callable[[], bool]


@dataclass
class Service:
    name: str
    region: str
    argv: list[str]
    log: Path
    ports: list[int] = field(default_factory=list)
    health: HealthCheck | None = None
    env: dict[str, str] | None = None
    cwd: Path | None = None
    user: str | None = None
    stop_timeout_s: float = 30.0
    # What asks the process to stop before SIGKILL (PostgreSQL: SIGINT, see infra/postgres.py).
    stop_signal: signal.Signals = signal.SIGTERM

    @property
    def key(self) -> str:
        return f"{self.region}-{self.name}"

    @property
    def label(self) -> str:
        return f"{self.name} ({self.region})"


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except OSError:
        return "(no log written)"
    tail = text.splitlines()[-lines:]
    return "\n".join("    " + line for line in tail) or "    (log is empty)"


def _start_time(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces; fields after it are fixed.
    fields = stat.rsplit(")", 1)[1].split()
    state = fields[0]
    if state in ("Z", "X"):
        return None
    return int(fields[19])


class Supervisor:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir

    def _pidfile(self, key: str) -> Path:
        return self.run_dir / f"{key}.json"

    def _record(self, key: str) -> dict[str, Any] | None:
        try:
            record: dict[str, Any] = json.loads(self._pidfile(key).read_text())
        except (OSError, ValueError):
            return None
        return record

    def pid(self, key: str) -> int | None:
        """The pid of the live process recorded under `key`, or None."""
        return self._live(self._record(key))

    @staticmethod
    def _live(record: dict[str, Any] | None) -> int | None:
        if record is None:
            return None
        pid = int(record["pid"])
        if _start_time(pid) != record.get("start_time"):
            return None
        return pid

    def recorded(self) -> list[str]:
        if not self.run_dir.is_dir():
            return []
        return sorted(p.stem for p in self.run_dir.glob("*.json"))

    def check_ports(self, svc: Service) -> None:
        if self.pid(svc.key) is not None:
            return
        for port in svc.ports:
            if not ports.is_free(port):
                raise PortInUseError(port, svc.label, ports.holder(port))

    def launch(self, svc: Service) -> int | None:
        """Start `svc` detached unless it already runs (then None); does not wait. The pid."""
        if self.pid(svc.key) is not None:
            return None
        self.check_ports(svc)
        svc.log.parent.mkdir(parents=True, exist_ok=True)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with svc.log.open("ab") as log:
            log.write(f"\n=== flk: starting {svc.label} at {time.ctime()} ===\n".encode())
        spec = {
            "argv": svc.argv,
            "log": str(svc.log),
            "cwd": str(svc.cwd) if svc.cwd else None,
            "env": {**os.environ, **(svc.env or {})},
            "user": svc.user,
        }
        launcher = subprocess.run(
            [sys.executable, "-m", "infra.spawn", json.dumps(spec)],
            capture_output=True, text=True, check=False, cwd=str(_REPO_ROOT),
        )  # fmt: skip
        if launcher.returncode != 0 or not launcher.stdout.strip().isdigit():
            why = launcher.stderr.strip().splitlines()[-1:] or ["no output"]
            raise PlatformError(f"Could not start {svc.label}: {why[0]}")
        pid = int(launcher.stdout.strip())
        self._pidfile(svc.key).write_text(json.dumps({
            "pid": pid, "start_time": _start_time(pid), "log": str(svc.log),
            "stop_signal": int(svc.stop_signal),
        }))  # fmt: skip
        return pid

    def start(self, svc: Service, timeout_s: float) -> bool:
        """Start `svc` unless it already runs; wait until healthy. True if it was started."""
        if self.launch(svc) is None:
            return False
        self.wait_healthy(svc, timeout_s)
        return True

    def wait_healthy(self, svc: Service, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        last_error = ""
        while True:
            if self.pid(svc.key) is None:
                self._pidfile(svc.key).unlink(missing_ok=True)
                raise PlatformError(
                    f"{svc.label} exited while starting. "
                    f"Last lines of {svc.log}:\n{log_tail(svc.log)}"
                )
            try:
                if svc.health is None or svc.health():
                    return
            except Exception as exc:  # health probes raise many client-specific errors
                last_error = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                self.stop(svc.key)
                why = f" (last probe: {last_error})" if last_error else ""
                raise PlatformError(
                    f"{svc.label} did not become healthy within {timeout_s:.0f} s{why}. "
                    f"Last lines of {svc.log}:\n{log_tail(svc.log)}",
                    hint="raise FLK_STARTUP_TIMEOUT on a slow machine",
                )
            time.sleep(0.25)

    def stop(self, key: str, timeout_s: float = 30.0) -> bool:
        """Stop the process group recorded under `key`: its stop signal (SIGTERM unless the
        service named another), then SIGKILL after timeout."""
        return bool(self.stop_many([key], timeout_s))

    def stop_many(self, keys: list[str], timeout_s: float = 30.0) -> list[str]:
        """Stop several process groups at once (signal all, then wait): the stopped keys."""
        live: dict[str, int] = {}
        for key in keys:
            record = self._record(key)
            pid = self._live(record)
            if record is None or pid is None:
                self._pidfile(key).unlink(missing_ok=True)
            else:
                live[key] = pid
                _signal_group(pid, signal.Signals(record.get("stop_signal", signal.SIGTERM)))
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(
            _start_time(pid) is not None for pid in live.values()
        ):
            time.sleep(0.1)
        for pid in live.values():
            if _start_time(pid) is not None:
                _signal_group(pid, signal.SIGKILL)
                while _start_time(pid) is not None:
                    time.sleep(0.05)
        for key in live:
            self._pidfile(key).unlink(missing_ok=True)
        return list(live)

    def kill(self, key: str) -> bool:
        """kill -9 the process group (a crash, for fault tests); the record is removed."""
        pid = self.pid(key)
        if pid is None:
            return False
        _signal_group(pid, signal.SIGKILL)
        while _start_time(pid) is not None:
            time.sleep(0.05)
        self._pidfile(key).unlink(missing_ok=True)
        return True


def _signal_group(pid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass
    except PermissionError:
        os.kill(pid, sig)
