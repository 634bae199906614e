"""Make a cluster match the catalogue: create what is missing, apply changed configs,
refuse partition changes on co-partitioned topics."""

from __future__ import annotations

from dataclasses import dataclass, field

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    TopicMetadata,
)

from flk.errors import FlkError
from topics.catalogue import TopicSpec


class TopicCatalogueError(FlkError):
    """The cluster cannot be made to match the catalogue without breaking an invariant."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    reconfigured: dict[str, dict[str, str]] = field(default_factory=dict)
    grown: dict[str, tuple[int, int]] = field(default_factory=dict)
    unchanged: list[str] = field(default_factory=list)


def replication(admin: AdminClient, timeout: float = 10.0) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) for this cluster's size: 3/2 when it can."""
    brokers = len(admin.list_topics(timeout=timeout).brokers)
    rf = max(1, min(3, brokers))
    return rf, max(1, rf - 1)


def apply(admin: AdminClient, specs: list[TopicSpec], timeout: float = 30.0) -> ApplyReport:
    report = ApplyReport()
    rf, min_isr = replication(admin, timeout)
    existing = admin.list_topics(timeout=timeout).topics
    _check_partitions(specs, existing)

    to_create = [s for s in specs if s.name not in existing]
    raced: set[str] = set()
    if to_create:
        futures = admin.create_topics(
            [
                NewTopic(
                    s.name,
                    num_partitions=s.partitions,
                    replication_factor=rf,
                    config={**s.configs, "min.insync.replicas": str(min_isr)},
                )
                for s in to_create
            ],
            operation_timeout=timeout,
        )
        for name, fut in futures.items():
            try:
                fut.result()
            except KafkaException as exc:
                # Another process created it between our list and create, or the metadata we
                # listed predates a creation (a CI run: a second apply right after the first
                # saw no topic yet): it exists, so its configs are checked like any other.
                if "TOPIC_ALREADY_EXISTS" not in str(exc):
                    raise TopicCatalogueError(f"Creating topic {name!r} failed: {exc}") from None
                raced.add(name)
                continue
            report.created.append(name)

    grow = {
        s.name: NewPartitions(s.name, s.partitions)
        for s in specs
        if s.name in existing and len(existing[s.name].partitions) < s.partitions
    }
    if grow:
        for name, fut in admin.create_partitions(list(grow.values())).items():
            fut.result()
            report.grown[name] = (len(existing[name].partitions), grow[name].new_total_count)

    present = [s for s in specs if s.name in existing or s.name in raced]
    if present:
        _reconcile_configs(admin, present, min_isr, report, timeout)
    return report


def _check_partitions(specs: list[TopicSpec], existing: dict[str, TopicMetadata]) -> None:
    for s in specs:
        meta = existing.get(s.name)
        if meta is None:
            continue
        have = len(meta.partitions)
        if have == s.partitions:
            continue
        if s.co_partitioned:
            raise TopicCatalogueError(
                f"Topic {s.name!r} has {have} partitions but the catalogue says {s.partitions}; "
                f"it is co-partitioned by key, so its partition count is never changed in place",
                hint="a partition change needs a migration to a new topic; restore the catalogue "
                f"value ({have}) in topics/catalogue.py",
            )
        if have > s.partitions:
            raise TopicCatalogueError(
                f"Topic {s.name!r} has {have} partitions; the catalogue asks for {s.partitions}, "
                "and Kafka cannot shrink a topic",
                hint=f"set its partitions to {have} or more in topics/catalogue.py",
            )


def _reconcile_configs(
    admin: AdminClient, specs: list[TopicSpec], min_isr: int, report: ApplyReport, timeout: float
) -> None:
    resources = [ConfigResource(ConfigResource.Type.TOPIC, s.name) for s in specs]
    described = admin.describe_configs(resources, request_timeout=timeout)
    current: dict[str, dict[str, str]] = {}
    for res, fut in described.items():
        current[res.name] = {k: v.value for k, v in fut.result().items()}
    changes: list[ConfigResource] = []
    for s in specs:
        wanted = {**s.configs, "min.insync.replicas": str(min_isr)}
        diff = {k: v for k, v in wanted.items() if current[s.name].get(k) != v}
        if not diff:
            if s.name not in report.grown:
                report.unchanged.append(s.name)
            continue
        report.reconfigured[s.name] = diff
        changes.append(
            ConfigResource(
                ConfigResource.Type.TOPIC,
                s.name,
                incremental_configs=[
                    ConfigEntry(k, v, incremental_operation=AlterConfigOpType.SET)
                    for k, v in diff.items()
                ],
            )
        )
    if changes:
        for _res, fut in admin.incremental_alter_configs(changes).items():
            fut.result()
