"""Every topic the pipeline owns, with its partitions and configuration (DESIGN "WAL").

Co-partitioned topics are read together by key (the dedup stage reads `flk.wal` and each
mirrored `<region>.flk.wal` partition by partition, and the outcome keys must stay on their
partition for compaction), so their partition counts never change once created: `apply` refuses
rather than silently breaking the key → partition mapping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

WAL = "flk.wal"
OUTCOMES = "flk.outcomes"
REPLIES = "flk.replies"
REJECTED = "flk.rejected"
AUDIT = "flk.audit"

WAL_PARTITIONS = 8
DAY_MS = 24 * 3600 * 1000
DEDUP_WINDOW_DAYS = 14  # SPEC §3 default; WAL retention must cover it


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    co_partitioned: bool
    configs: dict[str, str] = field(default_factory=dict)
    doc: str = ""


def _wal_configs() -> dict[str, str]:
    return {
        "cleanup.policy": "delete",
        # Retention covers the dedup window plus a day, so a replay into empty state can
        # rebuild every live dedup entry (DESIGN "WAL": retention ≥ the dedup window).
        "retention.ms": str((DEDUP_WINDOW_DAYS + 1) * DAY_MS),
        "max.message.bytes": str(1024 * 1024 + 64 * 1024),  # 1 MiB body + headers
        "message.timestamp.type": "CreateTime",
        "compression.type": "producer",
    }


REPLAY_PREFIX = "flk.replay."


def replay_outcomes(run_id: str) -> TopicSpec:
    """The side topic of one `flk replay` run: its outcomes, compacted like `flk.outcomes`
    and co-partitioned with it (same keys, same partitions) so `--diff` compares like with
    like. Created by the run; its records expire after a week."""
    return TopicSpec(
        f"{REPLAY_PREFIX}{run_id}.outcomes",
        WAL_PARTITIONS,
        True,
        {"cleanup.policy": "compact,delete", "retention.ms": str(7 * DAY_MS),
         "min.compaction.lag.ms": "0"},
        f"outcomes of the replay run {run_id}",
    )  # fmt: skip


def mirrored_wal(source_region: str) -> str:
    """The name MirrorMaker's DefaultReplicationPolicy gives `flk.wal` from `source_region`."""
    return f"{source_region}.{WAL}"


def catalogue(region: str, all_regions: list[str]) -> list[TopicSpec]:
    """The topics that must exist in `region`'s cluster."""
    specs = [
        TopicSpec(WAL, WAL_PARTITIONS, True, _wal_configs(), "raw request bytes as received"),
        TopicSpec(
            OUTCOMES,
            WAL_PARTITIONS,
            True,
            {
                "cleanup.policy": "compact",
                "min.compaction.lag.ms": "0",
                "segment.ms": str(3600 * 1000),
                "min.cleanable.dirty.ratio": "0.1",
            },
            "latest outcome per tenant/pcs_id",
        ),
        TopicSpec(
            REPLIES,
            WAL_PARTITIONS,
            False,
            {"cleanup.policy": "delete", "retention.ms": str(3600 * 1000)},
            "dedup decisions for the waiting gateway process (one partition per process)",
        ),
        TopicSpec(
            REJECTED,
            WAL_PARTITIONS,
            False,
            {"cleanup.policy": "delete", "retention.ms": str((DEDUP_WINDOW_DAYS + 1) * DAY_MS)},
            "malformed and unauthenticated records with their reason",
        ),
        TopicSpec(
            AUDIT,
            4,
            False,
            {"cleanup.policy": "delete", "retention.ms": "-1"},
            "audit events (divergences, supersedes)",
        ),
    ]
    # Pre-create each mirror with the WAL's partitions so the dedup stage can subscribe before
    # MirrorMaker's first record arrives; MirrorMaker then writes into it partition by partition.
    for other in all_regions:
        if other != region:
            specs.append(
                TopicSpec(mirrored_wal(other), WAL_PARTITIONS, True, _wal_configs(),
                          f"{WAL} of {other}, mirrored by MirrorMaker 2")
            )  # fmt: skip
    return specs
