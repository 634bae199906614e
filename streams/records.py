"""The records the dedup stage writes (schemas/*.avsc) and the answers the outcome store keeps.

An outcome record is a pure function of the winning WAL record and the versions it names
(SPEC §5 determinism); replies, rejections and request answers add the per-request facts.
"""

from __future__ import annotations

from typing import Any, Final

from flk_pcs import decide

from schemas.codec import codec
from streams.merge import Identity
from streams.verify import Rejection, Verified

OUTCOME: Final = codec("outcome")
REPLY: Final = codec("reply")
REJECTED: Final = codec("rejected")
AUDIT: Final = codec("audit")

OutcomeDict = dict[str, Any]


def identity(v: Verified) -> Identity:
    w = v.wal
    return Identity(w.stamp.ms, w.stamp.counter, w.origin, w.request_id)


def outcome_of(v: Verified) -> OutcomeDict:
    """SPEC §3 steps 4–7 on an authenticated first write, with the winner's identity."""
    d = decide(v.record, v.policy.params(v.wal.tenant))
    w = v.wal
    return {
        "tenant": w.tenant,
        "pcs_id": v.record.pcs_id,
        "winner_origin": w.origin,
        "winner_stamp_ms": w.stamp.ms,
        "winner_stamp_counter": w.stamp.counter,
        "winner_request_id": w.request_id,
        "body_sha256": w.body_sha256,
        "http_status": 202 if d.escalated else 200,
        "status": "escalated" if d.escalated else "accepted",
        "accepted": d.accepted,
        "escalated": d.escalated,
        "reason": d.reason,
        "recomputed_D_hat": d.recomputed_D_hat,
        "recomputed_budget": d.recomputed_budget,
        "regime": d.regime,
        "key_id": v.key_id,
        "policy_version": w.policy_version,
        "keyset_version": w.keyset_version,
    }


def winner_identity(o: OutcomeDict) -> Identity:
    return Identity(o["winner_stamp_ms"], o["winner_stamp_counter"], o["winner_origin"],
                    o["winner_request_id"])  # fmt: skip


def verdict(o: OutcomeDict) -> tuple[Any, ...]:
    """What a divergence compares (SPEC §5: only a change of verdict counts)."""
    return o["http_status"], o["accepted"], o["escalated"], o["reason"]


def reply_of(request_id: str, winner: OutcomeDict, dedup_hit: bool, conflict: bool
             ) -> dict[str, Any]:  # fmt: skip
    return {
        "request_id": request_id,
        "tenant": winner["tenant"],
        "pcs_id": winner["pcs_id"],
        "http_status": winner["http_status"],
        "status": winner["status"],
        "accepted": winner["accepted"],
        "escalated": winner["escalated"],
        "reason": winner["reason"],
        "detail": None,
        "recomputed_D_hat": winner["recomputed_D_hat"],
        "recomputed_budget": winner["recomputed_budget"],
        "regime": winner["regime"],
        "dedup_hit": dedup_hit,
        "conflict": conflict,
        "policy_version": winner["policy_version"],
    }


def rejection_reply(r: Rejection) -> dict[str, Any]:
    assert r.wal is not None
    return {
        "request_id": r.wal.request_id, "tenant": r.wal.tenant, "pcs_id": r.pcs_id,
        "http_status": r.http_status, "status": "rejected", "accepted": False,
        "escalated": False, "reason": r.reason, "detail": r.detail, "recomputed_D_hat": None,
        "recomputed_budget": None, "regime": None, "dedup_hit": False, "conflict": False,
        "policy_version": r.wal.policy_version,
    }  # fmt: skip


def rejected_of(r: Rejection) -> dict[str, Any]:
    w = r.wal
    return {
        "request_id": w.request_id if w else None,
        "tenant": w.tenant if w else None,
        "origin": w.origin if w else None,
        "pcs_id": r.pcs_id,
        "stamp_ms": w.stamp.ms if w else None,
        "stamp_counter": w.stamp.counter if w else None,
        "http_status": r.http_status,
        "reason": r.reason,
        "detail": r.detail,
        "body_sha256": r.body_sha256,
        "policy_version": w.policy_version if w else None,
        "keyset_version": w.keyset_version if w else None,
        "source_topic": r.msg.topic,
        "source_partition": r.msg.partition,
        "source_offset": r.msg.offset,
    }


def audit_of(region: str, previous: OutcomeDict, winner: OutcomeDict) -> dict[str, Any]:
    kind = "supersede" if verdict(previous) == verdict(winner) else "divergence"
    return {
        "kind": kind,
        "region": region,
        "tenant": winner["tenant"],
        "pcs_id": winner["pcs_id"],
        "previous_request_id": previous["winner_request_id"],
        "previous_origin": previous["winner_origin"],
        "previous_stamp_ms": previous["winner_stamp_ms"],
        "previous_stamp_counter": previous["winner_stamp_counter"],
        "previous_body_sha256": previous["body_sha256"],
        "previous_http_status": previous["http_status"],
        "previous_reason": previous["reason"],
        "winner_request_id": winner["winner_request_id"],
        "winner_origin": winner["winner_origin"],
        "winner_stamp_ms": winner["winner_stamp_ms"],
        "winner_stamp_counter": winner["winner_stamp_counter"],
        "winner_body_sha256": winner["body_sha256"],
        "winner_http_status": winner["http_status"],
        "winner_reason": winner["reason"],
    }


def answer_of(reply: dict[str, Any]) -> dict[str, Any]:
    """What `GET /v1/requests/{id}` serves for a decided request: the SPEC §4 response body
    without `region` (the gateway adds it), or the SPEC §4 error body for a rejection."""
    if reply["status"] == "rejected":
        return {"error": reply["reason"], "detail": reply["detail"],
                "request_id": reply["request_id"]}  # fmt: skip
    body = {
        "request_id": reply["request_id"], "status": reply["status"], "pcs_id": reply["pcs_id"],
        "tenant": reply["tenant"], "accepted": reply["accepted"],
        "escalated": reply["escalated"], "dedup_hit": reply["dedup_hit"],
        "conflict": reply["conflict"], "policy_version": reply["policy_version"],
    }  # fmt: skip
    for name in ("reason", "recomputed_D_hat", "recomputed_budget", "regime"):
        if reply[name] is not None:
            body[name] = reply[name]
    return body
