from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import flk_pcs_reference as ref
import pytest
from flk_pcs import (
    Outcome,
    VerificationParams,
    decide,
    encode_body,
    evaluate,
    keyset_from_mapping,
    parse,
    policy_from_mapping,
    recompute_d_hat,
)
from flk_pcs.outcome import ESCALATION_REASONS, SIGNATURE_REASONS
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "sdk/vectors/pcs-vectors.json").read_text(encoding="utf-8"))
CASES = VECTORS["verification"]


def _run(v: dict[str, Any]) -> Outcome:
    return evaluate(
        v["body_text"].encode("utf-8"),
        tenant=v["tenant"],
        received_at_ms=v["received_at_ms"],
        policy=policy_from_mapping({"verification": v["policy"] or {}}),
        keyset=keyset_from_mapping(v["keys"]),
    )


def _expect(o: Outcome) -> dict[str, Any]:
    return {k: getattr(o, k) for k in ("http_status", "status", "accepted", "escalated",
                                       "reason", "recomputed_D_hat", "recomputed_budget",
                                       "regime")}


def test_verification_vectors() -> None:
    failures = [(v["name"], _expect(_run(v)), v["expect"]) for v in CASES
                if _expect(_run(v)) != v["expect"]]
    assert not failures, f"{len(failures)} out of {len(CASES)} failed: {failures}"


def test_body_text_is_the_body_object() -> None:
    for v in CASES:
        assert json.loads(v["body_text"]) == v["body"], v["name"]
        assert encode_body(v["body"]).decode("utf-8") == v["body_text"], v["name"]


def test_semantic_vectors_agree_with_the_plain_reference() -> None:
    # Independent of flk_pcs: the reference follows SPEC §3 steps 4–7 as written.
    checked = 0
    for v in CASES:
        if v["expect"]["http_status"] in (200, 202):
            assert ref.semantic(v["body"], v["policy"]) == v["expect"], v["name"]
            checked += 1
    assert checked >= 40


# Hand-computed (no code): points (log2 s, log2 N) and the upper median of pairwise slopes.
HAND_D_HAT = {
    # N = s²: every slope is 2.
    "accepted-basic": 2.0,
    # x = 0,1,2,3; y = 0,2,3,5: slopes 2, 1.5, 5/3, 1, 1.5, 2 → sorted [1, 1.5, 1.5, 5/3, 2, 2];
    # n = 6, index 3 → 5/3 → 1.666666667 (the lower median or a mean would differ).
    "accepted-upper-median": 1.666666667,
    "accepted-sticky": 1.0,  # N = s
    "accepted-non-sticky": 3.0,  # N = s³
    # scales [2, 2, 4, 8]: the (2, 2) pair has Δx = 0 and is skipped; all others have slope 2.
    "accepted-duplicate-scale-skipped": 2.0,
    # one pair: log2(11) / 1 = 3.4594316186… → 3.459431619
    "accepted-budget-clamped-to-1": 3.459431619,
    # N_j["16"] changed to 4096 after signing: x = 1,2,3,4, y = 2,4,6,12; slopes (1,2)=2
    # (1,3)=2 (2,3)=2 (1,4)=10/3 (2,4)=4 (3,4)=6 → [2, 2, 2, 10/3, 4, 6], index 3 → 10/3.
    "escalated-unsigned-N_j-tampered": 3.333333333,
    "escalated-too_few_scales": None,
}

HAND_BUDGET = {
    # 0.10 + 0.30·(1−0.5) + 0.50·max(0, 2.0−2.2) + 0.20·0.5 = 0.35
    "accepted-basic": 0.35,
    # 0.10 + 0.30·0.7 + 0 + 0.20·0.5 = 0.41
    "accepted-upper-median": 0.41,
    # 0.10 + 0.30·0.5 + 0.50·0.8 + 0.20·0.3 = 0.71
    "accepted-non-sticky": 0.71,
    # 0.10 + 0.30·1 + 0.50·1.3 + 0.20·1 = 1.25 → clamped to 1
    "accepted-budget-clamped-to-1": 1.0,
    # 0.10 + 0.30·0.8 + 0 + 0.20·1.04 = 0.548
    "accepted-coh_star-within-tolerance": 0.548,
}


@pytest.mark.parametrize("name", sorted(HAND_D_HAT))
def test_hand_computed_d_hat(name: str) -> None:
    v = next(x for x in CASES if x["name"] == name)
    assert v["expect"]["recomputed_D_hat"] == HAND_D_HAT[name]


@pytest.mark.parametrize("name", sorted(HAND_BUDGET))
def test_hand_computed_budget(name: str) -> None:
    v = next(x for x in CASES if x["name"] == name)
    assert v["expect"]["recomputed_budget"] == HAND_BUDGET[name]


def test_vectors_cover_every_status_and_reason() -> None:
    statuses = {(v["expect"]["http_status"], v["expect"]["status"]) for v in CASES}
    assert statuses == {(200, "accepted"), (202, "escalated"), (400, "rejected"),
                        (401, "rejected")}
    reasons = {v["expect"]["reason"] for v in CASES}
    missing = (set(ESCALATION_REASONS) | set(SIGNATURE_REASONS)) - reasons
    assert not missing, f"no verification vector for {sorted(missing)}"
    # accepted=true escalations (SPEC §3.5–3.6) and accepted=false ones (§3.4) both appear.
    flags = {(v["expect"]["accepted"], v["expect"]["escalated"]) for v in CASES}
    assert {(True, False), (True, True), (False, True), (False, False)} <= flags


def test_vector_file_is_up_to_date() -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "sdk/vectors/generate.py"), "--check"],
        capture_output=True, text=True, cwd=REPO, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_outcome_serialisation_is_deterministic_and_round_trips() -> None:
    v = CASES[0]
    first, second = _run(v), _run(v)
    assert first.to_json() == second.to_json()
    assert Outcome.from_json(first.to_json()) == first
    doc = json.loads(first.to_json())
    assert list(doc) == sorted(doc)
    assert doc["body_sha256"] == v["body_sha256"]
    assert b" " not in first.to_json()


def test_outcome_carries_versions_and_key() -> None:
    v = next(x for x in CASES if x["name"] == "accepted-rotation-old-key-in-window")
    o = _run(v)
    assert o.key_id == "rot-old"
    assert len(o.policy_version) == 16 and len(o.keyset_version) == 16


def test_evaluate_never_raises_on_garbage() -> None:
    v = CASES[0]
    for body in (b"", b"\xff", b"[]", b'{"a":NaN}', b"{" * 5000, v["body_text"].encode()[:-1]):
        o = _run(dict(v, body_text=body.decode("utf-8", "replace")))
        assert o.http_status == 400 and o.status == "rejected" and o.pcs_id is None


def test_malformed_outcome_has_detail_but_no_verdict_values() -> None:
    v = next(x for x in CASES if x["name"] == "rejected-malformed-missing-field")
    o = _run(v)
    assert o.detail is not None and "shard_id" in o.detail
    assert o.recomputed_D_hat is None and o.recomputed_budget is None and o.regime is None


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.integers(1, 1024), min_size=1, max_size=10),
    st.lists(st.integers(1, 10**12), min_size=10, max_size=10),
    st.floats(0, 3.5), st.floats(0, 1.1), st.floats(0, 1), st.floats(0, 1),
    st.sampled_from(["sticky", "mixed", "non_sticky"]),
)
def test_decide_matches_the_reference(scales: list[int], counts: list[int], d_hat: float,
                                      coh: float, r: float, budget: float, regime: str) -> None:
    v = json.loads(CASES[0]["body_text"])
    v.update(scales=scales, N_j={str(s): counts[i % 10] for i, s in enumerate(scales)},
             D_hat=d_hat, coh_star=coh, r=r, budget=budget, regime=regime)
    record = parse(json.dumps(v).encode())
    got = decide(record, VerificationParams())
    want = ref.semantic(v, None)
    assert (got.accepted, got.escalated, got.reason) == (want["accepted"], want["escalated"],
                                                         want["reason"])
    assert got.recomputed_budget == want["recomputed_budget"]
    assert got.regime == want["regime"]
    assert got.recomputed_D_hat == want["recomputed_D_hat"]


def test_recompute_d_hat_edges() -> None:
    assert recompute_d_hat([4], {"4": 2}) is None
    assert recompute_d_hat([4, 4], {"4": 2}) is None
    assert recompute_d_hat([1, 2], {"1": 1, "2": 1}) == 0.0
    assert recompute_d_hat([2, 1], {"1": 1, "2": 8}) == 3.0  # order of points does not matter
    got = recompute_d_hat([3, 5], {"3": 10, "5": 27})
    assert got is not None
    assert math.isclose(got, (math.log2(27) - math.log2(10)) / (math.log2(5) - math.log2(3)),
                        abs_tol=1e-9)
