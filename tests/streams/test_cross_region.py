"""First-write-wins across regions with MirrorMaker paused (issue 5 acceptance): both regions
take the same keys with different bodies while they cannot see each other, each answers from
what it has seen, and once the mirrors resume every key converges on the global winner — the
smallest (stamp, origin, request id) — with superseding outcomes, audit events and a divergence
count wherever the verdict changed."""

from __future__ import annotations

import random
import time

import pytest

from infra import platform as plat
from infra.layout import Layout
from infra.procs import Supervisor
from schemas.codec import codec
from streams import walgen
from streams.dedup import H_SUPERSEDES
from tests.streams.live import (
    Replies,
    Submitter,
    Watch,
    db_outcome,
    latest_outcomes,
    metric,
    new_root,
    outcome,
    wait_for,
)
from topics.catalogue import AUDIT, OUTCOMES

pytestmark = [pytest.mark.platform, pytest.mark.slow]


def test_keys_taken_in_both_regions_during_a_mirror_pause_converge_on_the_global_winner(
        platform: Layout) -> None:  # fmt: skip
    seed = random.randrange(2**32)
    print(f"random seed {seed}")
    rng = random.Random(seed)
    versions = walgen.publish(platform.home)
    regions = {r.name: r for r in platform.regions}
    subs = {n: Submitter(platform, r, versions) for n, r in regions.items()}
    replies = {n: Replies(r) for n, r in regions.items()}
    outcomes = {n: Watch(r, OUTCOMES) for n, r in regions.items()}
    audits = {n: Watch(r, AUDIT) for n, r in regions.items()}
    divergences_before = {n: metric(r, "flk_stream_divergences_total") for n, r in regions.items()}
    mirrors = [f"{n}-mirror" for n in regions]
    sup = Supervisor(platform.run_dir)

    sup.stop_many(mirrors)
    try:
        base = int(time.time() * 1000)
        plan = []  # (key, {region: record})
        for i in range(30):
            root = new_root(rng)
            recs = {}
            for name in regions:
                # The same key with a different body in each region; half the pairs disagree
                # on the verdict (200 against 202); stamps interleave across regions.
                data = walgen.body("st-a", rng, merkle_root=root,
                                   wrong_regime=(name == "us-east" and i % 2 == 0))  # fmt: skip
                recs[name] = subs[name].record(data, ms=base + rng.randint(0, 200),
                                               rid=f"cr-{seed}-{i}-{name}")  # fmt: skip
            plan.append((recs["eu-west"].key, recs))
        for name in regions:
            subs[name].send([recs[name] for _, recs in plan])
        # Cut off from each other, both regions answer at once from what they have seen:
        # their own submission wins everywhere.
        for name in regions:
            got = replies[name].wait([recs[name].request_id for _, recs in plan])
            assert all(r["dedup_hit"] is False for r in got.values())
        local = {n: latest_outcomes(w, [k for k, _ in plan]) for n, w in outcomes.items()
                 if w.poll(1.0)}  # fmt: skip
        for key, _ in plan:
            for name in regions:
                assert outcome(local[name][key])["winner_origin"] == name
    finally:
        plat.up(platform)  # the mirrors resume from their committed offsets

    keys = {k for k, _ in plan}

    def converged() -> dict[str, dict[bytes, bytes]] | None:
        latest = {n: latest_outcomes(w, keys) for n, w in outcomes.items() if w.poll(0.3)}
        if all(set(v) == keys for v in latest.values()) and len(
                {tuple(sorted(v.items())) for v in latest.values()}) == 1:  # fmt: skip
            return latest
        return None

    latest = wait_for("both regions to converge after the pause", converged, timeout=120)
    expected_divergences = {n: 0 for n in regions}
    for key, recs in plan:
        best = min(recs.values(), key=lambda r: (r.stamp.ms, r.stamp.counter, r.origin,
                                                 r.request_id))  # fmt: skip
        o = outcome(latest["eu-west"][key])
        assert (o["winner_origin"], o["winner_request_id"]) == (best.origin, best.request_id)
        loser = next(n for n in regions if n != best.origin)
        # The region whose own submission lost published a superseding outcome naming it.
        superseding = [s for s in outcomes[loser].seen if s.key == key and
                       H_SUPERSEDES in s.headers]  # fmt: skip
        assert [s.headers[H_SUPERSEDES].decode() for s in superseding] == [
            recs[loser].request_id]
        verdicts = {n: outcome(local[n][key])["http_status"] for n in regions}
        if verdicts[loser] != verdicts[best.origin]:
            expected_divergences[loser] += 1
        rows = [db_outcome(r, o["tenant"], o["pcs_id"]) for r in regions.values()]
        assert all(row is not None and row["record"] == latest["eu-west"][key] for row in rows)
    for name, region in regions.items():
        audits[name].poll(1.0)
        events = [codec("audit").decode(s.value) for s in audits[name].seen
                  if s.key in keys and s.value]  # fmt: skip
        assert sum(e["kind"] == "divergence" for e in events) == expected_divergences[name]
        assert len(events) == sum(1 for _, recs in plan
                                  if min(recs.values(), key=lambda r: (r.stamp.ms, r.origin)
                                         ).origin != name)  # fmt: skip
        grew = metric(region, "flk_stream_divergences_total") - divergences_before[name]
        assert grew >= expected_divergences[name]
    print(f"divergences: {expected_divergences}")
    for group in (replies, outcomes, audits):
        for w in group.values():
            w.close()
