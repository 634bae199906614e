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
import math
import re
from collections.abc import Callable
from itertools import combinations
from operator import itemgetter, sub, truediv
from typing import Any, Final, NamedTuple

from .canonical import compute_pcs_id, round9
from .dhat import _MIN_DX, d_hat_from_counts
from .errors import MalformedError
from .keyset import KeySet, SignatureCheck
from .outcome import Outcome
from .parsing import parse
from .policy import Policy, VerificationParams
from .record import SCHEMA, PCSRecord
from .signing import digest

# What a NamedTuple's generated __new__ does, without its Python frame (hot path).
_tuple_new: Final = tuple.__new__
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


class _Plan(NamedTuple):
    """What `decide` needs from a `scales` tuple alone, computed once per distinct tuple: the
    N_j keys in order, and the pairs i<j of `d_hat_from_counts` (same order, same |Δx|
    filter) as index getters with their Δx, so the slopes are computed by C-level maps."""

    keys: Callable[[Any], Any]  # N_j → the counts, a tuple in the order of scales
    first: Callable[[Any], Any]  # ys → the y_i of every pair
    second: Callable[[Any], Any]  # ys → the y_j of every pair
    dx: tuple[float, ...]  # x_j − x_i of every pair


_PLANS: dict[tuple[int, ...], _Plan | None] = {}
_PLANS_MAX: Final = 4096
_INT_TYPE: Final = frozenset({int})


def _getter(items: list[Any]) -> Callable[[Any], Any]:
    if len(items) == 1:  # itemgetter of one item returns the item, not a 1-tuple
        only = items[0]
        return lambda c: (c[only],)
    return itemgetter(*items)


def _make_plan(scales: tuple[int, ...]) -> _Plan | None:
    """None when the scales alone already fail a §3.4 sanity rule (the exact path says which)."""
    if len(set(scales)) < 2 or not all(1 <= s <= _MAX_SCALE for s in scales):
        return None
    log2 = math.log2
    xs = [log2(s) for s in scales]
    first: list[int] = []
    second: list[int] = []
    dx: list[float] = []
    for i, j in combinations(range(len(xs)), 2):
        if abs(xs[j] - xs[i]) >= _MIN_DX:
            first.append(i)
            second.append(j)
            dx.append(xs[j] - xs[i])
    return _Plan(_getter([str(s) for s in scales]), _getter(first), _getter(second), tuple(dx))


def _plan(scales: tuple[int, ...]) -> _Plan | None:
    plan = _PLANS.get(scales, False)
    if plan is False:
        plan = _make_plan(scales)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        _PLANS[scales] = plan
    return plan  # type: ignore[return-value]


def decide(record: PCSRecord, params: VerificationParams) -> Decision:
    """SPEC §3 steps 4–7 on an authenticated first write; the first failure wins.

    recomputed_D_hat is reported whenever the scales and N_j allow it (whatever the reason);
    recomputed_budget and regime always (they only need the claimed, finite values).

    The common case (valid scales, every N_j entry present and positive) takes a fast path
    that does the same floating-point operations in the same order; anything else, and any
    doubt, goes to `_decide_exact`.
    """
    scales = record.scales
    # The plan cache is keyed by value, and 1 == 1.0 == True: only genuine int tuples use it.
    if type(scales) is not tuple or not set(map(type, scales)) <= _INT_TYPE:
        return _decide_exact(record, params)
    plan = _plan(scales)
    if plan is None:
        return _decide_exact(record, params)
    n_j = record.N_j
    if type(n_j) is not dict:  # e.g. a defaultdict, whose [] would differ from .get
        return _decide_exact(record, params)
    try:
        counts = plan.keys(n_j)
        if not min(counts) > 0:
            return _decide_exact(record, params)
        ys = list(map(math.log2, counts))
    except (KeyError, TypeError, ValueError):  # a missing key, a None count, …
        return _decide_exact(record, params)
    slopes = list(map(truediv, map(sub, plan.second(ys), plan.first(ys)), plan.dx))
    slopes.sort()
    d_hat_re: float | None = round9(slopes[len(slopes) // 2])
    d_hat, coh_star = record.D_hat, record.coh_star
    # expected_budget and expected_regime, inlined: the same expressions in the same order.
    p = params
    b = p.base + p.alpha * (1.0 - record.r) + p.beta * max(0.0, d_hat - p.D0) + p.gamma * coh_star
    budget_re = round9(min(1.0, max(0.0, b)))
    if coh_star >= p.sticky_coh_min and d_hat <= p.sticky_D_max:
        regime_re = "sticky"
    elif d_hat >= p.non_sticky_D_min:
        regime_re = "non_sticky"
    else:
        regime_re = "mixed"
    reason = _first_failure(record, params, None, d_hat_re)
    if reason is not None:
        return _tuple_new(Decision, (False, True, reason, d_hat_re, budget_re, regime_re))
    if record.regime != regime_re:
        return _tuple_new(Decision, (True, True, "regime_mismatch", d_hat_re, budget_re,
                                     regime_re))
    if abs(record.budget - budget_re) > params.tol_budget:
        return _tuple_new(Decision, (True, True, "budget_mismatch", d_hat_re, budget_re,
                                     regime_re))
    return _tuple_new(Decision, (True, False, None, d_hat_re, budget_re, regime_re))


def _decide_exact(record: PCSRecord, params: VerificationParams) -> Decision:
    """`decide`, one rule at a time: the reference the fast path is pinned to."""
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
    escalated = decision.escalated
    # In Outcome's field order, without the keyword binding of its __new__ (hot path).
    return _tuple_new(Outcome, (
        202 if escalated else 200,  # http_status
        "escalated" if escalated else "accepted",  # status
        tenant, record.pcs_id, decision.accepted, escalated, decision.reason,
        None,  # detail
        decision.recomputed_D_hat, decision.recomputed_budget, decision.regime, key_id,
        body_sha256, policy_version, keyset_version,
    ))


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
