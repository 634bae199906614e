"""Derives sdk/vectors/pcs-vectors.json, the one language-neutral vector file.

Run from the repository root:  .venv/bin/python sdk/vectors/generate.py
(`--check` exits 1 if the checked-in file differs from what this script derives.)

Sections and where their expected values come from:
- signing: every vector of ../shared/golden/signing-vectors.json copied verbatim, then our own
  edge cases computed here by a plain reference written straight from SPEC §2 (the Decimal
  formula, json.dumps, hashlib, hmac, PyNaCl) — not by flk_pcs, which the tests check against it.
- pcs_id: hashlib over `merkle_root|epoch|shard_id` (SPEC §3).
- parse and verification: sdk/vectors/cases.py describes each case; the verification
  expectations are derived by flk_pcs's engine and cross-checked in
  sdk/python/tests/test_pcs_vectors.py against an independent reference engine and hand-computed
  values.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import sys
from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

from nacl.signing import SigningKey

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT.parent / "shared" / "golden" / "signing-vectors.json"
OUT = Path(__file__).resolve().parent / "pcs-vectors.json"
sys.path.insert(0, str(Path(__file__).resolve().parent))

import cases  # noqa: E402

CONTRACT = "PCS canonical signing v1 (pre-hash HMAC, Ed25519 over digest); verification per SPEC §3"


def ref_round9(x: float) -> float:
    # SPEC §2.2 verbatim; a wide context so that 1e+16 and beyond quantize without overflow.
    wide = Context(prec=400)
    return float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP, context=wide))


def ref_payload(pcs: dict[str, Any]) -> str:
    fields = {k: pcs[k] for k in ("pcs_id", "merkle_root", "epoch", "shard_id")}
    for k in ("D_hat", "coh_star", "r", "budget"):
        fields[k] = ref_round9(float(pcs[k]))
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def ref_pcs_id(merkle_root: str, epoch: int, shard_id: str) -> str:
    return hashlib.sha256(f"{merkle_root}|{epoch}|{shard_id}".encode()).hexdigest()


def ref_sign(name: str, pcs: dict[str, Any], hmac_key: str, seed: bytes) -> dict[str, Any]:
    payload = ref_payload(pcs)
    dig = hashlib.sha256(payload.encode("ascii")).digest()
    sk = SigningKey(seed)
    return {
        "name": name,
        "pcs": pcs,
        "payload": payload,
        "sha256": dig.hex(),
        "hmac_key": hmac_key,
        "hmac_sig": base64.b64encode(
            hmac.new(hmac_key.encode(), dig, hashlib.sha256).digest()
        ).decode(),
        "ed25519_seed_b64": base64.b64encode(seed).decode(),
        "ed25519_pub_b64": base64.b64encode(bytes(sk.verify_key)).decode(),
        "ed25519_sig": base64.b64encode(sk.sign(dig).signature).decode(),
    }


def signing_section() -> list[dict[str, Any]]:
    golden = json.loads(GOLDEN.read_text(encoding="utf-8"))["vectors"]
    out = list(golden)
    for i, (name, fields) in enumerate(cases.SIGNING_EDGE_CASES):
        pcs = dict(fields)
        pcs["pcs_id"] = ref_pcs_id(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"])
        ordered = {k: pcs[k] for k in ("pcs_id", "merkle_root", "epoch", "shard_id",
                                        "D_hat", "coh_star", "r", "budget")}
        seed = hashlib.sha256(f"flk-vector-seed-{i}".encode()).digest()
        out.append(ref_sign(name, ordered, f"edge-key-{i}", seed))
    return out


def pcs_id_section() -> list[dict[str, Any]]:
    return [
        {"merkle_root": m, "epoch": e, "shard_id": s, "pcs_id": ref_pcs_id(m, e, s)}
        for m, e, s in cases.PCS_ID_CASES
    ]


def build() -> dict[str, Any]:
    return {
        "contract": CONTRACT,
        "format": 1,
        "notes": cases.NOTES,
        "signing": signing_section(),
        "pcs_id": pcs_id_section(),
        "parse": cases.parse_section(),
        "verification": cases.verification_section(),
    }


def render() -> str:
    return json.dumps(build(), indent=1, ensure_ascii=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is stale: run .venv/bin/python sdk/vectors/generate.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
