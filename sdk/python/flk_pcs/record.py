from __future__ import annotations

from collections.abc import Mapping
from typing import Final, NamedTuple

from .canonical import _payload

SCHEMA: Final = "fractal-lba-kakeya"
VERSION: Final = "0.1"
REGIMES: Final = frozenset({"sticky", "mixed", "non_sticky"})


class FaultTolerance(NamedTuple):
    """The optional, unsigned `ft` object (SPEC §1); absent members are None."""

    outbox_seq: int | None
    degraded: bool | None
    fallbacks: tuple[str, ...] | None
    clock_skew_ms: int | None


class PCSRecord(NamedTuple):
    """A structurally valid PCS (SPEC §1). Values are not yet verified (that is SPEC §3).

    A NamedTuple rather than a dataclass: it is built once per record on the hot path and
    tuple construction is several times cheaper than a frozen dataclass's __init__.
    The four signed numbers are floats even when the wire had an integer token.
    """

    pcs_id: str
    schema: str
    version: str
    shard_id: str
    epoch: int
    attempt: int
    sent_at: str
    seed: int
    scales: tuple[int, ...]
    N_j: Mapping[str, int]
    coh_star: float
    D_hat: float
    r: float
    budget: float
    v_star: tuple[float, ...]
    regime: str
    merkle_root: str
    # None when the field is absent or "" (a 401 `missing_signature`, SPEC §3.2, not a 400).
    sig: str | None
    sig_bytes: bytes | None
    ft: FaultTolerance | None

    def payload(self) -> bytes:
        """The canonical signing payload (SPEC §2)."""
        return _payload(
            self.pcs_id, self.merkle_root, self.epoch, self.shard_id,
            self.D_hat, self.coh_star, self.r, self.budget,
        )
