"""Session fixtures: the real two-region platform, started by the project's own code."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra import platform as plat
from infra.layout import REPO_ROOT, Layout, load_layout

FLK = str(Path(sys.executable).parent / "flk")


@pytest.fixture(scope="session")
def layout() -> Layout:
    return load_layout()


@pytest.fixture(scope="session")
def platform(layout: Layout) -> Iterator[Layout]:
    """Both regions up and healthy; stopped again at the end if this session started them."""
    started = plat.up(layout)
    _wait_pipeline(layout)
    yield layout
    if started and not os.environ.get("FLK_KEEP_PLATFORM"):
        plat.down(layout)


# Port blocks of the second platform instances tests start: below the kernel's ephemeral range
# (32768+), next to the default block 20000-21999.
SCRATCH_UP_DOWN_UP = 22000
SCRATCH_PORT_CONFLICT = 24000
SCRATCH_NO_JAVA = 26000
SCRATCH_WAL_OUTAGE = 28000


def _wait_pipeline(layout: Layout, timeout_s: float = 180.0) -> None:
    """Every process answers /readyz as soon as it is up, but right after a cold start the
    dedup groups are still joining; wait until a signed probe gets a final (non-pending)
    answer through each region's gateway, so the first test does not measure the warm-up."""
    import httpx

    from bench.workload import Mix, Workload, signers
    from gateway.devkeys import load_signing_keys

    keys = load_signing_keys(layout.home)
    probes = Workload(signers({"default": keys["default"]}), mix=Mix(0, 0, 0, 0), seed=99)
    deadline = time.monotonic() + timeout_s
    for region in layout.regions:
        while True:
            sub = probes.next()
            try:
                r = httpx.post(f"{region.gateway_url(0)}/v1/pcs/submit", content=sub.body,
                               headers={"X-Tenant-Id": sub.tenant,
                                        "X-Request-Id": f"warmup-{sub.request_id}"},
                               timeout=10)  # fmt: skip
                if r.status_code in (200, 202) and r.json().get("status") != "pending":
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, f"{region.name}: the pipeline never answered"
            time.sleep(1.0)


def scratch_env(home: Path, port_base: int, regions: str = "eu-west,us-east") -> dict[str, str]:
    """Environment for a second, independent platform instance (own home and port block)."""
    return {
        **os.environ,
        "FLK_HOME": str(home),
        "FLK_PORT_BASE": str(port_base),
        "FLK_REGIONS": regions,
        "PATH": os.environ.get("PATH", ""),
    }


@pytest.fixture()
def scratch_home() -> Iterator[Path]:
    """A home for a second platform instance, outside pytest's private temporary root (the
    PostgreSQL server runs as its own user and must be able to reach it)."""
    home = Path(tempfile.mkdtemp(prefix="flk-test-"))
    yield home
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture()
def repo_root() -> Path:
    return REPO_ROOT
