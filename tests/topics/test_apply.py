"""The catalogue is applied idempotently; changed configs are applied; partition changes on
co-partitioned topics are refused with a clear message (real broker)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, cast

import pytest
from confluent_kafka.admin import AdminClient, ConfigResource

from infra import kafka
from infra import platform as plat
from infra.layout import Layout
from topics.apply import TopicCatalogueError, apply
from topics.catalogue import WAL, WAL_PARTITIONS, TopicSpec, catalogue, mirrored_wal

pytestmark = pytest.mark.platform


@pytest.fixture()
def admin_and_prefix(platform: Layout) -> Iterator[tuple[AdminClient, str]]:
    admin = kafka.admin(platform.regions[0])
    prefix = f"test.cat.{uuid.uuid4().hex[:8]}"
    yield admin, prefix
    names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
    if names:
        for fut in admin.delete_topics(names).values():
            fut.result()


def _config(admin: AdminClient, topic: str, key: str) -> str:
    res = ConfigResource(ConfigResource.Type.TOPIC, topic)
    return str(admin.describe_configs([res])[res].result()[key].value)


def test_apply_is_idempotent_and_applies_changed_configs(
    admin_and_prefix: tuple[AdminClient, str],
) -> None:
    admin, prefix = admin_and_prefix
    spec = TopicSpec(f"{prefix}.a", 3, True, {"retention.ms": "60000"})
    first = apply(admin, [spec])
    assert first.created == [spec.name]
    second = apply(admin, [spec])
    assert second.created == [] and second.reconfigured == {} and second.unchanged == [spec.name]
    changed = TopicSpec(spec.name, 3, True, {"retention.ms": "120000"})
    third = apply(admin, [changed])
    assert third.reconfigured == {spec.name: {"retention.ms": "120000"}}
    # The broker applies a config change asynchronously; give it a moment.
    deadline = time.monotonic() + 15
    while _config(admin, spec.name, "retention.ms") != "120000" and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _config(admin, spec.name, "retention.ms") == "120000"


class _StaleMetadata:
    """An admin client whose topic listing predates the topics created since (metadata a
    broker had not caught up with yet), everything else passed through."""

    def __init__(self, admin: AdminClient, hidden: str) -> None:
        self._admin, self._hidden = admin, hidden

    def list_topics(self, *args: Any, **kwargs: Any) -> Any:
        meta = self._admin.list_topics(*args, **kwargs)
        meta.topics.pop(self._hidden, None)
        return meta

    def __getattr__(self, name: str) -> Any:
        return getattr(self._admin, name)


def test_a_topic_listed_late_is_not_reported_created(
    admin_and_prefix: tuple[AdminClient, str],
) -> None:
    admin, prefix = admin_and_prefix
    spec = TopicSpec(f"{prefix}.late", 3, True, {"retention.ms": "60000"})
    assert apply(admin, [spec]).created == [spec.name]
    again = apply(cast(AdminClient, _StaleMetadata(admin, spec.name)), [spec])
    assert again.created == [] and again.unchanged == [spec.name]


def test_partition_change_on_co_partitioned_topic_is_refused(
    admin_and_prefix: tuple[AdminClient, str],
) -> None:
    admin, prefix = admin_and_prefix
    apply(admin, [TopicSpec(f"{prefix}.wal", 4, True)])
    for wrong in (2, 6):
        with pytest.raises(TopicCatalogueError) as err:
            apply(admin, [TopicSpec(f"{prefix}.wal", wrong, True)])
        assert f"has 4 partitions but the catalogue says {wrong}" in err.value.message
        assert "co-partitioned" in err.value.message
    assert len(admin.list_topics(timeout=10).topics[f"{prefix}.wal"].partitions) == 4


def test_other_topics_may_grow_but_never_shrink(
    admin_and_prefix: tuple[AdminClient, str],
) -> None:
    admin, prefix = admin_and_prefix
    apply(admin, [TopicSpec(f"{prefix}.replies", 2, False)])
    grown = apply(admin, [TopicSpec(f"{prefix}.replies", 4, False)])
    assert grown.grown == {f"{prefix}.replies": (2, 4)}
    deadline = time.monotonic() + 15  # metadata catches up with the new partitions
    while time.monotonic() < deadline:
        if len(admin.list_topics(timeout=10).topics[f"{prefix}.replies"].partitions) == 4:
            break
        time.sleep(0.2)
    with pytest.raises(TopicCatalogueError, match="Kafka cannot shrink a topic"):
        apply(admin, [TopicSpec(f"{prefix}.replies", 3, False)])


def test_live_catalogue_is_in_place(platform: Layout) -> None:
    for region in platform.regions:
        report = plat.apply_topics(platform, region)  # idempotent on the live cluster
        assert report.created == [] and report.reconfigured == {}
        topics = kafka.admin(region).list_topics(timeout=10).topics
        names = [s.name for s in catalogue(region.name, [r.name for r in platform.regions])]
        assert set(names) <= set(topics)
        for other in platform.others(region):
            # The mirror is co-partitioned with the local WAL.
            assert len(topics[mirrored_wal(other.name)].partitions) == WAL_PARTITIONS
        assert len(topics[WAL].partitions) == WAL_PARTITIONS
