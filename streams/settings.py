"""The stream worker's settings, read once at start-up from `FLK_*` (see `flk.config`); an
invalid value fails naming the key.

RocksDB's defaults are large (a 2 GiB block cache and 3 × 64 MiB write buffers per store, and
Faust opens one store per partition), so the limits here are explicit and small: a worker
holding all 8 partitions of the table uses at most about
8 × (cache + write buffers × count) of RocksDB memory (about 160 MiB by default).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flk.config import Config, ConfigError
from infra.layout import WORKER_WEB, Layout, Region, load_layout

MIB = 1024 * 1024
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
_UNIT_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def dedup_group(region: str) -> str:
    """Faust application id and consumer group of a region's dedup stage (the gateway's
    backpressure reads this group's lag)."""
    return f"flk-dedup-{region}"


@dataclass(frozen=True)
class Settings:
    layout: Layout
    region: Region
    index: int
    home: Path
    app_id: str
    port: int
    host: str
    data_dir: Path
    batch_max: int
    batch_within_s: float
    mirror_within_s: float
    fetch_min_bytes: int
    fetch_max_wait_ms: int
    fetch_interval_ms: int
    standby_replicas: int
    rocksdb_cache_bytes: int
    rocksdb_write_buffer_bytes: int
    rocksdb_write_buffers: int
    rocksdb_max_open_files: int
    sweep_grace_ms: int
    sweep_step: int
    sweep_interval_s: float
    delivery_timeout_ms: int
    session_timeout_s: float
    log_level: str

    @property
    def postgres_dsn(self) -> str:
        return self.region.postgres_dsn

    @property
    def source_topics(self) -> list[str]:
        from topics.catalogue import WAL, mirrored_wal

        return [WAL, *(mirrored_wal(r.name) for r in self.layout.others(self.region))]


def duration_ms(text: str) -> int:
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise ValueError("not a duration (e.g. 500ms, 30s, 15m, 1h, 2d)")
    return int(m.group(1)) * _UNIT_MS[m.group(2)]


def _positive(config: Config, key: str, default: int, low: int = 1, high: int = 1 << 40) -> int:
    value = config(key, cast=int, default=default)
    if not low <= value <= high:
        raise ConfigError(f"Setting 'FLK_{key}' has invalid value {value!r}: "
                          f"it must be between {low} and {high}")  # fmt: skip
    return value


def load_settings(region: str, index: int = 0, config: Config | None = None,
                  layout: Layout | None = None) -> Settings:  # fmt: skip
    config = config or Config()
    layout = layout or load_layout(config)
    reg = layout.region(region)
    if not 0 <= index < 100:
        raise ConfigError(f"worker index {index} must be in 0..99")
    level = config("STREAM_LOG_LEVEL", default="info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"Setting 'FLK_STREAM_LOG_LEVEL' has invalid value {level!r}: "
                          "use debug, info, warning or error")  # fmt: skip
    within_ms = _positive(config, "STREAM_BATCH_WITHIN_MS", 5, 1, 10_000)
    grace = config("STREAM_SWEEP_GRACE", cast=duration_ms, default="1h")
    return Settings(
        layout=layout,
        region=reg,
        index=index,
        home=layout.home,
        app_id=dedup_group(reg.name),
        port=reg.port(WORKER_WEB + index),
        host="127.0.0.1",
        data_dir=reg.data_dir / "streams" / f"worker-{index}",
        batch_max=_positive(config, "STREAM_BATCH_MAX", 500, 1, 100_000),
        batch_within_s=within_ms / 1000,
        mirror_within_s=_positive(config, "STREAM_MIRROR_WITHIN_MS", 100, 0, 10_000) / 1000,
        fetch_min_bytes=_positive(config, "STREAM_FETCH_MIN_BYTES", 1, 1, 1 << 20),
        fetch_max_wait_ms=_positive(config, "STREAM_FETCH_MAX_WAIT_MS", 250, 1, 10_000),
        fetch_interval_ms=_positive(config, "STREAM_FETCH_INTERVAL_MS", 10, 0, 1000),
        standby_replicas=_positive(config, "STREAM_STANDBY_REPLICAS", 1, 0, 3),
        rocksdb_cache_bytes=_positive(config, "STREAM_ROCKSDB_CACHE_MB", 8, 1, 65536) * MIB,
        rocksdb_write_buffer_bytes=_positive(config, "STREAM_ROCKSDB_WRITE_BUFFER_MB", 4, 1, 1024)
        * MIB,
        rocksdb_write_buffers=_positive(config, "STREAM_ROCKSDB_WRITE_BUFFERS", 2, 1, 16),
        rocksdb_max_open_files=_positive(config, "STREAM_ROCKSDB_MAX_OPEN_FILES", 256, 16, 65536),
        sweep_grace_ms=grace,
        sweep_step=_positive(config, "STREAM_SWEEP_STEP", 2000, 1, 1_000_000),
        sweep_interval_s=_positive(config, "STREAM_SWEEP_INTERVAL_MS", 5000, 1, 3_600_000) / 1000,
        delivery_timeout_ms=_positive(
            config, "STREAM_DELIVERY_TIMEOUT_MS", 30_000, 1000, 600_000
        ),
        session_timeout_s=_positive(config, "STREAM_SESSION_TIMEOUT_S", 10, 6, 300),
        log_level=level,
    )
