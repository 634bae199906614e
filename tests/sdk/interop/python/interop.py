"""Drives the Python SDK (flk_pcs and flk_pcs.client, public API only) against a running gateway.

The Python twin of tests/sdk/interop/go and tests/sdk/interop/ts: `run(config)` takes the same
config and returns the same results; tests/sdk/test_interop.py calls it in-process, and
`python interop.py < config.json` prints the results as one JSON object. Steps: build and sign
a fresh record, submit it, submit the same body again (a new request id), submit another fresh
record with Prefer: respond-async and poll it (GET /v1/requests/{id}), submit a record signed
with a wrong key and ask what became of it (GET /v1/requests/{id}: a rejection), read the
stored outcome (GET /v1/pcs/{pcs_id}). A failing step records its error and the run goes on.
"""

from __future__ import annotations

import base64
import json
import sys
import time
from typing import Any

from flk_pcs import Ed25519Signer, HmacSigner, build_pcs, sign_pcs
from flk_pcs.client import Accepted, Client, Escalated, Pending
from flk_pcs.errors import ApiError, FlkPcsError, NotFound, RequestRejected, Unauthorized

STEPS = ("submit", "duplicate", "async", "wrong_key", "outcome")


def _signer(alg: str, secret: str | None, seed: str | None) -> HmacSigner | Ed25519Signer:
    if alg == "hmac":
        assert secret is not None
        return HmacSigner(secret)
    if alg == "ed25519":
        assert seed is not None
        return Ed25519Signer(base64.b64decode(seed, validate=True))
    raise ValueError(f"unknown alg {alg!r}")


def _record(cfg: dict[str, Any], shard: str, signer: HmacSigner | Ed25519Signer
            ) -> dict[str, Any]:
    pcs = build_pcs(merkle_root=cfg["merkle_root"], epoch=cfg["epoch"], shard_id=shard,
                    scales=[2, 4, 8, 16], N_j={"2": 4, "4": 16, "8": 64, "16": 256},
                    coh_star=0.5, r=0.5)
    return dict(sign_pcs(pcs, signer))


def _outcome(first: Any, final: Accepted | Escalated) -> dict[str, Any]:
    body = final.body
    out: dict[str, Any] = {
        "ok": True, "status": "accepted" if isinstance(final, Accepted) else "escalated",
        "body_status": body.get("status"), "accepted": final.accepted,
        "escalated": final.escalated, "dedup_hit": final.dedup_hit, "conflict": final.conflict,
        "request_id": final.request_id, "pcs_id": final.pcs_id, "tenant": final.tenant,
        "region": final.region, "reason": final.reason, "regime": final.regime,
        "policy_version": final.policy_version,
    }
    if first is not None:
        out["first_status"] = "pending" if isinstance(first, Pending) else out["status"]
        out["first_request_id"] = first.request_id
        if isinstance(first, Pending):
            out["first_endpoint"] = first.endpoint
    return out


def _error(exc: BaseException) -> dict[str, Any]:
    out: dict[str, Any] = {"ok": False, "error": str(exc), "error_type": type(exc).__name__}
    if isinstance(exc, ApiError):
        out.update(http_status=exc.status, code=exc.code, detail=exc.detail,
                   request_id=exc.request_id)
    elif isinstance(exc, FlkPcsError):
        out["code"] = getattr(exc, "code", None)
    return out


def _submit(client: Client, rec: dict[str, Any], timeout: float, respond_async: bool = False
            ) -> dict[str, Any]:
    try:
        first = client.submit(rec, respond_async=respond_async)  # a fresh X-Request-Id per call
    except FlkPcsError as exc:
        return _error(exc)
    try:
        final = client.wait(first, timeout=timeout) if isinstance(first, Pending) else first
    except FlkPcsError as exc:
        return {**_error(exc), "first_status": "pending", "first_request_id": first.request_id}
    return _outcome(first, final)


def _rejected(client: Client, request_id: str, timeout: float) -> dict[str, Any]:
    """What became of a rejected request (GET /v1/requests/{id}): a typed rejection."""
    deadline = time.monotonic() + timeout
    tries = 0
    while True:
        tries += 1
        try:
            result = client.request_status(request_id)
        except NotFound:
            if time.monotonic() < deadline:
                time.sleep(0.25)
                continue
            raise
        except FlkPcsError as exc:
            return {**_error(exc), "typed_rejected": isinstance(exc, RequestRejected),
                    "typed_unauthorized": isinstance(exc, Unauthorized),
                    "polled_request_id": request_id, "tries": tries}
        return {"ok": True, "answer": repr(result), "tries": tries}


def run(cfg: dict[str, Any]) -> dict[str, Any]:
    timeout = float(cfg.get("wait_timeout_s", 120))
    signer = _signer(cfg["alg"], cfg.get("secret"), cfg.get("seed"))
    rec = _record(cfg, cfg["shard_id"], signer)
    out: dict[str, Any] = {"sdk": "python", "pcs_id": rec["pcs_id"]}
    with Client(cfg["endpoints"], tenant=cfg["tenant"], read_token=cfg["read_token"],
                timeout=15.0) as client:
        for step in cfg.get("steps") or STEPS:
            if step in ("submit", "duplicate"):
                out[step] = _submit(client, rec, timeout)
            elif step == "async":  # another fresh record, 202 pending at once, then polled
                rec2 = _record(cfg, cfg["shard_id"] + "-async", signer)
                out[step] = {**_submit(client, rec2, timeout, respond_async=True),
                             "submitted_pcs_id": rec2["pcs_id"]}
            elif step == "wrong_key":
                wrong = _signer(cfg["alg"], cfg.get("wrong_secret"), cfg.get("wrong_seed"))
                bad = _record(cfg, cfg["shard_id"] + "-wrong-key", wrong)
                try:
                    result = client.submit(bad)
                except FlkPcsError as exc:
                    out[step] = {**_error(exc), "typed_unauthorized": isinstance(exc, Unauthorized)}
                    if isinstance(exc, ApiError) and exc.request_id:
                        out["rejected_request"] = _rejected(client, exc.request_id, timeout)
                else:
                    out[step] = {"ok": False, "error": "no error", "answer": repr(result)}
            elif step == "outcome":  # the outcome store may lag the answer
                deadline = time.monotonic() + timeout
                tries = 0
                while True:
                    tries += 1
                    try:
                        out[step] = _outcome(None, client.outcome(rec["pcs_id"]))
                        break
                    except NotFound as exc:
                        if time.monotonic() >= deadline:
                            out[step] = _error(exc)
                            break
                        time.sleep(0.25)
                    except FlkPcsError as exc:
                        out[step] = _error(exc)
                        break
                out[step]["tries"] = tries
            else:
                raise ValueError(f"unknown step {step!r}")
    return out


if __name__ == "__main__":
    print(json.dumps(run(json.load(sys.stdin))))
