"""The cases behind pcs-vectors.json: data first, derivations in generate.py."""

from __future__ import annotations

from typing import Any

NOTES: dict[str, str] = {
    "signing": (
        "All vectors of shared/golden/signing-vectors.json first, verbatim; then edge cases. "
        "payload = canonical JSON of the 8 signed fields (SPEC §2); sha256 = hex of SHA-256(payload); "
        "hmac_sig = base64(HMAC-SHA256(utf8(hmac_key), digest)); ed25519_sig = base64(Ed25519(seed, digest))."
    ),
    "pcs_id": "pcs_id = hex(SHA-256(utf8(merkle_root + '|' + decimal(epoch) + '|' + shard_id))).",
    "parse": (
        "body (text, UTF-8 encoded before parsing) or body_b64 (raw bytes). expect is 'ok' or "
        "{'error': stable code}. Each body breaks at most one rule, so the code is unambiguous."
    ),
    "verification": (
        "keys is a key-set document: {'tenants': {name: {'keys': [{'key_id', 'alg': 'hmac'|'ed25519', "
        "'secret' (hmac, UTF-8 text) | 'public_key' (ed25519, base64 of 32 bytes), 'valid_from_ms', "
        "'valid_until_ms' (exclusive; null = open)}]}}}. A key is usable when valid_from_ms <= "
        "received_at_ms < valid_until_ms. policy is null (SPEC §3 defaults) or overrides of "
        "tol_D, tol_coh, tol_budget, alpha, beta, gamma, base, D0, sticky_coh_min, sticky_D_max, "
        "non_sticky_D_min. body is the PCS object; body_text is the exact bytes submitted "
        "(body_sha256 is their SHA-256). expect: http_status, status ('accepted' | 'escalated' | "
        "'rejected' for 400/401), accepted, escalated, reason (null if none), recomputed_D_hat "
        "(null when the scales do not allow it), recomputed_budget, regime (both null for 400/401)."
    ),
}

_M = "ab" * 32

# (name, fields without pcs_id); pcs_id is derived from merkle_root, epoch and shard_id.
SIGNING_EDGE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("edge-integral-floats", {"merkle_root": _M, "epoch": 10, "shard_id": "s-int",
                              "D_hat": 3.0, "coh_star": 1.0, "r": 123456789.0, "budget": 0.0}),
    ("edge-exponent-small", {"merkle_root": _M, "epoch": 11, "shard_id": "s-exp",
                             "D_hat": 5e-05, "coh_star": 1e-07, "r": 1.5e-05, "budget": 1e-09}),
    ("edge-exponent-large", {"merkle_root": _M, "epoch": 12, "shard_id": "s-exp",
                             "D_hat": 1e16, "coh_star": 1.2345e16, "r": 9999999999999998.0,
                             "budget": 1e22}),
    ("edge-exponent-rounds-down", {"merkle_root": _M, "epoch": 13, "shard_id": "s-exp",
                                   "D_hat": 1.2345e-08, "coh_star": 4.9e-10, "r": 5.1e-10,
                                   "budget": 9.9999999995e-05}),
    ("edge-negative-zero", {"merkle_root": _M, "epoch": 14, "shard_id": "s-neg",
                            "D_hat": -0.0, "coh_star": -1e-12, "r": -4e-10, "budget": -0.5}),
    ("edge-half-away-from-zero", {"merkle_root": _M, "epoch": 15, "shard_id": "s-half",
                                  "D_hat": -1.2345678905, "coh_star": 0.1234567885,
                                  "r": 2.5e-09, "budget": -2.5e-09}),
    ("edge-half-on-decimal-not-binary", {"merkle_root": _M, "epoch": 16, "shard_id": "s-half",
                                         "D_hat": 1.0000000005, "coh_star": 0.9999999995,
                                         "r": 123456.1234567895, "budget": 1.0000000004999}),
    ("edge-many-digits", {"merkle_root": _M, "epoch": 17, "shard_id": "s-noise",
                          "D_hat": 0.1 + 0.2, "coh_star": 2.0 / 3.0, "r": 1.0 / 3.0,
                          "budget": 0.7000000000000001}),
    ("edge-control-chars", {"merkle_root": _M, "epoch": 18,
                            "shard_id": "\x00\x01\x1f\x08\x0c\r\n\t\"\\/ \x7f~",
                            "D_hat": 1.5, "coh_star": 0.7, "r": 0.25, "budget": 0.5}),
    ("edge-non-bmp", {"merkle_root": _M, "epoch": 19,
                      "shard_id": "\U0001d11e-\U0001f600-\U0010ffff-\ufffd-\u2028-\u00e9-e\u0301",
                      "D_hat": 1.5, "coh_star": 0.7, "r": 0.25, "budget": 0.5}),
    ("edge-html-literal", {"merkle_root": _M, "epoch": 20, "shard_id": "<script>&amp;'x'</script>",
                           "D_hat": 1.5, "coh_star": 0.7, "r": 0.25, "budget": 0.5}),
    ("edge-epoch-2p53-minus-2", {"merkle_root": _M, "epoch": 2**53 - 2, "shard_id": "s-big",
                                 "D_hat": 1.5, "coh_star": 0.7, "r": 0.25, "budget": 0.5}),
    ("edge-epoch-zero", {"merkle_root": _M, "epoch": 0, "shard_id": "s-zero",
                         "D_hat": 1.5, "coh_star": 0.7, "r": 0.25, "budget": 0.5}),
    ("edge-integer-tokens", {"merkle_root": _M, "epoch": 21, "shard_id": "s-int",
                             "D_hat": 3, "coh_star": 0, "r": 1, "budget": 999999999999999}),
    ("edge-negative-integer-token", {"merkle_root": _M, "epoch": 22, "shard_id": "s-int",
                                     "D_hat": -2, "coh_star": -0.0, "r": 0, "budget": -1}),
]

PCS_ID_CASES: list[tuple[str, int, str]] = [
    ("e966b52c992aefad3c3d0196db02554f30d10d55e8a6e5e3038f88e79e414112", 1, "test-shard-001"),
    ("aa" * 32, 0, "s"),
    ("ff" * 32, 2**53 - 1, "shard-big"),
    ("00" * 32, 42, "r\u00e9gion-\u6771\u4eac-\U0001f600"),
    ("not-hex|with|pipes", 7, "a|b"),
    ("AB" * 32, 3, " "),
]


def parse_section() -> list[dict[str, Any]]:
    return []


def verification_section() -> list[dict[str, Any]]:
    return []
