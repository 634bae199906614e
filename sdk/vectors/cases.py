"""The cases behind pcs-vectors.json: data first, derivations in generate.py."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

NOTES: dict[str, str] = {
    "signing": (
        "All vectors of shared/golden/signing-vectors.json first, verbatim; then edge cases. "
        "payload = canonical JSON of the 8 signed fields (SPEC §2); "
        "sha256 = hex of SHA-256(payload); "
        "hmac_sig = base64(HMAC-SHA256(utf8(hmac_key), digest)); "
        "ed25519_sig = base64(Ed25519(seed, digest))."
    ),
    "pcs_id": "pcs_id = hex(SHA-256(utf8(merkle_root + '|' + decimal(epoch) + '|' + shard_id))).",
    "parse": (
        "body (text, UTF-8 encoded before parsing) or body_b64 (raw bytes). expect is 'ok' or "
        "{'error': stable code}. Each body breaks at most one rule, so the code is unambiguous. "
        "The 1e15 bound applies to every number except epoch and seed (own 2^53 bounds). "
        "A sig that is absent, null or empty parses (it is a 401 missing_signature)."
    ),
    "verification": (
        "keys is a key-set document: {'tenants': {name: {'keys': [{'key_id', "
        "'alg': 'hmac'|'ed25519', 'secret' (hmac, UTF-8 text) | 'public_key' (ed25519, base64 "
        "of 32 bytes), 'valid_from_ms', 'valid_until_ms' (exclusive; null or absent = open)}]}}}. "
        "A key is usable when valid_from_ms <= received_at_ms < valid_until_ms; a tenant with no "
        "usable key gives no_valid_key, one whose usable keys all fail gives bad_signature. "
        "policy is null (SPEC §3 defaults) or overrides of tol_D, tol_coh, tol_budget, alpha, "
        "beta, gamma, base, D0, sticky_coh_min, sticky_D_max, non_sticky_D_min. body is the PCS "
        "object; body_text is the exact bytes submitted (body_sha256 is their SHA-256). "
        "expect: http_status, status ('accepted' | 'escalated' | 'rejected' for 400/401), "
        "accepted, escalated, reason (null if none; for 400 the parse error code), "
        "recomputed_D_hat (null unless >= 2 distinct scales, all in 1..1024, each with an N_j "
        "entry > 0), recomputed_budget and regime (computed from the claimed values whenever "
        "the record is authenticated; null for 400/401). Step-4 order: schema_mismatch, "
        "pcs_id_mismatch, too_few_scales, scale_out_of_range, missing_N_j, nonpositive_N_j, "
        "bad_merkle_root, r_out_of_range, budget_out_of_range, D_hat_out_of_range, "
        "D_hat_mismatch, coh_star_out_of_range; then regime_mismatch, budget_mismatch."
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


# --- parse and verification -------------------------------------------------------------

RECEIVED_AT_MS = 1_750_000_000_000
ROTATION_MS = 1_700_000_000_000
ED_SEED = bytes(range(32, 64))
ED_OTHER_SEED = bytes(range(64, 96))


def _ed_pub(seed: bytes) -> str:
    from nacl.signing import SigningKey

    return base64.b64encode(bytes(SigningKey(seed).verify_key)).decode()


def keyset_doc() -> dict[str, Any]:
    return {
        "keyset_format": 1,
        "tenants": {
            "acme": {"keys": [{"key_id": "acme-1", "alg": "hmac", "secret": "acme-secret",
                               "valid_from_ms": 0, "valid_until_ms": None}]},
            "rot": {"keys": [
                {"key_id": "rot-old", "alg": "hmac", "secret": "old-secret",
                 "valid_from_ms": 1_000, "valid_until_ms": ROTATION_MS},
                {"key_id": "rot-new", "alg": "hmac", "secret": "new-secret",
                 "valid_from_ms": ROTATION_MS, "valid_until_ms": None},
            ]},
            "edt": {"keys": [{"key_id": "edt-1", "alg": "ed25519",
                              "public_key": _ed_pub(ED_SEED), "valid_from_ms": 0}]},
        },
    }


def _sign(pcs: dict[str, Any], *, secret: str | None = None, seed: bytes | None = None
          ) -> dict[str, Any]:
    from flk_pcs import Ed25519Signer, HmacSigner, sign_pcs

    if seed is not None:
        return sign_pcs(pcs, Ed25519Signer(seed))
    return sign_pcs(pcs, HmacSigner(secret or "acme-secret"))


def _pcs(**over: Any) -> dict[str, Any]:
    """A well-formed record: scales 2..16 with N_j = scale², so D̂ = 2.0 exactly; claimed
    values consistent with the default policy (regime mixed, budget 0.35) unless overridden.
    pcs_id follows merkle_root/epoch/shard_id unless given."""
    from flk_pcs import compute_pcs_id

    pcs: dict[str, Any] = {
        "schema": "fractal-lba-kakeya",
        "version": "0.1",
        "shard_id": "shard-a",
        "epoch": 7,
        "attempt": 1,
        "sent_at": "2025-06-15T12:00:00.250Z",
        "seed": 42,
        "scales": [2, 4, 8, 16],
        "N_j": {"2": 4, "4": 16, "8": 64, "16": 256},
        "coh_star": 0.5,
        "D_hat": 2.0,
        "r": 0.5,
        "budget": 0.35,
        "v_star": [0.25, -0.5, 1.0],
        "regime": "mixed",
        "merkle_root": "5f" * 32,
    }
    pcs.update(over)
    if "pcs_id" not in over:
        pcs["pcs_id"] = compute_pcs_id(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"])
    return pcs


def _text(obj: Any) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def _nest(depth: int) -> Any:
    # `depth` levels of arrays, to be placed as a member value of the top-level object
    # (which is level 1): total nesting = depth + 1.
    v: Any = 0
    for _ in range(depth):
        v = [v]
    return v


def parse_section() -> list[dict[str, Any]]:
    good = _sign(_pcs())
    g = _text(good)

    def with_(**over: Any) -> str:
        d = dict(good)
        d.update(over)
        return _text(d)

    def without(field: str) -> str:
        d = dict(good)
        del d[field]
        return _text(d)

    def raw(field: str, token: str) -> str:
        # Replace one top-level member's value by a raw token (for lexical forms json.dumps
        # cannot produce, such as 1.0 for an integer field or NaN).
        d = dict(good)
        d[field] = "__RAW__"
        return _text(d).replace('"__RAW__"', token)

    cases_: list[tuple[str, str | bytes, str | dict[str, str]]] = [
        ("ok-signed", g, "ok"),
        ("ok-integer-number-tokens", raw("D_hat", "2"), "ok"),
        ("ok-extra-fields-ignored", with_(extra={"note": "x", "n": [1, 2.5]}), "ok"),
        ("ok-ft-complete", with_(ft={"outbox_seq": 3, "degraded": True,
                                     "fallbacks": ["eu-west"], "clock_skew_ms": -12}), "ok"),
        ("ok-ft-null", with_(ft=None), "ok"),
        ("ok-no-sig-is-a-401-not-a-400", without("sig"), "ok"),
        ("ok-empty-sig-is-a-401-not-a-400", with_(sig=""), "ok"),
        ("ok-epoch-2p53-minus-1", with_(epoch=2**53 - 1), "ok"),
        ("ok-seed-negative-2p53-plus-1", with_(seed=-(2**53) + 1), "ok"),
        ("ok-depth-32", with_(extra=_nest(31)), "ok"),
        ("ok-sent_at-leap-day-offset", with_(sent_at="2024-02-29T23:59:60.5+05:30"), "ok"),
        ("ok-sent_at-lowercase", with_(sent_at="2025-01-01t00:00:00z"), "ok"),
        ("ok-surrogate-pair-escape", g.replace('"shard-a"', '"shard-\\ud83d\\ude00"'), "ok"),
        ("ok-whitespace", " \n" + g.replace(",", " ,\t") + "\r\n", "ok"),
        ("ok-number-just-below-1e15", with_(extra=999999999999999.9), "ok"),
        ("malformed-not-json", "not json", {"error": "malformed_json"}),
        ("malformed-empty", "", {"error": "malformed_json"}),
        ("malformed-trailing-comma", g[:-1] + ",}", {"error": "malformed_json"}),
        ("malformed-truncated", g[: len(g) // 2], {"error": "malformed_json"}),
        ("malformed-trailing-garbage", g + " x", {"error": "malformed_json"}),
        ("malformed-bom", "\ufeff" + g, {"error": "malformed_json"}),
        ("malformed-single-quotes", g.replace('"schema"', "'schema'"), {"error": "malformed_json"}),
        ("invalid-utf8", (g[:-1] + ',"x":"').encode() + b"\xff\xfe" + b'"}',
         {"error": "invalid_unicode"}),
        ("invalid-utf8-encoded-surrogate", (g[:-1] + ',"x":"').encode() + b"\xed\xa0\x80" + b'"}',
         {"error": "invalid_unicode"}),
        ("lone-high-surrogate", g.replace('"shard-a"', '"shard-\\ud800"'),
         {"error": "invalid_unicode"}),
        ("lone-low-surrogate-in-key", g[:-1] + ',"\\udc00":1}', {"error": "invalid_unicode"}),
        ("nan", raw("coh_star", "NaN"), {"error": "non_finite_number"}),
        ("infinity", raw("r", "Infinity"), {"error": "non_finite_number"}),
        ("minus-infinity", raw("extra", "-Infinity"), {"error": "non_finite_number"}),
        ("overflowing-literal", raw("D_hat", "1e400"), {"error": "number_out_of_range"}),
        ("number-1e15", raw("budget", "1e15"), {"error": "number_out_of_range"}),
        ("number-minus-1e15", raw("r", "-1000000000000000"), {"error": "number_out_of_range"}),
        ("number-out-of-range-in-N_j", with_(N_j={"2": 10**15}), {"error": "number_out_of_range"}),
        ("number-out-of-range-in-v_star", with_(v_star=[0.5, 2e15]),
         {"error": "number_out_of_range"}),
        ("number-out-of-range-in-extra", with_(extra={"deep": [[1e16]]}),
         {"error": "number_out_of_range"}),
        ("number-out-of-range-in-ft", with_(ft={"outbox_seq": 10**16}),
         {"error": "number_out_of_range"}),
        ("huge-integer-literal", raw("extra", "9" * 5000), {"error": "number_out_of_range"}),
        ("duplicate-key", g[:-1] + ',"epoch":7}', {"error": "duplicate_key"}),
        ("duplicate-key-nested", g.replace('"N_j":{', '"N_j":{"2":4,'),
         {"error": "duplicate_key"}),
        ("too-deep-33", with_(extra=_nest(32)), {"error": "too_deep"}),
        ("too-deep-10000", "[" * 10000 + "]" * 10000, {"error": "too_deep"}),
        ("not-an-object-array", "[]", {"error": "not_an_object"}),
        ("not-an-object-string", '"pcs"', {"error": "not_an_object"}),
        ("not-an-object-null", "null", {"error": "not_an_object"}),
        ("not-an-object-number", "1", {"error": "not_an_object"}),
    ]
    required = ["pcs_id", "schema", "version", "shard_id", "epoch", "attempt", "sent_at", "seed",
                "scales", "N_j", "coh_star", "D_hat", "r", "budget", "v_star", "regime",
                "merkle_root"]
    cases_ += [(f"missing-{f}", without(f), {"error": "missing_field"}) for f in required]
    wrong_type = [
        ("epoch-float-token", raw("epoch", "7.0")),
        ("epoch-string", with_(epoch="7")),
        ("epoch-bool", with_(epoch=True)),
        ("attempt-float", raw("attempt", "1.5")),
        ("seed-float-token", raw("seed", "42.0")),
        ("scales-string-item", with_(scales=["2", 4])),
        ("scales-float-item", raw("scales", "[2.0,4]")),
        ("scales-object", with_(scales={"2": 2})),
        ("N_j-float-value", raw("N_j", '{"2":4.0}')),
        ("N_j-array", with_(N_j=[4, 16])),
        ("D_hat-string", with_(D_hat="2.0")),
        ("D_hat-bool", with_(D_hat=True)),
        ("coh_star-null", with_(coh_star=None)),
        ("v_star-null-item", with_(v_star=[0.5, None])),
        ("v_star-number", with_(v_star=0.5)),
        ("pcs_id-number", with_(pcs_id=1)),
        ("schema-null", with_(schema=None)),
        ("regime-number", with_(regime=1)),
        ("sig-number", with_(sig=123)),
        ("ft-string", with_(ft="x")),
        ("ft-degraded-string", with_(ft={"degraded": "yes"})),
        ("ft-fallbacks-number-item", with_(ft={"fallbacks": ["a", 1]})),
        ("ft-outbox_seq-float", with_(ft={"outbox_seq": 1.5})),
    ]
    cases_ += [(f"wrong-type-{n}", b, {"error": "wrong_type"}) for n, b in wrong_type]
    cases_ += [
        ("pcs_id-uppercase", with_(pcs_id=good["pcs_id"].upper()), {"error": "invalid_pcs_id"}),
        ("pcs_id-63-chars", with_(pcs_id=good["pcs_id"][:63]), {"error": "invalid_pcs_id"}),
        ("pcs_id-non-hex", with_(pcs_id="g" * 64), {"error": "invalid_pcs_id"}),
        ("shard_id-empty", with_(shard_id=""), {"error": "empty_string"}),
        ("merkle_root-empty", with_(merkle_root=""), {"error": "empty_string"}),
        ("version-0.2", with_(version="0.2"), {"error": "unsupported_version"}),
        ("epoch-negative", with_(epoch=-1), {"error": "epoch_out_of_range"}),
        ("epoch-2p53", with_(epoch=2**53), {"error": "epoch_out_of_range"}),
        ("attempt-zero", with_(attempt=0), {"error": "attempt_out_of_range"}),
        ("seed-2p53", with_(seed=2**53), {"error": "seed_out_of_range"}),
        ("sent_at-month-13", with_(sent_at="2025-13-01T00:00:00Z"), {"error": "invalid_sent_at"}),
        ("sent_at-feb-29-non-leap", with_(sent_at="2025-02-29T00:00:00Z"),
         {"error": "invalid_sent_at"}),
        ("sent_at-april-31", with_(sent_at="2025-04-31T00:00:00Z"), {"error": "invalid_sent_at"}),
        ("sent_at-space", with_(sent_at="2025-01-01 00:00:00Z"), {"error": "invalid_sent_at"}),
        ("sent_at-no-offset", with_(sent_at="2025-01-01T00:00:00"), {"error": "invalid_sent_at"}),
        ("sent_at-hour-24", with_(sent_at="2025-01-01T24:00:00Z"), {"error": "invalid_sent_at"}),
        ("sent_at-words", with_(sent_at="yesterday"), {"error": "invalid_sent_at"}),
        ("scales-empty", with_(scales=[]), {"error": "empty_scales"}),
        ("regime-uppercase", with_(regime="STICKY"), {"error": "invalid_regime"}),
        ("sig-not-base64", with_(sig="not base64!"), {"error": "invalid_signature_encoding"}),
        ("sig-unpadded", with_(sig=good["sig"].rstrip("=")),
         {"error": "invalid_signature_encoding"}),
        ("sig-url-safe-alphabet", with_(sig="-_" + good["sig"][2:]),
         {"error": "invalid_signature_encoding"}),
        ("sig-non-canonical-bits", with_(sig="QR=="), {"error": "invalid_signature_encoding"}),
    ]
    out: list[dict[str, Any]] = []
    for name, body, expect in cases_:
        entry: dict[str, Any] = {"name": name}
        if isinstance(body, bytes):
            entry["body_b64"] = base64.b64encode(body).decode()
        else:
            entry["body"] = body
        entry["expect"] = expect
        out.append(entry)
    return out


def _verification_cases() -> list[dict[str, Any]]:
    """(name, tenant, body, policy, received_at_ms) before expectations are derived."""
    acme = "acme"
    ed_sign = {"seed": ED_SEED}

    def case(name: str, body: dict[str, Any] | None = None, *, tenant: str = acme,
             policy: dict[str, float] | None = None, received_at_ms: int = RECEIVED_AT_MS,
             sign: dict[str, Any] | None = None, unsigned: dict[str, Any] | None = None,
             drop: tuple[str, ...] = ()) -> dict[str, Any]:
        pcs = _pcs() if body is None else body
        signed = _sign(pcs, **(sign or {}))
        signed.update(unsigned or {})  # changes after signing
        for f in drop:
            signed.pop(f, None)
        return {"name": name, "tenant": tenant, "received_at_ms": received_at_ms,
                "policy": policy, "body": signed}

    tampered = _sign(_pcs())
    tampered_d = dict(tampered, D_hat=2.05)
    return [
        case("accepted-basic"),
        case("accepted-upper-median", _pcs(scales=[1, 2, 4, 8],
                                           N_j={"1": 1, "2": 4, "4": 8, "8": 32},
                                           D_hat=1.666666667, r=0.3, budget=0.41)),
        case("accepted-integer-number-tokens", _pcs(D_hat=2, coh_star=1, r=0, budget=0.6)),
        case("accepted-sticky", _pcs(scales=[2, 4, 8], N_j={"2": 2, "4": 4, "8": 8}, D_hat=1.0,
                                     coh_star=0.8, r=0.2, budget=0.5, regime="sticky")),
        case("accepted-non-sticky", _pcs(scales=[2, 4, 8], N_j={"2": 8, "4": 64, "8": 512},
                                         D_hat=3.0, coh_star=0.3, r=0.5, budget=0.71,
                                         regime="non_sticky")),
        case("accepted-duplicate-scale-skipped", _pcs(scales=[2, 2, 4, 8],
                                                      N_j={"2": 4, "4": 16, "8": 64})),
        case("accepted-non-power-of-two-scales",
             _pcs(scales=[3, 5, 7, 11], N_j={"3": 10, "5": 27, "7": 52, "11": 130},
                  D_hat=1.9, budget=0.35)),
        case("accepted-unordered-scales", _pcs(scales=[8, 2, 16, 4])),
        case("accepted-D_hat-within-tolerance", _pcs(D_hat=2.1, budget=0.35)),
        # 2.15 - 2.0 is 0.1499999999999999 in doubles: no epsilon is added to the comparison.
        case("accepted-D_hat-at-tolerance-boundary", _pcs(D_hat=2.15, budget=0.35)),
        case("accepted-budget-clamped-to-1", _pcs(scales=[1, 2], N_j={"1": 1, "2": 11},
                                                  D_hat=3.5, coh_star=1.0, r=0.0, budget=1.0,
                                                  regime="non_sticky")),
        case("accepted-budget-within-tolerance", _pcs(budget=0.359)),
        case("accepted-coh_star-within-tolerance", _pcs(scales=[2, 4, 8],
                                                        N_j={"2": 2, "4": 4, "8": 8},
                                                        D_hat=1.0, coh_star=1.04, r=0.2,
                                                        budget=0.548, regime="sticky")),
        case("accepted-ed25519", tenant="edt", sign=ed_sign),
        case("accepted-rotation-old-key-in-window", tenant="rot", sign={"secret": "old-secret"},
             received_at_ms=ROTATION_MS - 1),
        case("accepted-rotation-new-key", tenant="rot", sign={"secret": "new-secret"},
             received_at_ms=ROTATION_MS),
        case("accepted-policy-override-tol_D", _pcs(D_hat=2.5, budget=0.5), policy={"tol_D": 0.6}),
        case("accepted-policy-override-weights", _pcs(budget=0.45),
             policy={"base": 0.2, "alpha": 0.3, "beta": 0.5, "gamma": 0.2}),
        case("accepted-extra-fields-ignored", unsigned={"extra": {"any": [1, "x"]}}),
        case("escalated-schema_mismatch", _pcs(schema="something-else")),
        case("escalated-pcs_id_mismatch", _pcs(pcs_id="0" * 64)),
        case("escalated-too_few_scales", _pcs(scales=[4, 4], N_j={"4": 16})),
        case("escalated-too_few_scales-single", _pcs(scales=[4], N_j={"4": 16})),
        case("escalated-scale_out_of_range-high", _pcs(scales=[2, 2048],
                                                       N_j={"2": 4, "2048": 4194304})),
        case("escalated-scale_out_of_range-zero", _pcs(scales=[0, 2], N_j={"0": 1, "2": 4})),
        case("escalated-missing_N_j", _pcs(N_j={"2": 4, "4": 16, "8": 64})),
        case("escalated-nonpositive_N_j", _pcs(N_j={"2": 4, "4": 16, "8": 0, "16": 256})),
        case("escalated-bad_merkle_root-uppercase", _pcs(merkle_root="5F" * 32)),
        case("escalated-bad_merkle_root-short", _pcs(merkle_root="5f" * 31)),
        case("escalated-r_out_of_range", _pcs(r=1.2, budget=0.2)),
        case("escalated-budget_out_of_range", _pcs(budget=-0.1)),
        case("escalated-D_hat_out_of_range", _pcs(D_hat=3.6, budget=0.35)),
        case("escalated-D_hat_mismatch", _pcs(D_hat=2.5, budget=0.5)),
        case("escalated-D_hat_mismatch-just-over", _pcs(D_hat=2.16, budget=0.35)),
        case("escalated-coh_star_out_of_range-high", _pcs(coh_star=1.06, budget=0.462)),
        case("escalated-coh_star_out_of_range-negative", _pcs(coh_star=-0.01, budget=0.248)),
        case("escalated-regime_mismatch", _pcs(regime="sticky")),
        case("escalated-budget_mismatch", _pcs(budget=0.5)),
        case("escalated-regime-before-budget", _pcs(regime="non_sticky", budget=0.9)),
        case("escalated-unsigned-N_j-tampered", unsigned={"N_j": {"2": 4, "4": 16, "8": 64,
                                                                  "16": 4096}}),
        case("escalated-policy-override-tol_D-tightened", _pcs(D_hat=2.1), policy={"tol_D": 0.05}),
        case("rejected-unknown_tenant", tenant="nobody"),
        case("rejected-missing_signature", drop=("sig",)),
        case("rejected-empty-signature", unsigned={"sig": ""}),
        case("rejected-bad_signature-wrong-key", sign={"secret": "not-the-secret"}),
        case("rejected-bad_signature-signed-field-tampered", unsigned={"D_hat": 2.05}),
        case("rejected-bad_signature-ed25519-other-key", tenant="edt",
             sign={"seed": ED_OTHER_SEED}),
        case("rejected-bad_signature-hmac-sig-for-ed25519-tenant", tenant="edt"),
        case("rejected-no_valid_key-before-first-key", tenant="rot",
             sign={"secret": "old-secret"}, received_at_ms=999),
        case("rejected-bad_signature-old-key-after-rotation", tenant="rot",
             sign={"secret": "old-secret"}, received_at_ms=ROTATION_MS),
        case("rejected-bad_signature-beats-semantics", _pcs(schema="x"),
             sign={"secret": "wrong"}),
        case("rejected-malformed-missing-field", drop=("shard_id",)),
        case("rejected-malformed-invalid_regime", unsigned={"regime": "weird"}),
        case("rejected-malformed-beats-unknown-tenant", tenant="nobody", drop=("merkle_root",)),
        {"name": "rejected-bad_signature-tampered-copy", "tenant": acme,
         "received_at_ms": RECEIVED_AT_MS, "policy": None, "body": tampered_d},
    ]


def verification_section() -> list[dict[str, Any]]:
    from flk_pcs import encode_body, evaluate, keyset_from_mapping, policy_from_mapping

    ks_doc = keyset_doc()
    keyset = keyset_from_mapping(ks_doc)
    out: list[dict[str, Any]] = []
    for c in _verification_cases():
        body_bytes = encode_body(c["body"])
        policy = policy_from_mapping({"verification": c["policy"] or {}})
        o = evaluate(body_bytes, tenant=c["tenant"], received_at_ms=c["received_at_ms"],
                     policy=policy, keyset=keyset)
        out.append({
            "name": c["name"],
            "tenant": c["tenant"],
            "keys": ks_doc,
            "received_at_ms": c["received_at_ms"],
            "policy": c["policy"],
            "body": c["body"],
            "body_text": body_bytes.decode("utf-8"),
            "body_sha256": hashlib.sha256(body_bytes).hexdigest(),
            "expect": {
                "http_status": o.http_status,
                "status": o.status,
                "accepted": o.accepted,
                "escalated": o.escalated,
                "reason": o.reason,
                "recomputed_D_hat": o.recomputed_D_hat,
                "recomputed_budget": o.recomputed_budget,
                "regime": o.regime,
            },
        })
    return out
