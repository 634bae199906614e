"""The WAL record contract: what the gateway writes to `flk.wal` and every reader relies on.

Value: the request body bytes exactly as received. Key: `tenant/pcs_id` when the gateway could
read a pcs_id from the body, else `tenant/~<request id>` (a malformed body is still appended).
Headers (all UTF-8): see `WalHeaders`. The partitioner is fixed for every producer of the WAL:
librdkafka's `murmur2_random`, the Java client's default, so that any Kafka tool producing a
record with the same key lands it on the same partition (DESIGN "WAL").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

PARTITIONER: Final = "murmur2_random"

H_TENANT: Final = "flk-tenant"
H_ORIGIN: Final = "flk-origin"
H_REQUEST_ID: Final = "flk-request-id"
H_STAMP: Final = "flk-stamp"
H_SHA256: Final = "flk-sha256"
H_POLICY: Final = "flk-policy-version"
H_KEYSET: Final = "flk-keyset-version"
H_REPLY_TO: Final = "flk-reply-to"


class WalHeaderError(ValueError):
    """A WAL record lacks a header or carries a malformed one (names which)."""


@dataclass(frozen=True, order=True)
class Stamp:
    """A hybrid-logical-clock receive stamp: physical milliseconds, then a counter that orders
    stamps issued within the same millisecond by one gateway process. Ordered as a tuple."""

    ms: int
    counter: int = 0

    def encode(self) -> str:
        return f"{self.ms}.{self.counter}"

    @classmethod
    def decode(cls, text: str) -> Stamp:
        ms, _, counter = text.partition(".")
        if not ms.isdigit() or (counter and not counter.isdigit()):
            raise WalHeaderError(f"{H_STAMP} header {text!r} is not '<ms>.<counter>'")
        return cls(int(ms), int(counter or 0))


@dataclass(frozen=True)
class ReplyTo:
    topic: str
    partition: int

    def encode(self) -> str:
        return f"{self.topic}:{self.partition}"

    @classmethod
    def decode(cls, text: str) -> ReplyTo:
        topic, _, part = text.rpartition(":")
        if not topic or not part.isdigit():
            raise WalHeaderError(f"{H_REPLY_TO} header {text!r} is not '<topic>:<partition>'")
        return cls(topic, int(part))


@dataclass(frozen=True)
class WalHeaders:
    tenant: str
    origin: str
    request_id: str
    stamp: Stamp
    body_sha256: str
    policy_version: str
    keyset_version: str
    reply_to: ReplyTo | None

    def encode(self) -> list[tuple[str, bytes]]:
        headers = [
            (H_TENANT, self.tenant.encode()),
            (H_ORIGIN, self.origin.encode()),
            (H_REQUEST_ID, self.request_id.encode()),
            (H_STAMP, self.stamp.encode().encode()),
            (H_SHA256, self.body_sha256.encode()),
            (H_POLICY, self.policy_version.encode()),
            (H_KEYSET, self.keyset_version.encode()),
        ]
        if self.reply_to is not None:
            headers.append((H_REPLY_TO, self.reply_to.encode().encode()))
        return headers

    @classmethod
    def decode(cls, headers: list[tuple[str, bytes | None]] | None) -> WalHeaders:
        found: dict[str, str] = {}
        for name, value in headers or []:
            if value is not None:
                found[name] = value.decode("utf-8", errors="replace")

        def need(name: str) -> str:
            if name not in found:
                raise WalHeaderError(f"WAL record lacks the {name} header")
            return found[name]

        reply = found.get(H_REPLY_TO)
        return cls(
            tenant=need(H_TENANT),
            origin=need(H_ORIGIN),
            request_id=need(H_REQUEST_ID),
            stamp=Stamp.decode(need(H_STAMP)),
            body_sha256=need(H_SHA256),
            policy_version=need(H_POLICY),
            keyset_version=need(H_KEYSET),
            reply_to=ReplyTo.decode(reply) if reply else None,
        )


def record_key(tenant: str, pcs_id: str | None, request_id: str) -> bytes:
    """`tenant/pcs_id`, or `tenant/~request_id` when no pcs_id could be read from the body."""
    return f"{tenant}/{pcs_id}".encode() if pcs_id else f"{tenant}/~{request_id}".encode()
