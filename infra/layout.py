"""Where every component of the local platform lives: regions, ports, directories.

One typed place, read once from `FLK_*` settings (see `flk.config`). Region *i* (in the order
of `FLK_REGIONS`) owns the port block `FLK_PORT_BASE + 1000 * i`; the offsets below are fixed so
that a port number alone tells which region and component it belongs to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from flk.config import Config, ConfigError

REPO_ROOT = Path(__file__).resolve().parents[1]

# Offsets inside a region's port block.
KAFKA = 92
KAFKA_CONTROLLER = 93
REDIS = 79
POSTGRES = 32
S3 = 33
WEED_MASTER = 34
WEED_VOLUME = 35
WEED_FILER = 36
WEED_GRPC = 10  # added to each SeaweedFS port above: its gRPC twin
GATEWAY = 80  # gateway process k listens on GATEWAY + k
WORKER_WEB = 60  # stream worker k serves metrics on WORKER_WEB + k

_REGION_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}[a-z0-9]$")


@dataclass(frozen=True)
class Region:
    name: str
    index: int
    port_base: int
    home: Path

    def port(self, offset: int) -> int:
        return self.port_base + offset

    @property
    def kafka_bootstrap(self) -> str:
        return f"127.0.0.1:{self.port(KAFKA)}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.port(REDIS)}/0"

    @property
    def postgres_dsn(self) -> str:
        return f"postgresql://flk@127.0.0.1:{self.port(POSTGRES)}/flk"

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port(S3)}"

    @property
    def s3_bucket(self) -> str:
        return f"flk-{self.name}"

    def gateway_url(self, k: int = 0) -> str:
        return f"http://127.0.0.1:{self.port(GATEWAY + k)}"

    @property
    def data_dir(self) -> Path:
        return self.home / self.name

    @property
    def log_dir(self) -> Path:
        return self.home / self.name / "logs"


@dataclass(frozen=True)
class Layout:
    home: Path
    regions: tuple[Region, ...]
    startup_timeout_s: float
    kafka_heap_mb: int
    mirror_heap_mb: int
    extra: dict[str, str] = field(default_factory=dict)

    @cached_property
    def run_dir(self) -> Path:
        return self.home / "run"

    @property
    def lib_dir(self) -> Path:
        return self.home / "lib"

    def region(self, name: str) -> Region:
        for region in self.regions:
            if region.name == name:
                return region
        known = ", ".join(r.name for r in self.regions)
        raise ConfigError(f"Unknown region {name!r}; known regions: {known}")

    def others(self, region: Region) -> tuple[Region, ...]:
        return tuple(r for r in self.regions if r.name != region.name)


def _ephemeral_range() -> tuple[int, int] | None:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
    except (OSError, ValueError):
        return None
    return int(low), int(high)


def _check_ephemeral(first: int, last: int) -> None:
    """Servers must not listen inside the kernel's ephemeral range: outgoing connections take
    local ports there at random, so a server's port is sometimes taken when it starts."""
    span = _ephemeral_range()
    if span and first <= span[1] and last >= span[0]:
        raise ConfigError(
            f"Setting 'FLK_PORT_BASE' puts ports {first}-{last} inside the kernel's ephemeral "
            f"port range {span[0]}-{span[1]}, where outgoing connections take ports at random; "
            f"choose a base below {span[0] - (last - first + 1)}"
        )


def load_layout(config: Config | None = None) -> Layout:
    config = config or Config()
    home = Path(config("HOME", default=str(REPO_ROOT / ".flk"))).resolve()
    raw_regions = config("REGIONS", default="eu-west,us-east")
    names = [n.strip() for n in raw_regions.split(",") if n.strip()]
    if len(names) < 1:
        raise ConfigError("Setting 'FLK_REGIONS' must name at least one region")
    if len(set(names)) != len(names):
        raise ConfigError(f"Setting 'FLK_REGIONS' repeats a region: {names!r}")
    for name in names:
        if not _REGION_NAME.match(name):
            raise ConfigError(
                f"Setting 'FLK_REGIONS' has invalid region name {name!r} "
                "(lowercase letters, digits and '-', e.g. 'eu-west')"
            )
    port_base = config("PORT_BASE", cast=int, default=20000)
    if not 1024 <= port_base <= 65535 - 1000 * len(names):
        raise ConfigError(
            f"Setting 'FLK_PORT_BASE' has invalid value {port_base!r}: it must leave room for "
            f"{len(names)} blocks of 1000 ports between 1024 and 65535"
        )
    _check_ephemeral(port_base, port_base + 1000 * len(names) - 1)
    regions = tuple(
        Region(name=n, index=i, port_base=port_base + 1000 * i, home=home)
        for i, n in enumerate(names)
    )
    return Layout(
        home=home,
        regions=regions,
        startup_timeout_s=config("STARTUP_TIMEOUT", cast=float, default=120.0),
        kafka_heap_mb=config("KAFKA_HEAP_MB", cast=int, default=512),
        mirror_heap_mb=config("MIRROR_HEAP_MB", cast=int, default=384),
    )
