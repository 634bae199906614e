from __future__ import annotations

import json
from typing import Any, Final, Literal, NamedTuple

Status = Literal["accepted", "escalated", "rejected"]

# SPEC §3 reasons, by step. A 400 outcome's reason is the MalformedError code instead.
SIGNATURE_REASONS: Final = ("unknown_tenant", "missing_signature", "no_valid_key", "bad_signature")
ESCALATION_REASONS: Final = (
    "schema_mismatch",
    "pcs_id_mismatch",
    "too_few_scales",
    "scale_out_of_range",
    "missing_N_j",
    "nonpositive_N_j",
    "bad_merkle_root",
    "r_out_of_range",
    "budget_out_of_range",
    "D_hat_out_of_range",
    "D_hat_mismatch",
    "coh_star_out_of_range",
    "regime_mismatch",
    "budget_mismatch",
)


class Outcome(NamedTuple):
    """The verdict on one record: a pure function of (body, tenant, receive stamp, policy,
    key set). It names nothing about where, when or by whom it was computed (SPEC §5
    determinism); the dedup stage adds the winner's identity around it. A NamedTuple because
    it is built once per record on the hot path.
    """

    http_status: int  # 200 | 202 | 400 | 401
    status: Status
    tenant: str
    pcs_id: str | None  # None when the body is malformed
    accepted: bool
    escalated: bool
    reason: str | None
    detail: str | None  # for 400 only: what is wrong, naming the field, never the payload
    recomputed_D_hat: float | None
    recomputed_budget: float | None
    regime: str | None  # the recomputed regime
    key_id: str | None  # the key that verified the signature
    body_sha256: str  # hex SHA-256 of the exact request bytes (SPEC §2: scales/N_j are unsigned)
    policy_version: str
    keyset_version: str

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def to_json(self) -> bytes:
        """Deterministic bytes: sorted keys, no spaces, ASCII, floats as repr."""
        return json.dumps(
            self._asdict(), sort_keys=True, separators=(",", ":"), ensure_ascii=True,
            allow_nan=False,
        ).encode("ascii")

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Outcome:
        return cls(**d)

    @classmethod
    def from_json(cls, data: bytes | str) -> Outcome:
        return cls.from_dict(json.loads(data))
