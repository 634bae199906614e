"""Realistic signed PCS traffic for the demo and the benchmarks.

A `Workload` yields `Submission`s: unique signed records for several tenants (HMAC and
Ed25519), and, in configurable shares, exact duplicates (same body, new request id),
same-key conflicts (same pcs_id, a different unsigned `scales`/`N_j`, so the signature still
verifies but the body hash differs), bad signatures and malformed bodies. Deterministic for a
seed, so a run can be repeated.
"""

from __future__ import annotations

import base64
import hashlib
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

from flk_pcs import Ed25519Signer, HmacSigner, Signer, build_pcs, encode_body, sign_pcs

Kind = Literal["unique", "duplicate", "conflict", "bad_signature", "malformed"]


@dataclass(frozen=True)
class Submission:
    kind: Kind
    tenant: str
    request_id: str
    body: bytes
    pcs_id: str | None


@dataclass(frozen=True)
class Mix:
    duplicate: float = 0.10
    conflict: float = 0.03
    bad_signature: float = 0.03
    malformed: float = 0.02

    def __post_init__(self) -> None:
        total = self.duplicate + self.conflict + self.bad_signature + self.malformed
        if not 0 <= total <= 1 or min(vars(self).values()) < 0:
            raise ValueError(f"shares must be non-negative and sum to at most 1 (got {total})")


def signers(keys: dict[str, dict[str, str]]) -> dict[str, Signer]:
    """Signers from the development signing-keys document (gateway/devkeys.py)."""
    out: dict[str, Signer] = {}
    for tenant, k in keys.items():
        if k["alg"] == "hmac":
            out[tenant] = HmacSigner(k["secret"])
        else:
            out[tenant] = Ed25519Signer(base64.b64decode(k["seed"]))
    return out


@dataclass
class Workload:
    signers: dict[str, Signer]
    mix: Mix = field(default_factory=Mix)
    seed: int = 1
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._sent: list[tuple[str, dict[str, object]]] = []  # (tenant, signed pcs) so far
        self._n = 0

    def _record(self, tenant: str) -> dict[str, object]:
        rng = self._rng
        self._n += 1
        scales = sorted(rng.sample([2, 4, 8, 16, 32, 64, 128, 256], rng.randint(3, 6)))
        dim = rng.uniform(0.6, 2.8)
        n_j = {str(s): max(1, round(7 * s**dim * rng.uniform(0.95, 1.05))) for s in scales}
        root = hashlib.sha256(f"{self.run_id}/{self.seed}/{self._n}".encode()).hexdigest()
        pcs = build_pcs(
            merkle_root=root, epoch=self._n, shard_id=f"shard-{self._n % 16:02d}",
            scales=scales, N_j=n_j, coh_star=round(rng.uniform(0.0, 1.0), 6),
            r=round(rng.uniform(0.0, 1.0), 6), seed=rng.randint(0, 2**31),
        )  # fmt: skip
        signed: dict[str, object] = sign_pcs(pcs, self.signers[tenant])
        return signed

    def __iter__(self) -> Iterator[Submission]:
        tenants = sorted(self.signers)
        while True:
            yield self.next(tenants)

    def next(self, tenants: list[str] | None = None) -> Submission:
        rng = self._rng
        tenants = tenants or sorted(self.signers)
        rid = f"{self.run_id}-{self._n:08d}-{rng.getrandbits(32):08x}"
        roll = rng.random()
        m = self.mix
        if self._sent and roll < m.duplicate:
            tenant, pcs = rng.choice(self._sent)
            return Submission("duplicate", tenant, rid, encode_body(pcs), str(pcs["pcs_id"]))
        roll -= m.duplicate
        if self._sent and roll < m.conflict:
            tenant, pcs = rng.choice(self._sent)
            other = dict(pcs)
            scales = list(pcs["scales"])  # type: ignore[call-overload]
            extra = max(scales) * 2
            other["scales"] = [*scales, extra]
            other["N_j"] = {**pcs["N_j"], str(extra): 1}  # type: ignore[dict-item]
            return Submission("conflict", tenant, rid, encode_body(other), str(pcs["pcs_id"]))
        roll -= m.conflict
        tenant = rng.choice(tenants)
        if roll < m.bad_signature:
            pcs = self._record(tenant)
            sig = bytearray(base64.b64decode(str(pcs["sig"])))
            sig[0] ^= 0xFF
            pcs["sig"] = base64.b64encode(bytes(sig)).decode()
            return Submission("bad_signature", tenant, rid, encode_body(pcs), str(pcs["pcs_id"]))
        roll -= m.bad_signature
        if roll < m.malformed:
            body = encode_body(self._record(tenant))[:-7]  # truncated JSON
            return Submission("malformed", tenant, rid, body, None)
        pcs = self._record(tenant)
        self._sent.append((tenant, pcs))
        return Submission("unique", tenant, rid, encode_body(pcs), str(pcs["pcs_id"]))
