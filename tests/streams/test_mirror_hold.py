"""Mirrored records are held for up to FLK_STREAM_MIRROR_WITHIN_MS and decided together
(streams/gather.py), against the running platform: a lone one must still be decided when no
other record follows it, or it would wait for the next record forever."""

from __future__ import annotations

import random
import time

import pytest

from infra.layout import Layout
from streams import walgen
from tests.streams.live import Submitter, Watch, key_of, latest_outcomes, outcome, wait_for
from topics.catalogue import OUTCOMES, mirrored_wal

pytestmark = pytest.mark.platform


def test_a_lone_mirrored_record_is_decided_without_further_traffic(platform: Layout) -> None:
    versions = walgen.publish(platform.home)
    eu, us = platform.region("eu-west"), platform.region("us-east")
    data = walgen.body("st-a", random.Random())
    # As MirrorMaker would write it: eu-west's WAL record, appended to us-east's mirror topic.
    record = Submitter(platform, eu, versions).record(data, reply=False)
    outcomes = Watch(us, OUTCOMES)
    try:
        producer = walgen.producer(us.kafka_bootstrap)
        producer.produce(mirrored_wal(eu.name), record.value, record.key,
                         headers=record.headers)  # type: ignore[arg-type]
        assert producer.flush(30) == 0
        sent = time.monotonic()
        key = key_of("st-a", data)

        def decided() -> bytes | None:
            outcomes.poll(0.1)
            return latest_outcomes(outcomes, [key]).get(key)

        got = wait_for("the mirrored record's outcome in us-east", decided, timeout=30)
        took = time.monotonic() - sent
        assert outcome(got)["winner_request_id"] == record.request_id
        # The hold is 100 ms by default; allow for a busy machine, not for "never".
        assert took < 10, f"decided after {took:.1f} s"
    finally:
        outcomes.close()
