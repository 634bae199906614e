"""Building and signing PCS records on the client side (SPEC §1–§2)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .canonical import compute_pcs_id, payload_of, round9
from .dhat import recompute_d_hat
from .engine import expected_budget, expected_regime
from .policy import VerificationParams
from .record import SCHEMA, VERSION
from .signing import digest, ed25519_public_key, ed25519_sign, hmac_sign


class Signer(Protocol):
    def sign_digest(self, dig: bytes) -> str: ...


@dataclass(frozen=True)
class HmacSigner:
    secret: str = field(repr=False)

    def sign_digest(self, dig: bytes) -> str:
        return hmac_sign(self.secret, dig)


@dataclass(frozen=True)
class Ed25519Signer:
    seed: bytes = field(repr=False)  # the 32-byte private seed

    def sign_digest(self, dig: bytes) -> str:
        return ed25519_sign(self.seed, dig)

    @property
    def public_key(self) -> bytes:
        return ed25519_public_key(self.seed)


def _now_rfc3339() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def build_pcs(
    *,
    merkle_root: str,
    epoch: int,
    shard_id: str,
    scales: Sequence[int],
    N_j: Mapping[str, int] | Mapping[int, int],
    coh_star: float,
    r: float,
    v_star: Sequence[float] = (),
    seed: int = 0,
    attempt: int = 1,
    sent_at: str | None = None,
    D_hat: float | None = None,
    regime: str | None = None,
    budget: float | None = None,
    params: VerificationParams | None = None,
    ft: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """An unsigned PCS object. Omitted D_hat, regime and budget are computed as the verifier
    will recompute them (SPEC §3), with `params` (default policy if None). The four signed
    numbers are rounded to 9 dp so the wire carries exactly what is signed.
    """
    p = params or VerificationParams()
    n_j = {str(k): int(v) for k, v in N_j.items()}
    if D_hat is None:
        D_hat = recompute_d_hat(list(scales), n_j)
        if D_hat is None:
            raise ValueError("D_hat cannot be computed: scales need at least 2 distinct values")
    d_hat = round9(float(D_hat))
    coh = round9(float(coh_star))
    rr = round9(float(r))
    pcs: dict[str, Any] = {
        "pcs_id": compute_pcs_id(merkle_root, epoch, shard_id),
        "schema": SCHEMA,
        "version": VERSION,
        "shard_id": shard_id,
        "epoch": epoch,
        "attempt": attempt,
        "sent_at": sent_at or _now_rfc3339(),
        "seed": seed,
        "scales": list(scales),
        "N_j": n_j,
        "coh_star": coh,
        "D_hat": d_hat,
        "r": rr,
        "budget": round9(float(budget)) if budget is not None
        else expected_budget(d_hat, coh, rr, p),
        "v_star": [float(x) for x in v_star],
        "regime": regime or expected_regime(d_hat, coh, p),
        "merkle_root": merkle_root,
    }
    if ft is not None:
        pcs["ft"] = dict(ft)
    return pcs


def sign_pcs(pcs: Mapping[str, Any], signer: Signer) -> dict[str, Any]:
    """A copy of `pcs` with `sig` over its canonical payload (SPEC §2)."""
    out = dict(pcs)
    out["sig"] = signer.sign_digest(digest(payload_of(pcs)))
    return out


def encode_body(pcs: Mapping[str, Any]) -> bytes:
    """Request bytes for a PCS object: compact UTF-8 JSON (the wire form is not canonical;
    only the signing payload is)."""
    return json.dumps(pcs, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode(
        "utf-8"
    )
