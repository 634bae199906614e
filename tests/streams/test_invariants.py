"""SPEC §5 invariants of the dedup stage, against the running platform: real brokers,
MirrorMaker and the workers `flk up` starts. Records are appended to `flk.wal` exactly as a
gateway appends them (streams/walgen.py), so every decision below is the workers' own."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from typing import Any

import pytest

from infra.layout import Layout
from schemas.codec import codec
from streams import replay, walgen
from tests.streams.live import (
    Replies,
    Submitter,
    Watch,
    changelog,
    db_outcome,
    db_request,
    key_of,
    latest_outcomes,
    new_root,
    outcome,
    wait_for,
)
from topics.catalogue import OUTCOMES, REJECTED

pytestmark = pytest.mark.platform


@pytest.fixture(scope="module")
def versions(platform: Layout) -> walgen.Versions:
    return walgen.publish(platform.home)


@pytest.fixture()
def rng() -> random.Random:
    seed = random.randrange(2**32)
    print(f"random seed {seed}")
    return random.Random(seed)


@pytest.fixture()
def eu(platform: Layout, versions: walgen.Versions) -> Iterator[dict[str, Any]]:
    region = platform.region("eu-west")
    watches = {"replies": Replies(region), "outcomes": Watch(region, OUTCOMES),
               "rejected": Watch(region, REJECTED), "changelog": Watch(region, changelog(region))}
    yield {"region": region, "sub": Submitter(platform, region, versions), **watches}
    for w in watches.values():
        w.close()


def test_an_unauthenticated_record_never_creates_or_alters_an_entry(
        eu: dict[str, Any], rng: random.Random) -> None:  # fmt: skip
    sub, replies = eu["sub"], eu["replies"]
    root = new_root(rng)
    good = walgen.body("st-a", rng, merkle_root=root)
    key = key_of("st-a", good)
    now = int(time.time() * 1000)
    winner = sub.record(good, ms=now)
    sub.send([winner])
    replies.wait([winner.request_id])
    # Every way a record can fail to be authenticated, each stamped *earlier* than the winner
    # (so it would supersede it if it entered dedup), plus a fresh key that has no entry yet.
    fresh = walgen.body("st-a", rng, tamper=True)
    bad = [
        sub.record(walgen.body("st-a", rng, merkle_root=root, tamper=True), ms=now - 50),
        sub.record(walgen.body("st-b", rng, merkle_root=root), tenant="st-a", ms=now - 40),
        sub.record(good, tenant="no-such-tenant", ms=now - 30),
        sub.record(good[:-2], ms=now - 20),
        sub.record(fresh, ms=now - 10),
    ]
    sub.send(bad)
    got = replies.wait([r.request_id for r in bad])
    assert {r["reason"] for r in got.values()} == {
        "bad_signature", "unknown_tenant", "malformed_json"}  # fmt: skip
    assert all(r["http_status"] in (400, 401) and r["status"] == "rejected" for r in got.values())
    eu["rejected"].poll(1.0)
    rejected = {codec("rejected").decode(s.value)["request_id"] for s in eu["rejected"].seen}
    assert rejected >= {r.request_id for r in bad}
    # A later authenticated duplicate is answered with the original winner's outcome.
    marker = sub.record(good)
    sub.send([marker])
    assert replies.wait([marker.request_id])[marker.request_id]["dedup_hit"] is True
    outcomes = eu["outcomes"].poll(1.0)
    entries = eu["changelog"].poll(1.0)
    assert [outcome(s.value)["winner_request_id"] for s in outcomes if s.key == key] == [
        winner.request_id]
    assert [s.key for s in entries if s.key in (key, key_of("st-a", fresh))] == [key]
    assert not any(s.key == key_of("st-a", fresh) for s in outcomes)
    row = db_outcome(eu["region"], "st-a", walgen.pcs_id_of(good))
    assert row is not None and row["winner_request_id"] == winner.request_id
    assert db_outcome(eu["region"], "st-a", walgen.pcs_id_of(fresh)) is None
    stored = db_request(eu["region"], "st-a", bad[0].request_id)
    assert stored is not None and stored["state"] == "rejected" and stored["http_status"] == 401


def test_duplicates_get_the_winners_outcome(
        platform: Layout, eu: dict[str, Any], versions: walgen.Versions, rng: random.Random,
) -> None:  # fmt: skip
    us = platform.region("us-east")
    us_sub, us_replies, us_outcomes = Submitter(platform, us, versions), Replies(us), Watch(
        us, OUTCOMES)  # fmt: skip
    sub, replies = eu["sub"], eu["replies"]
    root = new_root(rng)
    first = walgen.body("st-a", rng, merkle_root=root)  # 200
    escalating = walgen.body("st-a", rng, merkle_root=root, wrong_regime=True)  # would be 202
    key = key_of("st-a", first)
    w = sub.record(first)
    sub.send([w])
    replies.wait([w.request_id])
    # us-east decides the winner too once the mirror brings it; then duplicates arrive there.
    def decided_in_us_east() -> dict[bytes, bytes]:
        us_outcomes.poll(0.3)
        return latest_outcomes(us_outcomes, [key])

    wait_for("the winner in us-east", decided_in_us_east)
    same, other = sub.record(first), sub.record(escalating)
    remote = us_sub.record(escalating)
    sub.send([same, other])
    us_sub.send([remote])
    got = replies.wait([w.request_id, same.request_id, other.request_id])
    got_us = us_replies.wait([remote.request_id])[remote.request_id]
    assert got[w.request_id]["dedup_hit"] is False
    for reply, conflict in ((got[same.request_id], False), (got[other.request_id], True),
                            (got_us, True)):  # fmt: skip
        assert reply["dedup_hit"] is True and reply["conflict"] is conflict
        assert (reply["http_status"], reply["status"], reply["reason"]) == (200, "accepted", None)
        assert reply["recomputed_budget"] == got[w.request_id]["recomputed_budget"]
    stored = db_request(eu["region"], "st-a", other.request_id)
    assert stored is not None and stored["answer"]["dedup_hit"] is True
    assert stored["answer"]["conflict"] is True and stored["http_status"] == 200
    for watch in (eu["outcomes"], us_outcomes):
        watch.poll(1.0)
        assert {outcome(s.value)["winner_request_id"] for s in watch.seen if s.key == key} == {
            w.request_id}
    us_sub.producer.flush(5)
    for x in (us_replies, us_outcomes):
        x.close()


def test_the_same_pcs_id_under_two_tenants_stays_independent(
        eu: dict[str, Any], rng: random.Random) -> None:  # fmt: skip
    sub, replies = eu["sub"], eu["replies"]
    root = new_root(rng)
    a = walgen.body("st-a", rng, merkle_root=root)  # 200
    b = walgen.body("st-b", rng, merkle_root=root, wrong_regime=True)  # 202
    assert walgen.pcs_id_of(a) == walgen.pcs_id_of(b)
    ra, rb = sub.record(a), sub.record(b, tenant="st-b")
    ra2, rb2 = sub.record(a), sub.record(b, tenant="st-b")
    sub.send([ra, rb, ra2, rb2])
    got = replies.wait([ra.request_id, rb.request_id, ra2.request_id, rb2.request_id])
    assert (got[ra.request_id]["dedup_hit"], got[rb.request_id]["dedup_hit"]) == (False, False)
    assert (got[ra.request_id]["http_status"], got[rb.request_id]["http_status"]) == (200, 202)
    assert got[ra2.request_id]["http_status"] == 200 and got[ra2.request_id]["dedup_hit"]
    assert got[rb2.request_id]["http_status"] == 202 and got[rb2.request_id]["dedup_hit"]
    pcs_id = walgen.pcs_id_of(a)
    row_a, row_b = db_outcome(eu["region"], "st-a", pcs_id), db_outcome(eu["region"], "st-b",
                                                                        pcs_id)  # fmt: skip
    assert row_a is not None and row_b is not None
    assert (row_a["winner_request_id"], row_b["winner_request_id"]) == (ra.request_id,
                                                                        rb.request_id)  # fmt: skip
    # A tenant's request id is looked up under that tenant only.
    assert db_request(eu["region"], "st-b", ra.request_id) is None


def _converged(platform: Layout, watches: dict[str, Watch], keys: set[bytes]
               ) -> dict[str, dict[bytes, bytes]] | None:  # fmt: skip
    latest = {name: latest_outcomes(w, keys) for name, w in watches.items() if w.poll(0.3)}
    if len(latest) == 2 and all(set(x) == keys for x in latest.values()):
        east, west = latest.values()
        if east == west:
            return latest
    return None


def _submit_in_both_regions(platform: Layout, versions: walgen.Versions, rng: random.Random,
                            tenants: tuple[str, ...] = ("st-a",), keys_n: int = 40,
                            ) -> tuple[set[bytes], list[walgen.WalRecord]]:  # fmt: skip
    """Both regions take submissions of the same keys at the same time: different bodies and
    verdicts, clocks a few ms apart, up to two per key and region."""
    subs = {r.name: Submitter(platform, r, versions) for r in platform.regions}
    keys: set[bytes] = set()
    batches: dict[str, list[walgen.WalRecord]] = {name: [] for name in subs}
    base = int(time.time() * 1000)
    for i in range(keys_n):
        root = new_root(rng)
        tenant = tenants[i % len(tenants)]
        for name in subs:
            for _ in range(rng.randint(0, 2)):
                data = walgen.body(tenant, rng, merkle_root=root,
                                   wrong_regime=rng.random() < 0.5)  # fmt: skip
                rec = subs[name].record(data, tenant=tenant, ms=base + rng.randint(0, 40),
                                        reply=False)  # fmt: skip
                batches[name].append(rec)
                keys.add(rec.key)
    for name, sub in subs.items():
        sub.send(batches[name])
    return keys, [r for b in batches.values() for r in b]


def test_both_regions_compacted_outcomes_are_byte_identical(
        platform: Layout, versions: walgen.Versions, rng: random.Random) -> None:  # fmt: skip
    """Once the mirrors have caught up, the latest outcome of every key is the same bytes in
    both regions, in flk.outcomes and in the outcome store, and names the global winner."""
    regions = {r.name: r for r in platform.regions}
    watches = {name: Watch(r, OUTCOMES) for name, r in regions.items()}
    keys, everything = _submit_in_both_regions(platform, versions, rng)
    latest = wait_for("both regions to agree on every key",
                      lambda: _converged(platform, watches, keys), timeout=90)  # fmt: skip
    east, west = latest["us-east"], latest["eu-west"]
    assert east == west
    for key, value in east.items():
        o = outcome(value)
        best = min((r for r in everything if r.key == key),
                   key=lambda r: (r.stamp.ms, r.stamp.counter, r.origin, r.request_id))
        assert (o["winner_origin"], o["winner_request_id"]) == (best.origin, best.request_id)
        rows = [db_outcome(r, o["tenant"], o["pcs_id"]) for r in regions.values()]
        assert all(row is not None and row["record"] == value for row in rows)
    for w in watches.values():
        w.close()


def test_replay_into_empty_state_reproduces_the_live_outcomes(
        platform: Layout, versions: walgen.Versions, rng: random.Random) -> None:  # fmt: skip
    """`flk replay --diff` of each region reports zero differences for everything decided
    live: first writes, duplicates, late winners from the other region, and keys of a tenant
    whose dedup window (3 s) expires while the replay runs — the window is event time, so the
    replay must decide exactly as the live stage did seconds earlier."""
    start_ms = int(time.time() * 1000) - 5000
    regions = {r.name: r for r in platform.regions}
    watches = {name: Watch(r, OUTCOMES) for name, r in regions.items()}
    keys, _ = _submit_in_both_regions(platform, versions, rng,
                                      tenants=("st-a", walgen.SHORT_WINDOW_TENANT))  # fmt: skip
    wait_for("both regions to decide every key",
             lambda: _converged(platform, watches, keys), timeout=90)  # fmt: skip
    time.sleep(4)  # past the 3 s window of every stamp above
    for name, region in regions.items():
        report = replay.replay(platform, region, from_ms=start_ms)
        d = replay.diff(region, report.side_topic, report.group, lambda k: k in keys)
        print(f"replay {name}: {report.records} WAL records, {d.compared} test keys compared")
        assert d.compared == len(keys)
        assert (d.differing, d.only_replay, d.only_live) == ([], [], []), d.examples
    for w in watches.values():
        w.close()
