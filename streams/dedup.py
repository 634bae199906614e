"""The dedup stage: verified records → the `(tenant, pcs_id)` entry → outcomes, replies,
rejections, audit events and outcome-store rows (SPEC §3 step 3, §5; DESIGN "One hop").

`DedupStage.process` handles one batch against a read-only view of the table and returns
everything the batch must write. It does no I/O, so the Faust worker (streams/app.py) and
`flk replay` (streams/replay.py) run exactly the same decisions; the caller makes the outputs
durable before it writes the entries and acknowledges the batch (at-least-once, with
redelivery harmless: a redelivered winner re-emits its identical outcome).

Entry value: `01` ‖ expires-at ms (8 bytes, big-endian) ‖ the outcome record bytes. The
expiry (winner stamp + the tenant's dedup window) lets the sweeper decide without decoding.
"""

from __future__ import annotations

import struct
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, NamedTuple, Protocol

from streams import records
from streams.merge import Identity, Kind, classify
from streams.verify import Rejection, Verified, WalMessage, verify
from topics.catalogue import AUDIT, OUTCOMES, REJECTED, WAL

ENTRY_V1: Final = b"\x01"
_EXPIRY: Final = struct.Struct(">q")
H_SUPERSEDES: Final = "flk-supersedes"


def encode_entry(expires_at_ms: int, outcome: bytes) -> bytes:
    return ENTRY_V1 + _EXPIRY.pack(expires_at_ms) + outcome


def entry_expiry(value: bytes) -> int | None:
    """The expiry of an entry, or None for a value that is not an entry (e.g. Faust's offset
    bookkeeping key in the same store)."""
    if len(value) < 9 or value[:1] != ENTRY_V1:
        return None
    return int(_EXPIRY.unpack_from(value, 1)[0])


def entry_outcome(value: bytes) -> bytes:
    return value[9:]


class Out(NamedTuple):
    topic: str
    partition: int | None
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


class TableView(Protocol):
    """The stage's read of the table. A view may also offer
    `get_many(partition, keys) -> values` (None for a missing key), used to read a batch's
    entries at once."""

    def get(self, partition: int, key: bytes) -> bytes | None: ...


class _Entry(NamedTuple):
    outcome: dict[str, Any]
    value: bytes


def _entry(raw: bytes | None) -> _Entry | None:
    """A table value read back: its decoded outcome and the stored bytes."""
    return None if raw is None else _Entry(records.OUTCOME.decode(entry_outcome(raw)), raw)


@dataclass
class BatchResult:
    outputs: list[Out] = field(default_factory=list)
    # Answers to the waiting gateways: sent only once the outcome store has the batch, so a
    # request answered from a reply can always be read back (GET /v1/requests/{id}).
    replies: list[Out] = field(default_factory=list)
    # (partition, key) → new entry value; insertion order is processing order.
    writes: dict[tuple[int, bytes], bytes] = field(default_factory=dict)
    outcome_rows: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    request_rows: dict[tuple[str, str], tuple[Any, ...]] = field(default_factory=dict)
    counts: Counter[str] = field(default_factory=Counter)
    rejected_reasons: Counter[str] = field(default_factory=Counter)
    event_time: dict[int, int] = field(default_factory=dict)  # partition → max stamp ms
    stamps_ms: list[int] = field(default_factory=list)


class DedupStage:
    """Decisions for one region. `side_effects=False` (replay) emits outcome records only."""

    def __init__(self, region: str, home: Path, *, outcomes_topic: str = OUTCOMES,
                 side_effects: bool = True) -> None:  # fmt: skip
        self.region = region
        self.home = home
        self.outcomes_topic = outcomes_topic
        self.side_effects = side_effects

    def process(self, batch: Iterable[WalMessage], table: TableView) -> BatchResult:
        res = BatchResult()
        cache: dict[tuple[int, bytes], _Entry | None] = {}
        checked = [verify(msg, self.home) for msg in batch]
        get_many = getattr(table, "get_many", None)
        if get_many is not None:
            self._prefetch(checked, get_many, cache)
        for one in checked:
            if isinstance(one, Rejection):
                self._reject(one, res)
                continue
            self._decide(one, table, cache, res)
        return res

    def _reject(self, r: Rejection, res: BatchResult) -> None:
        res.counts["processed"] += 1
        res.counts["rejected"] += 1
        res.rejected_reasons[r.reason] += 1
        if r.wal is not None:
            res.stamps_ms.append(r.wal.stamp.ms)
        if not self.side_effects:
            return
        w = r.wal
        key = w.request_id.encode() if w is not None else r.msg.key
        rejected = records.REJECTED.encode(records.rejected_of(r))
        res.outputs.append(Out(REJECTED, None, key, rejected))
        if w is None:
            return
        reply = records.rejection_reply(r)
        if r.msg.topic == WAL and w.reply_to is not None:
            res.replies.append(Out(w.reply_to.topic, w.reply_to.partition, key,
                                   records.REPLY.encode(reply)))  # fmt: skip
        res.request_rows[(w.tenant, w.request_id)] = (
            w.tenant, w.request_id, r.pcs_id, "rejected", r.http_status, records.answer_of(reply)
        )

    @staticmethod
    def _prefetch(checked: list[Verified | Rejection],
                  get_many: Callable[[int, list[bytes]], list[bytes | None]],
                  cache: dict[tuple[int, bytes], _Entry | None]) -> None:  # fmt: skip
        """The batch's table entries in one read per partition (RocksDB MultiGet: the
        lookups of a batch share their work, each key's a little cheaper than alone)."""
        wanted: dict[int, dict[bytes, None]] = {}
        for one in checked:
            if isinstance(one, Verified):
                wanted.setdefault(one.msg.partition, {})[one.table_key] = None
        for p, keys in wanted.items():
            listed = list(keys)
            for key, raw in zip(listed, get_many(p, listed), strict=True):
                cache[(p, key)] = _entry(raw)

    def _decide(
        self, v: Verified, table: TableView, cache: dict[tuple[int, bytes], _Entry | None],
        res: BatchResult,
    ) -> None:  # fmt: skip
        p = v.msg.partition
        slot = (p, v.table_key)
        if slot in cache:
            entry = cache[slot]
        else:
            entry = cache[slot] = _entry(table.get(p, v.table_key))
        current = entry.outcome if entry is not None else None
        cand = records.identity(v)
        window = v.policy.for_tenant(v.wal.tenant).dedup_window_ms
        kind = classify(records.winner_identity(current) if current else None, cand, window)

        res.counts["processed"] += 1
        res.stamps_ms.append(cand.stamp_ms)
        if cand.stamp_ms > res.event_time.get(p, -1):
            res.event_time[p] = cand.stamp_ms
        if kind.changes_entry:
            winner = records.outcome_of(v)
            data = records.OUTCOME.encode(winner)
            value = encode_entry(cand.stamp_ms + window, data)
            cache[slot] = _Entry(winner, value)
            res.writes[slot] = value
            headers = None
            if kind is Kind.SUPERSEDE:
                assert current is not None
                headers = self._superseded(current, winner, res)
            res.outputs.append(Out(self.outcomes_topic, p, v.table_key, data, headers))
            self._outcome_row(winner, data, res)
            res.counts[kind.value] += 1
        else:
            assert current is not None and entry is not None
            winner = current
            res.counts[kind.value] += 1
            if kind is Kind.REDELIVERY:
                # SPEC §5: redelivery changes nothing and re-emits the identical outcome.
                data = entry_outcome(entry.value)
                res.outputs.append(Out(self.outcomes_topic, p, v.table_key, data))
                self._outcome_row(winner, data, res)
        self._answer(v, cand, winner, res)

    def _superseded(self, previous: dict[str, Any], winner: dict[str, Any], res: BatchResult
                    ) -> list[tuple[str, bytes]]:  # fmt: skip
        event = records.audit_of(self.region, previous, winner)
        if event["kind"] == "divergence":
            res.counts["divergence"] += 1
        if self.side_effects:
            key = f"{winner['tenant']}/{winner['pcs_id']}".encode()
            res.outputs.append(Out(AUDIT, None, key, records.AUDIT.encode(event)))
        return [(H_SUPERSEDES, previous["winner_request_id"].encode())]

    def _outcome_row(self, o: dict[str, Any], data: bytes, res: BatchResult) -> None:
        if self.side_effects:
            res.outcome_rows[(o["tenant"], o["pcs_id"])] = (
                o["tenant"], o["pcs_id"], o["winner_stamp_ms"], o["winner_stamp_counter"],
                o["winner_origin"], o["winner_request_id"], o["body_sha256"], o, data,
            )  # fmt: skip

    def _answer(self, v: Verified, cand: Identity, winner: dict[str, Any], res: BatchResult
                ) -> None:  # fmt: skip
        dedup_hit = winner["winner_request_id"] != cand.request_id
        conflict = dedup_hit and winner["body_sha256"] != v.wal.body_sha256
        res.counts[winner["status"]] += 1
        if dedup_hit:
            res.counts["dedup_hit"] += 1
        if conflict:
            res.counts["conflict"] += 1
        if not self.side_effects:
            return
        w = v.wal
        reply = records.reply_of(w.request_id, winner, dedup_hit, conflict)
        if v.msg.topic == WAL and w.reply_to is not None:
            res.replies.append(Out(w.reply_to.topic, w.reply_to.partition, w.request_id.encode(),
                                   records.REPLY.encode(reply)))  # fmt: skip
        res.request_rows[(w.tenant, w.request_id)] = (
            w.tenant, w.request_id, v.record.pcs_id, "outcome", winner["http_status"],
            records.answer_of(reply),
        )
