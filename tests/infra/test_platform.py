"""The parts are real: distinct Kafka clusters, MirrorMaker JVMs and topics, PostgreSQL,
Redis and S3 answering — per region (issue 2 acceptance)."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra import kafka, mirror, postgres, redis, s3
from infra import platform as plat
from infra.layout import Layout
from infra.procs import Supervisor

pytestmark = pytest.mark.platform


def _cmdline(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()


def test_two_distinct_kafka_clusters(platform: Layout) -> None:
    ids = [kafka.cluster_id(r) for r in platform.regions]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


def test_mirrormaker_jvms_run_and_own_their_topics(platform: Layout) -> None:
    sup = Supervisor(platform.run_dir)
    for region in platform.regions:
        pid = sup.pid(f"{region.name}-mirror")
        assert pid is not None, f"no MirrorMaker process recorded for {region.name}"
        cmd = _cmdline(pid)
        assert "java" in cmd and "org.apache.kafka.connect.mirror.MirrorMaker" in cmd
        assert f"--clusters {region.name}" in cmd
        topics = set(kafka.admin(region).list_topics(timeout=10).topics)
        missing = set(mirror.internal_topics(platform, region)) - topics
        assert not missing, f"{region.name} lacks MirrorMaker topics {missing}"


def test_stores_answer_per_region(platform: Layout) -> None:
    for region in platform.regions:
        assert postgres.version(region).startswith("PostgreSQL 18")
        info = redis.info(region)
        assert info["tcp_port"] == region.port(79) and "redis_version" in info
        assert region.s3_bucket in s3.bucket_names(platform, region)


def test_background_work_is_paced_for_a_shared_machine(platform: Layout) -> None:
    """PostgreSQL's autovacuum sleeps 20 ms per 200 cost units (the default 2 ms let it take a
    core from the traffic), and MirrorMaker runs no checkpoint tasks (no offsets are
    translated; each task polled the offset-syncs topic every 25 ms)."""
    import psycopg

    for region in platform.regions:
        with psycopg.connect(region.postgres_dsn, connect_timeout=2) as conn:
            row = conn.execute("SHOW autovacuum_vacuum_cost_delay").fetchone()
        assert row is not None and row[0] == "20ms", row
    props = mirror.config_path(platform).read_text()
    assert "emit.checkpoints.interval.seconds = -1" in props.splitlines()


def test_postgres_stops_at_once_with_clients_connected(platform: Layout) -> None:
    """PostgreSQL alone is stopped and started again while clients hold connections (the
    gateways' and workers', and one here): the supervisor asks for a fast shutdown, which ends
    their sessions and shuts down cleanly — SIGTERM, a smart shutdown, waited for clients that
    never leave until the supervisor killed the server."""
    import psycopg

    region = platform.regions[0]
    sup = Supervisor(platform.run_dir)
    svc = postgres.service(region)
    client = psycopg.connect(region.postgres_dsn, connect_timeout=2)
    client.execute("SELECT 1")
    mark = svc.log.stat().st_size
    try:
        assert sup.stop(svc.key)
    finally:
        client.close()
        sup.start(svc, 120)
    with svc.log.open("rb") as fh:
        fh.seek(mark)
        text = fh.read().decode(errors="replace")
    assert "received fast shutdown request" in text, text[-2000:]
    assert "database system is shut down" in text, text[-2000:]
    assert postgres.version(region).startswith("PostgreSQL")


def test_status_json_reports_every_region(platform: Layout) -> None:
    st = plat.status(platform)
    assert st["healthy"] is True
    for region in platform.regions:
        reg = st["regions"][region.name]
        assert reg["kafka"]["bootstrap"] == region.kafka_bootstrap
        assert reg["redis"]["url"] == region.redis_url
        assert reg["postgres"]["dsn"] == region.postgres_dsn
        assert reg["s3"]["endpoint"] == region.s3_endpoint
        assert reg["s3"]["bucket"] == region.s3_bucket
        lags = reg["mirror"]["lag_ms"]
        assert set(lags) == {f"{o.name}->{region.name}" for o in platform.others(region)}
        assert all(v is not None and v < 30_000 for v in lags.values()), lags
