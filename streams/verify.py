"""The verify stage: WAL headers, parse, signature — before anything touches dedup state.

SPEC §3 steps 1–2 ("signature before dedup"): a record that is malformed, names an unknown
tenant or carries a bad signature is a `Rejection` and never reaches the table. The key set and
policy are exactly the versions named in the record's headers (the gateway stamped them at
receive time), loaded from the version archive, so every region verifies a record alike.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import NamedTuple

from flk_pcs import KeySet, MalformedError, PCSRecord, Policy, parse, verify_signature

from flk import registry
from flk.errors import FlkError
from topics.wal import WalHeaderError, WalHeaders


class WalMessage(NamedTuple):
    """One record read from `flk.wal` or a mirror, independent of the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: list[tuple[str, bytes | None]] | None


class Verified(NamedTuple):
    msg: WalMessage
    wal: WalHeaders
    record: PCSRecord
    key_id: str | None
    policy: Policy
    keyset: KeySet
    table_key: bytes  # tenant/pcs_id: the dedup key (SPEC §3.3)


class Rejection(NamedTuple):
    msg: WalMessage
    wal: WalHeaders | None  # None when the headers themselves are unreadable
    http_status: int  # 400 or 401
    reason: str
    detail: str | None
    pcs_id: str | None
    body_sha256: str


def table_key(tenant: str, pcs_id: str) -> bytes:
    # The same text as the WAL key (topics.wal.record_key), so the entry lives on the partition
    # its records arrive on.
    return f"{tenant}/{pcs_id}".encode()


def verify(msg: WalMessage, home: Path) -> Verified | Rejection:
    try:
        wal = WalHeaders.decode(msg.headers)
    except WalHeaderError as exc:
        return Rejection(msg, None, 400, "bad_wal_headers", str(exc), None, _sha(msg.value))
    body_sha256 = _sha(msg.value)
    if body_sha256 != wal.body_sha256:
        # The WAL carries the bytes exactly as received; a different hash means the record was
        # altered after the gateway hashed it: nothing about it can be trusted.
        return Rejection(msg, wal, 400, "body_hash_mismatch",
                         f"flk-sha256 header {wal.body_sha256[:16]}… does not match the body",
                         None, body_sha256)  # fmt: skip
    try:
        keyset = registry.keyset(home, wal.keyset_version)
    except FlkError as exc:
        return Rejection(msg, wal, 401, "unknown_keyset_version", exc.message, None,
                         body_sha256)  # fmt: skip
    try:
        policy = registry.policy(home, wal.policy_version)
    except FlkError as exc:
        return Rejection(msg, wal, 400, "unknown_policy_version", exc.message, None,
                         body_sha256)  # fmt: skip
    try:
        record = parse(msg.value)
    except MalformedError as exc:
        return Rejection(msg, wal, 400, exc.code, exc.detail, None, body_sha256)
    check = verify_signature(record, keyset, wal.tenant, wal.stamp.ms)
    if not check.ok:
        return Rejection(msg, wal, 401, check.reason or "bad_signature", None, record.pcs_id,
                         body_sha256)  # fmt: skip
    return Verified(msg, wal, record, check.key_id, policy, keyset,
                    table_key(wal.tenant, record.pcs_id))  # fmt: skip


def _sha(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()
