"""MirrorMaker 2 in dedicated mode: `flk.wal` replicated between every pair of regions.

Configuration is split the way MirrorMaker's own docs split it: clusters (where each region's
brokers are), flows (which source → target pairs run and which topics they carry) and policy
(replication policy, internal-topic replication, refresh intervals). One file describes every
flow; each region runs its own MirrorMaker process with `--clusters <region>`, which runs only
the flows *into* that region, so stopping a region stops exactly the replication it consumes.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from infra import jvm, kafka
from infra.layout import REPO_ROOT, Layout, Region
from infra.procs import Service

LOG4J = REPO_ROOT / "infra" / "kafka" / "log4j2-mirror.properties"
REPLICATED_TOPICS = r"flk\.wal"
HEARTBEATS = "heartbeats"
MAX_RECORD_BYTES = 2 * 1024 * 1024


def _clusters(layout: Layout) -> dict[str, str]:
    props = {"clusters": ", ".join(r.name for r in layout.regions)}
    for r in layout.regions:
        props[f"{r.name}.bootstrap.servers"] = r.kafka_bootstrap
        # A WAL record is up to 1 MiB of body plus headers; the client default (1 MiB) kills
        # the mirror task on the first maximal request, and it does not recover by itself.
        # Client settings only take effect per cluster ("<cluster>.producer.*").
        props[f"{r.name}.producer.max.request.size"] = str(MAX_RECORD_BYTES)
        props[f"{r.name}.consumer.max.partition.fetch.bytes"] = str(MAX_RECORD_BYTES)
        props[f"{r.name}.producer.linger.ms"] = "5"
        # A fetch is answered when 16 KiB (~20 WAL records) are there or after 25 ms: at a
        # few hundred records/s a fetch per produce request of the gateways was most of the
        # mirror's and the source broker's CPU per record; the cost is ≤ 25 ms of mirror lag.
        props[f"{r.name}.consumer.fetch.min.bytes"] = "16384"
        props[f"{r.name}.consumer.fetch.max.wait.ms"] = "25"
    return props


def _flows(layout: Layout) -> dict[str, str]:
    props: dict[str, str] = {}
    for src in layout.regions:
        for dst in layout.others(src):
            flow = f"{src.name}->{dst.name}"
            props[f"{flow}.enabled"] = "true"
            props[f"{flow}.topics"] = REPLICATED_TOPICS
    return props


def _policy() -> dict[str, str]:
    return {
        # Remote topics are named "<source>.flk.wal" and keep the source's partition numbers.
        "replication.policy.class": "org.apache.kafka.connect.mirror.DefaultReplicationPolicy",
        "replication.factor": "1",
        "checkpoints.topic.replication.factor": "1",
        "heartbeats.topic.replication.factor": "1",
        "offset-syncs.topic.replication.factor": "1",
        "offset.storage.replication.factor": "1",
        "status.storage.replication.factor": "1",
        "config.storage.replication.factor": "1",
        # Two tasks per flow: with one, the mirror fell seconds behind at 800 records/s here.
        "tasks.max": "2",
        # Local set-up: notice new topics and partitions within seconds, not minutes.
        "refresh.topics.interval.seconds": "5",
        "refresh.groups.interval.seconds": "10",
        "sync.topic.configs.interval.seconds": "10",
        "emit.heartbeats.interval.seconds": "1",
        # Consumer groups are per region (each region runs its own workers); offsets are not
        # translated into the other region's groups.
        "sync.group.offsets.enabled": "false",
        # ... so offset syncs and checkpoints are of no use here. `emit.checkpoints.enabled =
        # false` makes the checkpoint connector refuse its configuration with an ERROR; a
        # negative interval gives it no tasks. Its tasks each kept a consumer of the
        # offset-syncs topic fetching every 25 ms (the cluster's consumer settings below):
        # 80 fetches/s on an idle source broker. An offset sync is a record to the source
        # cluster every `offset.lag.max` mirrored records per partition (default 100).
        "offset.lag.max": "10000",
        "emit.checkpoints.interval.seconds": "-1",
        "offset.flush.interval.ms": "2000",
    }


def properties(layout: Layout) -> str:
    sections = [
        ("Clusters: where each region's brokers are", _clusters(layout)),
        ("Flows: every region mirrors flk.wal from every other region", _flows(layout)),
        ("Policy", _policy()),
    ]
    out: list[str] = []
    for title, props in sections:
        out.append(f"# {title}")
        out.extend(f"{k} = {v}" for k, v in props.items())
        out.append("")
    return "\n".join(out)


def config_path(layout: Layout) -> Path:
    return layout.home / "mirror" / "mm2.properties"


def service(layout: Layout, region: Region, java: str, jars: Path) -> Service:
    path = config_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(properties(layout))
    argv = [
        java, f"-Xmx{layout.mirror_heap_mb}m", "-Xms128m", "-XX:+UseG1GC",
        "-Djava.awt.headless=true", f"-Dlog4j2.configurationFile={LOG4J}",
        f"-Dflk.component=mirror-{region.name}",
        "-cp", jvm.classpath(jars), "org.apache.kafka.connect.mirror.MirrorMaker",
        str(path), "--clusters", region.name,
    ]  # fmt: skip
    return Service(
        name="mirror",
        region=region.name,
        argv=argv,
        log=region.log_dir / "mirror.log",
        health=lambda: all(_fresh(heartbeat_age_ms(region, src)) for src in layout.others(region)),
    )


FRESH_MS = 10_000


def _fresh(age_ms: int | None) -> bool:
    """Heartbeats arrive every second; an older newest one means replication is stalled
    (e.g. a failed MirrorMaker task, which does not restart by itself)."""
    return age_ms is not None and age_ms < FRESH_MS


def internal_topics(layout: Layout, region: Region) -> list[str]:
    """MirrorMaker's own topics expected in `region` (its target-side state and heartbeats)."""
    names = [HEARTBEATS]
    for src in layout.others(region):
        names += [
            f"mm2-configs.{src.name}.internal",
            f"mm2-offsets.{src.name}.internal",
            f"mm2-status.{src.name}.internal",
            f"{src.name}.{HEARTBEATS}",
        ]
    return names


def heartbeat_age_ms(region: Region, source: Region, timeout: float = 3.0) -> int | None:
    """Age of the newest heartbeat from `source` mirrored into `region`: the live CRR lag.

    The heartbeats topic of `source` is mirrored to `<source>.heartbeats` in `region` with each
    record's original timestamp, so now − newest timestamp bounds the replication delay from
    above (plus at most one heartbeat interval). None when nothing has arrived yet.
    """
    topic = f"{source.name}.{HEARTBEATS}"
    newest = newest_timestamp_ms(region, topic, timeout)
    if newest is None:
        return None
    return max(0, int(time.time() * 1000) - newest)


def newest_timestamp_ms(region: Region, topic: str, timeout: float = 3.0) -> int | None:
    md = kafka.admin(region).list_topics(timeout=timeout)
    meta = md.topics.get(topic)
    if meta is None or meta.error is not None:
        return None
    consumer = Consumer(
        {
            "bootstrap.servers": region.kafka_bootstrap,
            "group.id": "flk-status",
            "enable.auto.commit": False,
            "log_level": 0,
        }
    )
    try:
        newest: int | None = None
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high <= low:
                continue
            consumer.assign([TopicPartition(topic, p, high - 1)])
            msg = consumer.poll(timeout)
            if msg is not None and msg.error() is None:
                ts = msg.timestamp()[1]
                newest = ts if newest is None else max(newest, ts)
        return newest
    finally:
        consumer.close()
