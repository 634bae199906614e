"""The independent end-to-end check (`flk demo`, `flk check`).

It trusts nothing the pipeline says about itself: it reads both regions' `flk.outcomes` and
`flk.rejected` from the beginning with a plain consumer and requires, for every acknowledged
request in the client's own log,

- in every region: the request is accounted for — its `(tenant, pcs_id)` has an outcome (it is
  the winner or a duplicate of it) or the region's dedup stage rejected it by request id;
- the latest outcome of each of the log's keys is the same bytes in every region (SPEC §5);
- a request the gateway answered 400/401 is never the winner of a key.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from infra.layout import Layout, Region
from schemas.codec import codec
from topics.catalogue import OUTCOMES, REJECTED


@dataclass(frozen=True)
class Ack:
    """One acknowledged request from the client's log."""

    request_id: str
    tenant: str
    pcs_id: str | None
    http_status: int
    region: str


@dataclass
class RegionView:
    outcomes: dict[bytes, bytes] = field(default_factory=dict)  # key → latest value (no tombstones)
    rejected: set[str] = field(default_factory=set)  # request ids


@dataclass
class CheckResult:
    acks: int
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def read_acks(path: Path) -> list[Ack]:
    acks: list[Ack] = []
    for line in path.read_text().splitlines():
        if line.strip():
            d = json.loads(line)
            acks.append(Ack(d["request_id"], d["tenant"], d.get("pcs_id"), d["http_status"],
                            d["region"]))  # fmt: skip
    return acks


def _read_all(region: Region, topic: str, on: Callable[[Any], None]) -> None:
    consumer = Consumer({"bootstrap.servers": region.kafka_bootstrap, "group.id": "flk-check",
                         "enable.auto.commit": False, "log_level": 0})  # fmt: skip
    try:
        meta = consumer.list_topics(topic, timeout=10).topics[topic]
        ends: dict[int, int] = {}
        assign = []
        for p in meta.partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            if high > low:
                ends[p] = high
                assign.append(TopicPartition(topic, p, low))
        if not assign:
            return
        consumer.assign(assign)
        deadline = time.monotonic() + 120
        while ends and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            on(msg)
            part, offset = int(msg.partition() or 0), int(msg.offset() or 0)
            if offset + 1 >= ends.get(part, 0):
                ends.pop(part, None)
    finally:
        consumer.close()


def region_view(region: Region) -> RegionView:
    view = RegionView()

    def outcome(msg: Any) -> None:
        if msg.value() is None:
            view.outcomes.pop(msg.key(), None)  # a tombstone deletes the key
        else:
            view.outcomes[msg.key()] = msg.value()

    def rejected(msg: Any) -> None:
        if msg.value() is not None:
            rid = codec("rejected").decode(msg.value()).get("request_id")
            if rid:
                view.rejected.add(rid)

    _read_all(region, OUTCOMES, outcome)
    _read_all(region, REJECTED, rejected)
    return view


def check(layout: Layout, acks: list[Ack]) -> CheckResult:
    views = {r.name: region_view(r) for r in layout.regions}
    problems: list[str] = []
    decode = codec("outcome").decode
    for ack in acks:
        key = f"{ack.tenant}/{ack.pcs_id}".encode() if ack.pcs_id else None
        for name, view in views.items():
            has_outcome = key is not None and key in view.outcomes
            if not has_outcome and ack.request_id not in view.rejected:
                problems.append(
                    f"{name}: request {ack.request_id} ({ack.tenant}, answered "
                    f"{ack.http_status} by {ack.region}) is neither an outcome nor a rejection"
                )
            elif ack.http_status in (400, 401) and has_outcome and key is not None:
                winner = decode(view.outcomes[key])["winner_request_id"]
                if winner == ack.request_id:
                    problems.append(f"{name}: rejected request {ack.request_id} won {key!r}")
    names = list(views)
    base = views[names[0]].outcomes
    # Only the keys of this log: other traffic on the same platform is not this check's business.
    keys = {f"{a.tenant}/{a.pcs_id}".encode() for a in acks if a.pcs_id}
    for other in names[1:]:
        theirs = views[other].outcomes
        for key in sorted(keys & (set(base) | set(theirs))):
            if base.get(key) != theirs.get(key):
                problems.append(
                    f"outcome of {key.decode(errors='replace')} differs: {names[0]} "
                    f"{_show(base.get(key))} vs {other} {_show(theirs.get(key))}"
                )
    return CheckResult(len(acks), problems)


def _show(value: bytes | None) -> str:
    if value is None:
        return "(missing)"
    d = codec("outcome").decode(value)
    return f"(winner {d['winner_request_id']}, {d['status']})"


def check_until(layout: Layout, acks: list[Ack], timeout_s: float,
                progress: Callable[[str], None] | None = None) -> CheckResult:  # fmt: skip
    """Re-run the check until it passes or `timeout_s` passes: the regions converge as the
    mirrors and workers catch up, so an early failure is not yet a verdict."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check(layout, acks)
        if result.ok or time.monotonic() > deadline:
            return result
        if progress:
            progress(f"not converged yet ({len(result.problems)} open); checking again")
        time.sleep(2)
