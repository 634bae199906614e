"""The pipeline's own processes per region: gateway processes and stream workers.

Each is an ordinary `flk` subcommand run under the supervisor, with its own port, log and
health check (`GET /readyz` answering 200).
"""

from __future__ import annotations

import importlib.util
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


def gateway(region: Region, index: int) -> Service:
    port = region.port(GATEWAY + index)
    return Service(
        name=f"gateway-{index}",
        region=region.name,
        argv=[FLK, "gateway", "--region", region.name, "--index", str(index)],
        log=region.log_dir / f"gateway-{index}.log",
        ports=[port],
        health=lambda: ready(f"http://127.0.0.1:{port}/readyz"),
    )


def worker(region: Region, index: int) -> Service:
    port = region.port(WORKER_WEB + index)
    return Service(
        name=f"worker-{index}",
        region=region.name,
        argv=[FLK, "worker", "--region", region.name, "--index", str(index)],
        log=region.log_dir / f"worker-{index}.log",
        ports=[port],
        health=lambda: ready(f"http://127.0.0.1:{port}/readyz"),
    )


def _present(module: str) -> bool:
    # While the gateway and the stream workers are being built (issues 4 and 5) the platform
    # starts whichever of them exists.
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def services(layout: Layout) -> list[Service]:
    n_gateways, n_workers = counts()
    out: list[Service] = []
    for region in layout.regions:
        if _present("streams.worker"):
            out += [worker(region, k) for k in range(n_workers)]
        if _present("gateway.server"):
            out += [gateway(region, k) for k in range(n_gateways)]
    return out
