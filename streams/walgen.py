"""Synthetic WAL records, exactly as a gateway writes them (topics/wal.py), for the streams'
tests, benchmark and drills: signed PCS bodies, a published key set and policy, headers with
receive stamps, origins and reply addresses chosen by the caller.

The key-set document holds development secrets only; `publish` puts it in the version archive
like a gateway does, so the workers verify these records by the version named in the headers.
"""

from __future__ import annotations

import hashlib
import random
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from confluent_kafka import Producer
from flk_pcs import Ed25519Signer, HmacSigner, KeySet, Policy, build_pcs, encode_body, sign_pcs

from flk import registry
from topics.wal import PARTITIONER, ReplyTo, Stamp, WalHeaders, record_key

HMAC_TENANTS = ("st-a", "st-b", "st-bench")
ED25519_TENANTS = ("st-ed",)
SHORT_WINDOW_TENANT = "st-win"  # dedup window 3 s (window tests)
_SEED = bytes(range(1, 33))


def secret_of(tenant: str) -> str:
    return f"dev-secret-{tenant}"


def signer_of(tenant: str) -> HmacSigner | Ed25519Signer:
    return Ed25519Signer(_SEED) if tenant in ED25519_TENANTS else HmacSigner(secret_of(tenant))


def keyset_document() -> dict[str, Any]:
    tenants: dict[str, Any] = {
        t: {"keys": [{"key_id": f"{t}-k1", "alg": "hmac", "secret": secret_of(t)}]}
        for t in (*HMAC_TENANTS, SHORT_WINDOW_TENANT)
    }
    from flk_pcs.signing import b64encode

    pub = b64encode(Ed25519Signer(_SEED).public_key)
    for t in ED25519_TENANTS:
        tenants[t] = {"keys": [{"key_id": f"{t}-k1", "alg": "ed25519", "public_key": pub}]}
    return {"keyset_format": 1, "tenants": tenants}


def policy_document() -> dict[str, Any]:
    return {"policy_format": 1, "tenants": {SHORT_WINDOW_TENANT: {"dedup_window": "3s"}}}


@dataclass(frozen=True)
class Versions:
    keyset: KeySet
    policy: Policy


def publish(home: Path) -> Versions:
    return Versions(registry.publish_keyset(home, keyset_document()),
                    registry.publish_policy(home, policy_document()))  # fmt: skip


def body(tenant: str, rng: random.Random, *, merkle_root: str | None = None, epoch: int = 0,
         shard_id: str = "shard-0", scales: Sequence[int] | None = None,
         tamper: bool = False, wrong_regime: bool = False) -> bytes:  # fmt: skip
    """A signed PCS body. The same merkle_root/epoch/shard_id give the same pcs_id; `scales`
    (unsigned) lets two bodies share a pcs_id and a valid signature but differ in bytes and
    verdict; `tamper` breaks the signature; `wrong_regime` makes an escalation (202)."""
    root = merkle_root or f"{rng.getrandbits(256):064x}"
    sc = list(scales or [2, 4, 8, 16])
    slope = 1.5
    n_j = {s: max(1, round(s**slope)) for s in sc}
    pcs = build_pcs(merkle_root=root, epoch=epoch, shard_id=shard_id, scales=[2, 4, 8, 16],
                    N_j={s: max(1, round(s**slope)) for s in (2, 4, 8, 16)}, coh_star=0.5,
                    r=0.5, v_star=[0.1, 0.2], seed=rng.getrandbits(30), attempt=1,
                    sent_at="2026-01-01T00:00:00.000Z")  # fmt: skip
    # Unsigned fields may be replaced after signing without breaking the signature.
    signed = sign_pcs(pcs, signer_of(tenant))
    signed["scales"] = sc
    signed["N_j"] = {str(k): v for k, v in n_j.items()}
    if wrong_regime:
        signed["regime"] = "sticky" if pcs["regime"] != "sticky" else "non_sticky"
    if tamper:
        sig = signed["sig"]
        signed["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    data: bytes = encode_body(signed)
    return data


def pcs_id_of(data: bytes) -> str:
    import json

    return str(json.loads(data)["pcs_id"])


@dataclass
class WalRecord:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]
    request_id: str
    tenant: str
    stamp: Stamp
    origin: str


@dataclass
class Clock:
    """Per-origin HLC-like stamps with an offset (clock skew between regions)."""

    offset_ms: int = 0
    _last: Stamp = field(default_factory=lambda: Stamp(0, 0))

    def now(self) -> Stamp:
        ms = int(time.time() * 1000) + self.offset_ms
        s = Stamp(ms, 0) if ms > self._last.ms else Stamp(self._last.ms, self._last.counter + 1)
        self._last = s
        return s


def wal_record(data: bytes, *, tenant: str, origin: str, request_id: str, stamp: Stamp,
               versions: Versions, reply_to: ReplyTo | None = None,
               pcs_id: str | None = None) -> WalRecord:  # fmt: skip
    if pcs_id is None:
        try:
            pcs_id = pcs_id_of(data)
        except (ValueError, KeyError, TypeError):
            pcs_id = None
    headers = WalHeaders(
        tenant=tenant, origin=origin, request_id=request_id, stamp=stamp,
        body_sha256=hashlib.sha256(data).hexdigest(), policy_version=versions.policy.version,
        keyset_version=versions.keyset.version, reply_to=reply_to,
    ).encode()  # fmt: skip
    return WalRecord(record_key(tenant, pcs_id, request_id), data, headers, request_id, tenant,
                     stamp, origin)  # fmt: skip


def producer(bootstrap: str) -> Producer:
    return Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True,
                     "partitioner": PARTITIONER, "linger.ms": 5,
                     "compression.type": "lz4"})  # fmt: skip


def produce(bootstrap: str, topic: str, records: Iterable[WalRecord],
            prod: Producer | None = None) -> int:  # fmt: skip
    """Append records in order and wait for the acknowledgements; returns how many."""
    p = prod or producer(bootstrap)
    n = 0
    for r in records:
        while True:
            try:
                p.produce(topic, r.value, r.key, headers=cast(Any, r.headers))
                break
            except BufferError:
                p.poll(0.1)
        n += 1
        if n % 5000 == 0:
            p.poll(0)
    left = p.flush(60)
    if left:
        raise RuntimeError(f"{left} WAL records not acknowledged")
    return n
