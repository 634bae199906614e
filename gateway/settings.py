"""The gateway's settings, read once at start-up from `FLK_*` (see `flk.config`).

Time budget of one submit (SPEC §4): the WAL write may take at most `wal_timeout_ms`
(librdkafka's delivery.timeout.ms; its default of 300 s would hang a request when a broker is
down), then the gateway waits at most `reply_wait_s` for the dedup decision. Both must fit in
`request_budget_s`, which is what a client can expect as the worst-case answer time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from flk.config import Config, ConfigError, Secret
from infra.layout import GATEWAY, Layout, Region, load_layout

MIB = 1024 * 1024


@dataclass(frozen=True)
class Settings:
    region: Region
    index: int
    home: Path
    port: int
    host: str
    request_budget_s: float
    reply_wait_s: float
    wal_timeout_ms: int
    linger_ms: float
    max_body_bytes: int
    backpressure_lag: int
    backpressure_poll_s: float
    max_in_flight: int
    retry_after_s: int
    metrics_user: str | None
    metrics_password: Secret | None
    tenants_file: Path
    policy_file: Path
    reload_interval_s: float
    clock_offset_ms: int
    max_future_skew_ms: int
    request_marker_ttl_s: int
    log_level: str
    access_log: bool
    access_log_file: Path
    access_log_max_bytes: int
    access_log_backups: int

    @property
    def reply_partition(self) -> int:
        # Gateway process k leases partition k of flk.replies (DESIGN "Gateway replies").
        return self.index


def _region_suffix(name: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", name.upper())


def load_settings(
    region: str, index: int, config: Config | None = None, layout: Layout | None = None
) -> Settings:
    config = config or Config()
    layout = layout or load_layout(config)
    reg = layout.region(region)
    if not 0 <= index < 8:
        raise ConfigError(f"gateway index {index} must be in 0..7 (one flk.replies partition each)")
    budget = config("GATEWAY_REQUEST_BUDGET_S", cast=float, default=4.0)
    reply_wait = config("GATEWAY_REPLY_WAIT_S", cast=float, default=2.0)
    wal_timeout = config("GATEWAY_WAL_TIMEOUT_MS", cast=int, default=1500)
    if wal_timeout < 100:
        raise ConfigError(f"Setting 'FLK_GATEWAY_WAL_TIMEOUT_MS' has invalid value {wal_timeout}:"
                          " must be ≥ 100")
    if wal_timeout / 1000 + reply_wait > budget:
        raise ConfigError(
            f"Setting 'FLK_GATEWAY_REQUEST_BUDGET_S' has invalid value {budget}: it must cover "
            f"FLK_GATEWAY_WAL_TIMEOUT_MS ({wal_timeout} ms) + FLK_GATEWAY_REPLY_WAIT_S "
            f"({reply_wait} s)"
        )
    max_in_flight = config("GATEWAY_MAX_IN_FLIGHT", cast=int, default=2000)
    if max_in_flight < 1:
        raise ConfigError(f"Setting 'FLK_GATEWAY_MAX_IN_FLIGHT' has invalid value {max_in_flight}:"
                          " must be ≥ 1")
    user = config("GATEWAY_METRICS_USER", default="") or None
    password_text = config("GATEWAY_METRICS_PASSWORD", default="")
    if bool(user) != bool(password_text):
        raise ConfigError("Settings 'FLK_GATEWAY_METRICS_USER' and 'FLK_GATEWAY_METRICS_PASSWORD'"
                          " must be set together")
    # A per-region clock offset lets tests put one region's receive stamps ahead of the other's.
    offset = config(f"CLOCK_OFFSET_MS_{_region_suffix(reg.name)}", cast=int,
                    default=config("CLOCK_OFFSET_MS", cast=int, default=0))
    level = config("GATEWAY_LOG_LEVEL", default="info").lower()
    if level not in ("debug", "info", "warning", "error"):
        raise ConfigError(f"Setting 'FLK_GATEWAY_LOG_LEVEL' has invalid value {level!r}: "
                          "use debug, info, warning or error")
    log_mb = config("GATEWAY_ACCESS_LOG_MAX_MB", cast=int, default=64)
    if log_mb < 1:
        raise ConfigError(f"Setting 'FLK_GATEWAY_ACCESS_LOG_MAX_MB' has invalid value {log_mb}: "
                          "must be ≥ 1")
    backups = config("GATEWAY_ACCESS_LOG_BACKUPS", cast=int, default=4)
    if not 0 <= backups <= 100:
        raise ConfigError(f"Setting 'FLK_GATEWAY_ACCESS_LOG_BACKUPS' has invalid value {backups}:"
                          " must be in 0..100")
    access_file = config("GATEWAY_ACCESS_LOG_FILE", default="") or str(
        reg.log_dir / f"gateway-{index}-access.log")
    return Settings(
        region=reg,
        index=index,
        home=layout.home,
        port=reg.port(GATEWAY + index),
        host=config("GATEWAY_HOST", default="127.0.0.1"),
        request_budget_s=budget,
        reply_wait_s=reply_wait,
        wal_timeout_ms=wal_timeout,
        linger_ms=config("GATEWAY_LINGER_MS", cast=float, default=2.0),
        max_body_bytes=config("GATEWAY_MAX_BODY_BYTES", cast=int, default=MIB),
        backpressure_lag=config("GATEWAY_BACKPRESSURE_LAG", cast=int, default=50_000),
        backpressure_poll_s=config("GATEWAY_BACKPRESSURE_POLL_S", cast=float, default=1.0),
        max_in_flight=max_in_flight,
        retry_after_s=config("GATEWAY_RETRY_AFTER_S", cast=int, default=1),
        metrics_user=user,
        metrics_password=Secret(password_text) if password_text else None,
        tenants_file=Path(config("TENANTS_FILE", default=str(layout.home / "tenants.yaml"))),
        policy_file=Path(config("POLICY_FILE", default=str(layout.home / "policy.yaml"))),
        reload_interval_s=config("GATEWAY_RELOAD_INTERVAL_S", cast=float, default=1.0),
        clock_offset_ms=offset,
        max_future_skew_ms=config("GATEWAY_MAX_FUTURE_SKEW_MS", cast=int, default=1000),
        request_marker_ttl_s=config("GATEWAY_REQUEST_MARKER_TTL_S", cast=int, default=86_400),
        log_level=level,
        access_log=config("GATEWAY_ACCESS_LOG", cast=bool, default=True),
        access_log_file=Path(access_file),
        access_log_max_bytes=log_mb * MIB,
        access_log_backups=backups,
    )
