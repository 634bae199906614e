"""The dedup stage's decisions (streams/dedup.py) without Kafka: SPEC §3 steps 1–3 and the §5
invariants that are properties of the decision itself. The same invariants are tested against
the real brokers and workers in test_invariants.py."""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any

import pytest
from flk_pcs import evaluate
from hypothesis import given, settings
from hypothesis import strategies as st

from flk import registry
from schemas.codec import codec
from streams import walgen
from streams.dedup import H_SUPERSEDES, DedupStage
from streams.verify import WalMessage
from tests.streams.helpers import BatchedMemoryTable, MemoryTable
from topics.catalogue import AUDIT, OUTCOMES, REJECTED, WAL, mirrored_wal
from topics.wal import ReplyTo, Stamp

REPLY_TO = ReplyTo("flk.replies", 7)
OUTCOME_FIELDS = {
    "tenant", "pcs_id", "winner_origin", "winner_stamp_ms", "winner_stamp_counter",
    "winner_request_id", "body_sha256", "http_status", "status", "accepted", "escalated",
    "reason", "recomputed_D_hat", "recomputed_budget", "regime", "key_id", "policy_version",
    "keyset_version",
}  # fmt: skip

Versions = tuple[Path, walgen.Versions]


def msg(data: bytes, versions: walgen.Versions, *, tenant: str = "st-a", origin: str = "eu-west",
        rid: str, ms: int, topic: str = WAL, partition: int = 0, offset: int = 0,
        reply: bool = True) -> WalMessage:  # fmt: skip
    r = walgen.wal_record(data, tenant=tenant, origin=origin, request_id=rid, stamp=Stamp(ms, 0),
                          versions=versions, reply_to=REPLY_TO if reply else None)  # fmt: skip
    return WalMessage(topic, partition, offset, r.key, r.value, list(r.headers))


def outputs(res: Any, topic: str) -> list[Any]:
    return [o for o in res.outputs if o.topic == topic]


def replies(res: Any) -> list[dict[str, Any]]:
    assert outputs(res, "flk.replies") == []  # replies travel apart, after the store write
    return [codec("reply").decode(o.value) for o in res.replies if o.topic == "flk.replies"]


@pytest.fixture()
def stage(versions: Versions) -> DedupStage:
    return DedupStage("eu-west", versions[0])


@pytest.fixture()
def rng() -> random.Random:
    return random.Random(1234)


def test_first_write_then_duplicates_get_the_winners_outcome(
        stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    v = versions[1]
    root = f"{rng.getrandbits(256):064x}"
    winner = walgen.body("st-a", rng, merkle_root=root)
    same = winner
    other = walgen.body("st-a", rng, merkle_root=root, wrong_regime=True)  # same pcs_id, 202
    table = MemoryTable()
    res = table.run(stage, [msg(winner, v, rid="w", ms=1000), msg(same, v, rid="d1", ms=1001),
                            msg(other, v, rid="d2", ms=1002)])  # fmt: skip
    r = {x["request_id"]: x for x in replies(res)}
    assert r["w"]["dedup_hit"] is False and r["w"]["http_status"] == 200
    assert r["d1"]["dedup_hit"] is True and r["d1"]["conflict"] is False
    # The duplicate with another body gets the winner's 200, flagged as a conflict.
    assert r["d2"]["dedup_hit"] is True and r["d2"]["conflict"] is True
    assert r["d2"]["http_status"] == 200 and r["d2"]["status"] == "accepted"
    assert res.counts["conflict"] == 1 and res.counts["dedup_hit"] == 2
    assert len(outputs(res, OUTCOMES)) == 1 and len(res.writes) == 1
    # ... and the stored request answers say the same.
    answers = {k[1]: row[5] for k, row in res.request_rows.items()}
    assert answers["d2"]["conflict"] is True and answers["d2"]["dedup_hit"] is True


def test_redelivery_changes_nothing_and_re_emits_identical_bytes(
        stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    m = msg(walgen.body("st-a", rng), versions[1], rid="w", ms=1000)
    table = MemoryTable()
    first = table.run(stage, [m])
    again = table.run(stage, [m])
    assert again.writes == {}
    assert [o.value for o in outputs(again, OUTCOMES)] == [
        o.value for o in outputs(first, OUTCOMES)]
    assert replies(again) == replies(first)
    assert replies(again)[0]["dedup_hit"] is False


@pytest.mark.parametrize("case", ["tampered", "unknown tenant", "other tenant's key",
                                  "malformed", "bad headers", "hash mismatch"])  # fmt: skip
def test_an_unauthenticated_record_never_creates_or_alters_an_entry(
        case: str, stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    v = versions[1]
    root = f"{rng.getrandbits(256):064x}"
    good = walgen.body("st-a", rng, merkle_root=root)
    table = MemoryTable()
    bad = {
        "tampered": lambda: msg(walgen.body("st-a", rng, merkle_root=root, tamper=True), v,
                                rid="x", ms=900),
        "unknown tenant": lambda: msg(good, v, tenant="nobody", rid="x", ms=900),
        "other tenant's key": lambda: msg(walgen.body("st-b", rng, merkle_root=root), v,
                                          tenant="st-a", rid="x", ms=900),
        "malformed": lambda: msg(good[:-1], v, rid="x", ms=900),
        "bad headers": lambda: msg(good, v, rid="x", ms=900)._replace(headers=[]),
        "hash mismatch": lambda: msg(good, v, rid="x", ms=900)._replace(value=good + b" "),
    }[case]()  # fmt: skip
    # Before any entry exists: nothing is created.
    res = table.run(stage, [bad])
    assert res.writes == {} and outputs(res, OUTCOMES) == [] and table.data == {}
    assert len(outputs(res, REJECTED)) == 1 and res.counts["rejected"] == 1
    # With an entry: an earlier-stamped unauthenticated record does not supersede it.
    table.run(stage, [msg(good, v, rid="w", ms=1000)])
    before = dict(table.data)
    res = table.run(stage, [bad])
    assert res.writes == {} and table.data == before and outputs(res, OUTCOMES) == []


def test_the_rejection_reply_and_record(stage: DedupStage, versions: Versions,
                                        rng: random.Random) -> None:  # fmt: skip
    m = msg(walgen.body("st-a", rng, tamper=True), versions[1], rid="x", ms=900, offset=42)
    res = MemoryTable().run(stage, [m])
    (reply,) = replies(res)
    assert reply["http_status"] == 401 and reply["status"] == "rejected"
    assert reply["reason"] == "bad_signature"
    rejected = codec("rejected").decode(outputs(res, REJECTED)[0].value)
    assert rejected["source_offset"] == 42 and rejected["request_id"] == "x"
    ((_, row),) = res.request_rows.items()
    assert row[3] == "rejected" and row[5] == {"error": "bad_signature", "detail": None,
                                               "request_id": "x"}  # fmt: skip


def test_mirrored_records_get_no_reply(stage: DedupStage, versions: Versions,
                                       rng: random.Random) -> None:  # fmt: skip
    m = msg(walgen.body("st-a", rng), versions[1], rid="m", ms=1000, origin="us-east",
            topic=mirrored_wal("us-east"))  # fmt: skip
    res = MemoryTable().run(stage, [m])
    assert replies(res) == [] and len(outputs(res, OUTCOMES)) == 1
    assert ("st-a", "m") in res.request_rows


def test_the_same_pcs_id_under_two_tenants_is_two_keys(
        stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    root = f"{rng.getrandbits(256):064x}"
    a = walgen.body("st-a", rng, merkle_root=root)
    b = walgen.body("st-b", rng, merkle_root=root, wrong_regime=True)
    assert walgen.pcs_id_of(a) == walgen.pcs_id_of(b)
    res = MemoryTable().run(stage, [msg(a, versions[1], rid="a", ms=1000),
                                    msg(b, versions[1], tenant="st-b", rid="b", ms=1001)])
    r = {x["request_id"]: x for x in replies(res)}
    assert r["a"]["dedup_hit"] is False and r["b"]["dedup_hit"] is False
    assert (r["a"]["http_status"], r["b"]["http_status"]) == (200, 202)
    assert len(res.writes) == 2


def test_a_late_winner_supersedes_and_a_verdict_change_is_a_divergence(
        stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    v = versions[1]
    root = f"{rng.getrandbits(256):064x}"
    local = walgen.body("st-a", rng, merkle_root=root)  # 200, stamped later
    remote = walgen.body("st-a", rng, merkle_root=root, wrong_regime=True)  # 202, earlier
    table = MemoryTable()
    table.run(stage, [msg(local, v, rid="late", ms=2000)])
    res = table.run(stage, [msg(remote, v, rid="early", ms=1000, origin="us-east",
                                topic=mirrored_wal("us-east"))])  # fmt: skip
    (out,) = outputs(res, OUTCOMES)
    assert out.headers == [(H_SUPERSEDES, b"late")]
    assert codec("outcome").decode(out.value)["winner_request_id"] == "early"
    (audit,) = [codec("audit").decode(o.value) for o in outputs(res, AUDIT)]
    assert audit["kind"] == "divergence" and audit["previous_request_id"] == "late"
    assert res.counts["supersede"] == 1 and res.counts["divergence"] == 1
    # The superseded request, redelivered, is now a duplicate of the new winner.
    res = table.run(stage, [msg(local, v, rid="late", ms=2000)])
    (reply,) = replies(res)
    assert reply["dedup_hit"] is True and reply["http_status"] == 202


def test_the_window_is_event_time(stage: DedupStage, versions: Versions,
                                  rng: random.Random) -> None:  # fmt: skip
    v = versions[1]
    root = f"{rng.getrandbits(256):064x}"
    t = walgen.SHORT_WINDOW_TENANT  # dedup_window 3 s
    data = walgen.body(t, rng, merkle_root=root)
    table = MemoryTable()
    table.run(stage, [msg(data, v, tenant=t, rid="a", ms=10_000)])
    inside = table.run(stage, [msg(data, v, tenant=t, rid="b", ms=13_000)])
    assert replies(inside)[0]["dedup_hit"] is True
    after = table.run(stage, [msg(data, v, tenant=t, rid="c", ms=13_001)])
    assert replies(after)[0]["dedup_hit"] is False and after.counts["expired"] == 1
    assert codec("outcome").decode(outputs(after, OUTCOMES)[0].value)["winner_request_id"] == "c"


def test_the_outcome_is_a_pure_function_of_the_winner(
        stage: DedupStage, versions: Versions, rng: random.Random) -> None:  # fmt: skip
    home, v = versions
    data = walgen.body("st-ed", rng, wrong_regime=True)
    m = msg(data, v, tenant="st-ed", rid="w", ms=5000)
    one = outputs(MemoryTable().run(stage, [m]), OUTCOMES)[0].value
    other_region = DedupStage("us-east", home)
    two = outputs(MemoryTable().run(other_region, [m._replace(topic=mirrored_wal("eu-west"),
                                                               offset=99, partition=3)]),
                  OUTCOMES)[0].value  # fmt: skip
    assert one == two  # encoding the same outcome twice gives the same bytes
    o = codec("outcome").decode(one)
    assert set(o) == OUTCOME_FIELDS  # nothing about where, when or at which offset
    assert codec("outcome").encode(o) == one
    ref = evaluate(data, tenant="st-ed", received_at_ms=5000,
                   policy=registry.policy(home, v.policy.version),
                   keyset=registry.keyset(home, v.keyset.version))  # fmt: skip
    assert (o["http_status"], o["reason"], o["key_id"]) == (ref.http_status, ref.reason,
                                                           ref.key_id)  # fmt: skip
    assert o["body_sha256"] == hashlib.sha256(data).hexdigest() == ref.body_sha256


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_latest_outcomes_are_the_same_bytes_whatever_the_interleaving(
        data: st.DataObject, versions: Versions) -> None:  # fmt: skip
    """Two regions receive submissions of a few keys with skewed clocks and read each other's
    through mirrors in any order and any batching; their latest outcome per key is the same
    bytes, and is the outcome of the smallest (stamp, origin, request id) alone."""
    home, v = versions
    rng = random.Random(data.draw(st.integers(0, 2**32)))
    roots = [f"{rng.getrandbits(256):064x}" for _ in range(data.draw(st.integers(1, 3)))]
    skew = {"eu-west": data.draw(st.integers(-500, 500)), "us-east": 0}
    subs = []
    for i in range(data.draw(st.integers(2, 8))):
        origin = data.draw(st.sampled_from(sorted(skew)))
        body = walgen.body("st-a", rng, merkle_root=data.draw(st.sampled_from(roots)),
                           wrong_regime=data.draw(st.booleans()))  # fmt: skip
        ms = 10_000 + data.draw(st.integers(0, 300)) + skew[origin]
        subs.append((origin, f"req-{i}", ms, body))

    def run(region: str, table: MemoryTable) -> dict[bytes, bytes]:
        order = data.draw(st.permutations(subs))
        latest = {}
        stage = DedupStage(region, home)
        while order:
            k = data.draw(st.integers(1, len(order)))
            batch = [msg(b, v, origin=o, rid=rid, ms=ms, reply=o == region,
                         topic=WAL if o == region else mirrored_wal(o))
                     for o, rid, ms, b in order[:k]]  # fmt: skip
            order = order[k:]
            for out in outputs(table.run(stage, batch), OUTCOMES):
                latest[out.key] = out.value
        return latest

    # One region reads its table entry by entry, the other a batch at once (get_many, as the
    # worker's RocksDB view): the decisions must not depend on it.
    batched = BatchedMemoryTable()
    east, west = run("us-east", MemoryTable()), run("eu-west", batched)
    assert batched.many_calls > 0
    assert east == west
    for key, value in east.items():
        o = codec("outcome").decode(value)
        mine = [s for s in subs if walgen.pcs_id_of(s[3]) == o["pcs_id"]]
        best = min(mine, key=lambda s: (s[2], 0, s[0], s[1]))
        assert (o["winner_origin"], o["winner_request_id"]) == (best[0], best[1])
        alone = outputs(MemoryTable().run(DedupStage("eu-west", home), [
            msg(best[3], v, origin=best[0], rid=best[1], ms=best[2])]), OUTCOMES)[0]
        assert alone.value == value and alone.key == key
