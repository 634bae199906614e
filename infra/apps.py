"""The pipeline's own processes per region: gateway processes and stream workers.

Each is an ordinary `flk` subcommand run under the supervisor, with its own port, log and
health check (`GET /readyz` answering 200).
"""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

from flk.config import Config
from infra.layout import GATEWAY, WORKER_WEB, Layout, Region
from infra.procs import Service

FLK = str(Path(sys.executable).parent / "flk")


def ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def counts(config: Config | None = None) -> tuple[int, int]:
    """(gateway processes, stream workers) per region."""
    config = config or Config()
    return config("GATEWAYS", cast=int, default=2), config("WORKERS", cast=int, default=1)


def _process(command: str, region: Region, index: int, offset: int) -> Service:
    port = region.port(offset + index)
    return Service(
        name=f"{command}-{index}",
        region=region.name,
        argv=[FLK, command, "--region", region.name, "--index", str(index)],
        log=region.log_dir / f"{command}-{index}.log",
        ports=[port],
        health=lambda: ready(f"http://127.0.0.1:{port}/readyz"),
    )


def gateway(region: Region, index: int) -> Service:
    return _process("gateway", region, index, GATEWAY)


def worker(region: Region, index: int) -> Service:
    return _process("worker", region, index, WORKER_WEB)


def services(layout: Layout) -> list[Service]:
    n_gateways, n_workers = counts()
    out: list[Service] = []
    for region in layout.regions:
        # Workers first: a gateway is ready only once its reply partition is assigned, and its
        # first requests want a dedup stage to answer them.
        out += [worker(region, k) for k in range(n_workers)]
        out += [gateway(region, k) for k in range(n_gateways)]
    return out
