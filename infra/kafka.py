"""One KRaft broker (combined broker + controller) per region, run from the pinned jars."""

from __future__ import annotations

import base64
import subprocess
import uuid
from pathlib import Path

from confluent_kafka.admin import AdminClient

from flk.errors import PlatformError
from infra import jvm
from infra.layout import KAFKA, KAFKA_CONTROLLER, REPO_ROOT, Layout, Region
from infra.procs import Service

LOG4J = REPO_ROOT / "infra" / "kafka" / "log4j2-broker.properties"


def _dir(region: Region) -> Path:
    return region.data_dir / "kafka"


def server_properties(region: Region) -> str:
    port, cport = region.port(KAFKA), region.port(KAFKA_CONTROLLER)
    # Single-broker region: every internal topic has replication factor 1, so "acknowledged by
    # the in-sync replicas" (acks=all) means written to the leader's log (DESIGN "Local platform").
    props = {
        "process.roles": "broker,controller",
        "node.id": "1",
        "controller.quorum.bootstrap.servers": f"127.0.0.1:{cport}",
        "listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
        "log.dirs": str(_dir(region) / "data"),
        "num.partitions": "1",
        "default.replication.factor": "1",
        "min.insync.replicas": "1",
        "offsets.topic.replication.factor": "1",
        "offsets.topic.num.partitions": "8",
        "transaction.state.log.replication.factor": "1",
        "transaction.state.log.min.isr": "1",
        "share.coordinator.state.topic.replication.factor": "1",
        "share.coordinator.state.topic.min.isr": "1",
        "group.initial.rebalance.delay.ms": "0",
        # Topics are code (topics/catalogue.py); a typo in a topic name must not create one.
        "auto.create.topics.enable": "false",
        "log.retention.check.interval.ms": "60000",
        "num.network.threads": "2",
        "num.io.threads": "4",
    }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def _format(java: str, jars: Path, region: Region, config: Path) -> None:
    if (_dir(region) / "data" / "meta.properties").exists():
        return
    # A KRaft cluster id is 16 random bytes, base64url without padding (what random-uuid prints);
    # it may start with "-", hence the "--cluster-id=" form.
    cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    cmd = [
        java, "-cp", jvm.classpath(jars), f"-Dlog4j2.configurationFile={LOG4J}",
        "kafka.tools.StorageTool", "format", "--standalone", f"--cluster-id={cluster_id}",
        "-c", str(config),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise PlatformError(
            f"Formatting the Kafka storage of {region.name} failed:\n{proc.stdout}{proc.stderr}"
        )


def service(layout: Layout, region: Region, java: str, jars: Path) -> Service:
    base = _dir(region)
    base.mkdir(parents=True, exist_ok=True)
    config = base / "server.properties"
    config.write_text(server_properties(region))
    _format(java, jars, region, config)
    heap = f"-Xmx{layout.kafka_heap_mb}m"
    argv = [
        java, heap, f"-Xms{min(layout.kafka_heap_mb, 256)}m", "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20", "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={LOG4J}", f"-Dflk.component=kafka-{region.name}",
        "-cp", jvm.classpath(jars), "kafka.Kafka", str(config),
    ]  # fmt: skip
    return Service(
        name="kafka",
        region=region.name,
        argv=argv,
        log=region.log_dir / "kafka.log",
        ports=[region.port(KAFKA), region.port(KAFKA_CONTROLLER)],
        health=lambda: cluster_id(region, timeout=1.0) is not None,
    )


def admin(region: Region) -> AdminClient:
    return AdminClient({"bootstrap.servers": region.kafka_bootstrap, "log_level": 0})


def cluster_id(region: Region, timeout: float = 2.0) -> str | None:
    """The cluster id once the broker answers metadata requests, else None."""
    try:
        md = admin(region).list_topics(timeout=timeout)
    except Exception:  # KafkaException for "not up yet"; any failure means not healthy
        return None
    return md.cluster_id if md.brokers else None
