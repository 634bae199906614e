"""SPEC §3 verification, minus dedup (which needs state and lives in the streams' dedup stage).

The stream workers call, per record and in this order (signature before dedup):

    record = parse(body)                                   # MalformedError → 400
    check = verify_signature(record, keyset, tenant, ms)   # not ok → 401
    ... dedup on (tenant, pcs_id) ...
    decision = decide(record, policy.params(tenant))       # 200 / 202

`evaluate` runs all three steps (no dedup) and returns the Outcome value.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final, NamedTuple

from .canonical import compute_pcs_id, round9
from .dhat import d_hat_from_counts
from .errors import MalformedError
from .keyset import KeySet, SignatureCheck
from .outcome import Outcome
from .parsing import parse
from .policy import Policy, VerificationParams
from .record import SCHEMA, PCSRecord
from .signing import digest

_HEX64_RE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_MAX_SCALE: Final = 1024
_D_HAT_MAX: Final = 3.5


class Decision(NamedTuple):
    accepted: bool
    escalated: bool
    reason: str | None
    recomputed_D_hat: float | None
    recomputed_budget: float
    regime: str


def verify_signature(record: PCSRecord, keyset: KeySet, tenant: str, received_at_ms: int
                     ) -> SignatureCheck:
    """SPEC §3.2 with §2: a key of `tenant` valid at the WAL receive stamp must verify `sig`."""
    if record.sig_bytes is None or not keyset.has_tenant(tenant):
        return keyset.check(tenant, received_at_ms, b"", record.sig_bytes)
    return keyset.check(tenant, received_at_ms, digest(record.payload()), record.sig_bytes)


def expected_regime(d_hat: float, coh_star: float, p: VerificationParams) -> str:
    """SPEC §3.5, from the claimed D_hat and coh_star."""
    if coh_star >= p.sticky_coh_min and d_hat <= p.sticky_D_max:
        return "sticky"
    if d_hat >= p.non_sticky_D_min:
        return "non_sticky"
    return "mixed"


def expected_budget(d_hat: float, coh_star: float, r: float, p: VerificationParams) -> float:
    """SPEC §3.6, from the claimed values, clamped to [0, 1] and rounded to 9 dp.

    Evaluated left to right exactly as written in the SPEC so every language gets the same
    double.
    """
    b = p.base + p.alpha * (1.0 - r) + p.beta * max(0.0, d_hat - p.D0) + p.gamma * coh_star
    return round9(min(1.0, max(0.0, b)))


def _scales_problem(scales: tuple[int, ...], counts: list[int | None]) -> str | None:
    if len(set(scales)) < 2:
        return "too_few_scales"
    for s in scales:
        if not 1 <= s <= _MAX_SCALE:
            return "scale_out_of_range"
    if None in counts:
        return "missing_N_j"
    for n in counts:
        if n <= 0:  # type: ignore[operator]  # None excluded just above
            return "nonpositive_N_j"
    return None


def decide(record: PCSRecord, params: VerificationParams) -> Decision:
    """SPEC §3 steps 4–7 on an authenticated first write; the first failure wins.

    recomputed_D_hat is reported whenever the scales and N_j allow it (whatever the reason);
    recomputed_budget and regime always (they only need the claimed, finite values).
    """
    scales = record.scales
    n_j = record.N_j
    counts = [n_j.get(str(s)) for s in scales]
    scales_problem = _scales_problem(scales, counts)
    d_hat_re = None if scales_problem else d_hat_from_counts(scales, counts)  # type: ignore[arg-type]
    d_hat, coh_star = record.D_hat, record.coh_star
    budget_re = expected_budget(d_hat, coh_star, record.r, params)
    regime_re = expected_regime(d_hat, coh_star, params)
    reason = _first_failure(record, params, scales_problem, d_hat_re)
    if reason is not None:
        return Decision(False, True, reason, d_hat_re, budget_re, regime_re)
    if record.regime != regime_re:
        return Decision(True, True, "regime_mismatch", d_hat_re, budget_re, regime_re)
    if abs(record.budget - budget_re) > params.tol_budget:
        return Decision(True, True, "budget_mismatch", d_hat_re, budget_re, regime_re)
    return Decision(True, False, None, d_hat_re, budget_re, regime_re)


def _first_failure(record: PCSRecord, params: VerificationParams, scales_problem: str | None,
                   d_hat_re: float | None) -> str | None:
    """SPEC §3.4 in order: the checks whose failure means accepted=false."""
    if record.schema != SCHEMA:
        return "schema_mismatch"
    if record.pcs_id != compute_pcs_id(record.merkle_root, record.epoch, record.shard_id):
        return "pcs_id_mismatch"
    if scales_problem is not None:
        return scales_problem
    if _HEX64_RE.fullmatch(record.merkle_root) is None:
        return "bad_merkle_root"
    if not 0.0 <= record.r <= 1.0:
        return "r_out_of_range"
    if not 0.0 <= record.budget <= 1.0:
        return "budget_out_of_range"
    if not 0.0 <= record.D_hat <= _D_HAT_MAX:
        return "D_hat_out_of_range"
    assert d_hat_re is not None  # ≥ 2 distinct scales give at least one slope
    if abs(record.D_hat - d_hat_re) > params.tol_D:
        return "D_hat_mismatch"
    if not 0.0 <= record.coh_star <= 1.0 + params.tol_coh:
        return "coh_star_out_of_range"
    return None


def outcome_of(
    decision: Decision, record: PCSRecord, tenant: str, key_id: str | None, body_sha256: str,
    policy_version: str, keyset_version: str,
) -> Outcome:
    return Outcome(
        http_status=202 if decision.escalated else 200,
        status="escalated" if decision.escalated else "accepted",
        tenant=tenant, pcs_id=record.pcs_id, accepted=decision.accepted,
        escalated=decision.escalated, reason=decision.reason, detail=None,
        recomputed_D_hat=decision.recomputed_D_hat, recomputed_budget=decision.recomputed_budget,
        regime=decision.regime, key_id=key_id, body_sha256=body_sha256,
        policy_version=policy_version, keyset_version=keyset_version,
    )


def rejection(
    http_status: int, tenant: str, pcs_id: str | None, reason: str, detail: str | None,
    body_sha256: str, policy_version: str, keyset_version: str,
) -> Outcome:
    return Outcome(
        http_status=http_status, status="rejected", tenant=tenant, pcs_id=pcs_id,
        accepted=False, escalated=False, reason=reason, detail=detail, recomputed_D_hat=None,
        recomputed_budget=None, regime=None, key_id=None, body_sha256=body_sha256,
        policy_version=policy_version, keyset_version=keyset_version,
    )


def evaluate(body: bytes, *, tenant: str, received_at_ms: int, policy: Policy, keyset: KeySet
             ) -> Outcome:
    """SPEC §3 steps 1, 2, 4–7 for one request body (no dedup): never raises on any body."""
    body_sha256 = hashlib.sha256(body).hexdigest()
    try:
        record = parse(body)
    except MalformedError as exc:
        return rejection(400, tenant, None, exc.code, exc.detail, body_sha256,
                         policy.version, keyset.version)
    check = verify_signature(record, keyset, tenant, received_at_ms)
    if not check.ok:
        assert check.reason is not None
        return rejection(401, tenant, record.pcs_id, check.reason, None, body_sha256,
                         policy.version, keyset.version)
    decision = decide(record, policy.params(tenant))
    return outcome_of(decision, record, tenant, check.key_id, body_sha256, policy.version,
                      keyset.version)
