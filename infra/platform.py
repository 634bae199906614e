"""`flk up`, `flk down` and `flk status`: the whole two-region platform as one unit."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra import apps, jvm, kafka, mirror, postgres, redis, s3
from infra.layout import Layout, Region
from infra.procs import Service, Supervisor
from topics import apply as topics_apply
from topics.catalogue import catalogue

Progress = Callable[[str], None]

# Stop order: clients of the servers first, MirrorMaker before the brokers it reads.
_STOP_ORDER = ["gateway", "worker", "mirror", "s3", "postgres", "redis", "kafka"]


def _quiet(_: str) -> None:
    pass


def servers(layout: Layout, java: str, jars: Path) -> list[Service]:
    out: list[Service] = []
    for region in layout.regions:
        out += [
            kafka.service(layout, region, java, jars),
            redis.service(region),
            postgres.service(region),
            s3.service(layout, region),
        ]
    return out


def mirrors(layout: Layout, java: str, jars: Path) -> list[Service]:
    if len(layout.regions) < 2:
        return []
    return [mirror.service(layout, region, java, jars) for region in layout.regions]


def apply_topics(layout: Layout, region: Region) -> topics_apply.ApplyReport:
    names = [r.name for r in layout.regions]
    return topics_apply.apply(kafka.admin(region), catalogue(region.name, names))


def up(layout: Layout, progress: Progress = _quiet) -> list[str]:
    """Start everything that is not running and wait until healthy. Returns what was started.

    On any failure every process this call started is stopped again, so nothing is left
    half-started; processes that were already running are left alone.
    """
    sup = Supervisor(layout.run_dir)
    java = jvm.java_bin()
    progress("resolving the pinned Kafka jars (Maven Central, verified by sha256)")
    jars = jvm.ensure_jars(layout)
    started: list[str] = []
    try:
        base = servers(layout, java, jars)
        for svc in base:  # fail on a taken port before starting anything
            sup.check_ports(svc)
        _start_all(sup, base, layout.startup_timeout_s, started, progress)
        for region in layout.regions:
            report = apply_topics(layout, region)
            if report.created or report.reconfigured or report.grown:
                progress(
                    f"topics in {region.name}: created {len(report.created)}, "
                    f"reconfigured {len(report.reconfigured)}, grown {len(report.grown)}"
                )
        _start_all(sup, mirrors(layout, java, jars), layout.startup_timeout_s, started, progress)
        from gateway import devkeys  # the platform runs the gateway; it does not build on it

        devkeys.ensure_dev_tenants(layout.home)  # development keys, never committed
        _start_all(sup, apps.services(layout), layout.startup_timeout_s, started, progress)
    except BaseException:
        for key in reversed(started):
            sup.stop(key)
        raise
    return started


def _start_all(
    sup: Supervisor, services: list[Service], timeout_s: float, started: list[str],
    progress: Progress,
) -> None:  # fmt: skip
    """Launch all, then wait for each: the JVMs warm up in parallel."""
    launched: list[Service] = []
    for svc in services:
        if sup.launch(svc) is not None:
            started.append(svc.key)
            launched.append(svc)
            progress(f"starting {svc.label}")
    t0 = time.monotonic()
    for svc in launched:
        remaining = max(1.0, timeout_s - (time.monotonic() - t0))
        sup.wait_healthy(svc, remaining)
        progress(f"{svc.label} healthy ({time.monotonic() - t0:.1f} s)")


def _tier(key: str) -> int:
    for i, kind in enumerate(_STOP_ORDER):
        if f"-{kind}" in key:
            return i
    return -1  # unknown processes first: they may be clients of the servers


def down(layout: Layout, progress: Progress = _quiet) -> list[str]:
    """Stop every recorded process (and any stray one running from this platform's home).

    Tier by tier (clients, MirrorMaker, stores, brokers); within a tier all at once.
    """
    sup = Supervisor(layout.run_dir)
    stopped: list[str] = []
    keys = sup.recorded()
    for tier in sorted({_tier(k) for k in keys}):
        batch = [k for k in keys if _tier(k) == tier]
        for key in sup.stop_many(batch):
            progress(f"stopped {key}")
            stopped.append(key)
    for pid, cmd in strays(layout):
        progress(f"stopping stray process {pid}: {cmd[:100]}")
        try:
            os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        stopped.append(f"stray-{pid}")
    return stopped


def strays(layout: Layout) -> list[tuple[int, str]]:
    """Processes whose command line points into this platform's home but are not recorded."""
    marker = str(layout.home) + os.sep
    own = os.getpid()
    found: list[tuple[int, str]] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == own:
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmd:
            found.append((int(entry.name), cmd))
    return found


def status(layout: Layout) -> dict[str, Any]:
    """Health and endpoints of every component, as plain data (`flk status --json`)."""
    from gateway.devkeys import tenants_path
    sup = Supervisor(layout.run_dir)
    regions: dict[str, Any] = {}
    for region in layout.regions:
        regions[region.name] = _region_status(layout, region, sup)
    healthy = all(
        comp.get("healthy", False)
        for reg in regions.values()
        for comp in reg.values()
        if isinstance(comp, dict) and "healthy" in comp
    )
    return {
        "healthy": healthy,
        "home": str(layout.home),
        "kafka_version": jvm.kafka_version(),
        "s3_credentials_file": str(s3.credentials_path(layout)),
        "tenants_file": str(tenants_path(layout.home)),
        "regions": regions,
    }


def _probe(fn: Callable[[], Any]) -> tuple[bool, Any, str | None]:
    try:
        return True, fn(), None
    except Exception as exc:  # status reports every failure rather than raising
        return False, None, f"{type(exc).__name__}: {exc}"[:300]


def _lag(region: Region, source: Region) -> int | None:
    _, age, _ = _probe(lambda: mirror.heartbeat_age_ms(region, source))
    return age  # type: ignore[no-any-return]


def _proc(sup: Supervisor, region: Region, name: str) -> dict[str, Any]:
    key = f"{region.name}-{name}"
    return {"pid": sup.pid(key), "log": str(region.log_dir / f"{name}.log")}


def _region_status(layout: Layout, region: Region, sup: Supervisor) -> dict[str, Any]:
    out: dict[str, Any] = {}
    cid = kafka.cluster_id(region, timeout=2.0)
    out["kafka"] = {
        "bootstrap": region.kafka_bootstrap, "cluster_id": cid, "healthy": cid is not None,
        **_proc(sup, region, "kafka"),
    }  # fmt: skip
    ok, _, err = _probe(lambda: redis.ping(region))
    out["redis"] = {"url": region.redis_url, "healthy": ok, "error": err,
                    **_proc(sup, region, "redis")}  # fmt: skip
    ok, ver, err = _probe(lambda: postgres.version(region))
    out["postgres"] = {"dsn": region.postgres_dsn, "healthy": ok, "version": ver, "error": err,
                       **_proc(sup, region, "postgres")}  # fmt: skip
    ok, _, err = _probe(lambda: s3.ensure_bucket(layout, region))
    out["s3"] = {"endpoint": region.s3_endpoint, "bucket": region.s3_bucket, "healthy": ok,
                 "error": err, **_proc(sup, region, "s3")}  # fmt: skip
    if len(layout.regions) > 1:
        lag: dict[str, int | None] = {}
        for src in layout.others(region):
            lag[f"{src.name}->{region.name}"] = _lag(region, src)
        proc = _proc(sup, region, "mirror")
        # Healthy = running and a heartbeat from every source arrived within the last 10 s.
        fresh = all(mirror._fresh(v) for v in lag.values())
        out["mirror"] = {"healthy": proc["pid"] is not None and fresh, "lag_ms": lag, **proc}
    out.update(_app_status(region, sup))
    return out


def _app_status(region: Region, sup: Supervisor) -> dict[str, Any]:
    """The region's stream workers and gateway processes that the supervisor started (however
    many `FLK_WORKERS` / `FLK_GATEWAYS` asked for then): healthy = alive and `/readyz` 200."""
    out: dict[str, Any] = {}
    recorded = set(sup.recorded())
    for kind, service in (("worker", apps.worker), ("gateway", apps.gateway)):
        prefix = f"{region.name}-{kind}-"
        indexes = sorted(int(key[len(prefix):]) for key in recorded
                         if key.startswith(prefix) and key[len(prefix):].isdigit())  # fmt: skip
        for svc in (service(region, k) for k in indexes):
            pid = sup.pid(svc.key)
            out[svc.name] = {
                "url": f"http://127.0.0.1:{svc.ports[0]}", "pid": pid, "log": str(svc.log),
                "healthy": pid is not None and svc.health is not None and svc.health(),
            }  # fmt: skip
    return out
