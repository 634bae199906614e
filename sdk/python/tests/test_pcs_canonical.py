from __future__ import annotations

import base64
import json
import math
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import flk_pcs_reference as ref
import pytest
from flk_pcs import MalformedError, compute_pcs_id, payload_of, round9, signing_payload
from flk_pcs.canonical import canonical_number, encode_string
from flk_pcs.signing import b64decode_strict, digest, ed25519_public_key, ed25519_sign, hmac_sign
from hypothesis import given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "sdk/vectors/pcs-vectors.json").read_text(encoding="utf-8"))
GOLDEN = json.loads((REPO.parent / "shared/golden/signing-vectors.json").read_text("utf-8"))


def _reproduce(v: dict[str, Any]) -> list[str]:
    """Names of the fields of signing vector `v` that flk_pcs does not reproduce."""
    payload = payload_of(v["pcs"])
    dig = digest(payload)
    seed = base64.b64decode(v["ed25519_seed_b64"])
    got = {
        "payload": payload.decode("ascii"),
        "sha256": dig.hex(),
        "hmac_sig": hmac_sign(v["hmac_key"], dig),
        "ed25519_pub_b64": base64.b64encode(ed25519_public_key(seed)).decode(),
        "ed25519_sig": ed25519_sign(seed, dig),
    }
    return [k for k, value in got.items() if value != v[k]]


def test_golden_vectors_reproduce_byte_for_byte() -> None:
    failures = {v["name"]: _reproduce(v) for v in GOLDEN["vectors"]}
    failures = {k: v for k, v in failures.items() if v}
    assert not failures, f"{len(failures)} out of {len(GOLDEN['vectors'])} failed: {failures}"


def test_vector_file_starts_with_every_golden_vector_verbatim() -> None:
    golden = GOLDEN["vectors"]
    assert VECTORS["signing"][: len(golden)] == golden


def test_all_signing_vectors_reproduce() -> None:
    failures = {v["name"]: _reproduce(v) for v in VECTORS["signing"]}
    failures = {k: v for k, v in failures.items() if v}
    assert not failures, f"{len(failures)} out of {len(VECTORS['signing'])} failed: {failures}"


def test_signing_vectors_agree_with_the_plain_reference() -> None:
    for v in VECTORS["signing"]:
        assert ref.payload(v["pcs"]) == v["payload"], v["name"]


def test_pcs_id_vectors() -> None:
    for v in VECTORS["pcs_id"]:
        assert compute_pcs_id(v["merkle_root"], v["epoch"], v["shard_id"]) == v["pcs_id"]
        assert ref.pcs_id(v["merkle_root"], v["epoch"], v["shard_id"]) == v["pcs_id"]


def test_pcs_id_one_liner() -> None:
    # printf '%s|7|shard-7' "$(printf 'a%.0s' $(seq 64))" | sha256sum
    assert compute_pcs_id("a" * 64, 7, "shard-7") == (
        "5e53855568fe1e68e4b47623dc56e0e5004546d963e9231b8f8ab186c353487e"
    )


@pytest.mark.parametrize(
    ("x", "expected"),
    [
        (1.2345678905, "1.234567891"),
        (-1.2345678905, "-1.234567891"),  # half away from zero
        (0.1234567885, "0.123456789"),  # decimal repr is a tie even though the binary is not
        (5e-10, "1e-09"),
        (4.9e-10, "0.0"),
        (-1e-12, "-0.0"),  # Decimal keeps the sign of a zero result
        (-0.0, "-0.0"),
        (0.30000000000000004, "0.3"),
        (2.675, "2.675"),
        (1e16, "1e+16"),
        (9999999999999998.0, "9999999999999998.0"),
        (123456789.0, "123456789.0"),
        (5e-05, "5e-05"),
        (1.2345e-08, "1.2e-08"),
        (0.9999999995, "1.0"),
    ],
)
def test_canonical_number_cases(x: float, expected: str) -> None:
    assert canonical_number(x) == expected
    assert repr(round9(x)) == expected


def _spec_formula(x: float) -> float:
    return float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))


# Floats near the 9th decimal, where ties and carries live, plus the whole double range that the
# default Decimal context can quantize (|x| < 1e15, which SPEC §1 guarantees for records).
_near_ties = st.builds(
    lambda n, k, sign: sign * (n / 10**k),
    st.integers(0, 10**13), st.integers(9, 13), st.sampled_from([1, -1]),
)
_any_record_float = st.floats(min_value=-1e15, max_value=1e15, allow_nan=False,
                              allow_infinity=False)


@settings(max_examples=3000, deadline=None)
@given(st.one_of(_near_ties, _any_record_float))
def test_round9_equals_the_spec_decimal_formula(x: float) -> None:
    expected = _spec_formula(x)
    got = round9(x)
    assert got == expected and math.copysign(1, got) == math.copysign(1, expected)
    assert canonical_number(x) == repr(expected)


@settings(max_examples=1000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_round9_full_range_matches_wide_context_reference(x: float) -> None:
    assert repr(round9(x)) == repr(ref.round9(x))


@settings(max_examples=3000, deadline=None)
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_repr_follows_the_spec_printing_rule(x: float) -> None:
    # SPEC §2.3 says "exactly as Python's repr"; the reference prints from the rule's text, so
    # this pins the rule the Go and TypeScript SDKs must implement.
    assert repr(x) == ref.format_float(x)


@settings(max_examples=2000, deadline=None)
@given(st.text(alphabet=st.characters(exclude_categories=["Cs"])))
def test_string_escaping_follows_the_spec(s: str) -> None:
    assert encode_string(s) == ref.encode_string(s)


def test_escaping_of_the_edges() -> None:
    assert encode_string("\x7f") == '"\\u007f"'
    assert encode_string("<>&/") == '"<>&/"'
    assert encode_string("\U0001f600") == '"\\ud83d\\ude00"'
    assert encode_string("\x00\x1f") == '"\\u0000\\u001f"'
    assert encode_string("\b\f\n\r\t\"\\") == '"\\b\\f\\n\\r\\t\\"\\\\"'


def test_integer_tokens_mean_the_float() -> None:
    as_int = signing_payload("a", "b", 1, "s", 2, 1, 0, 1)
    as_float = signing_payload("a", "b", 1, "s", 2.0, 1.0, 0.0, 1.0)
    assert as_int == as_float
    assert b'"D_hat":2.0' in as_int


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (("a", "b", 1, "s", float("nan"), 0.0, 0.0, 0.0), "non_finite_number"),
        (("a", "b", 1, "s", float("inf"), 0.0, 0.0, 0.0), "non_finite_number"),
        (("a", "b", 1.0, "s", 0.0, 0.0, 0.0, 0.0), "wrong_type"),
        (("a", "b", 1, "s", "0.5", 0.0, 0.0, 0.0), "wrong_type"),
        (("a", "b", 1, "s", True, 0.0, 0.0, 0.0), "wrong_type"),
        (("a", "b", 1, "\ud800", 0.0, 0.0, 0.0, 0.0), "invalid_unicode"),
    ],
)
def test_signing_payload_refuses_what_cannot_be_signed(args: tuple[Any, ...], code: str) -> None:
    with pytest.raises(MalformedError) as info:
        signing_payload(*args)
    assert info.value.code == code


def test_payload_of_names_a_missing_field() -> None:
    pcs = dict(GOLDEN["vectors"][0]["pcs"])
    del pcs["r"]
    with pytest.raises(MalformedError) as info:
        payload_of(pcs)
    assert (info.value.code, info.value.field) == ("missing_field", "r")


@pytest.mark.parametrize(
    ("text", "ok"),
    [("", True), ("QQ==", True), ("QUI=", True), ("QUJD", True), ("QR==", False),
     ("QQ", False), ("QQ=", False), ("Q-==", False), ("QQ==\n", False), (" QQ==", False)],
)
def test_strict_base64(text: str, ok: bool) -> None:
    assert (b64decode_strict(text) is not None) is ok


@pytest.mark.parametrize(
    ("x", "text"),
    [
        (562949953421312.75, "562949953421312.8"),  # two nearest 16-digit values: the even one
        (2.0**-24, "5.960464477539063e-08"),  # a power of two: the lopsided interval
        (1e-05, "1e-05"),
        (0.0001, "0.0001"),
        (1e16, "1e+16"),
        (5e-324, "5e-324"),
    ],
)
def test_printing_edge_cases(x: float, text: str) -> None:
    assert repr(x) == text == ref.format_float(x)


def test_hmac_and_ed25519_verify_helpers() -> None:
    from flk_pcs.signing import ed25519_verify, hmac_verify
    from nacl.signing import VerifyKey

    v = GOLDEN["vectors"][0]
    dig = bytes.fromhex(v["sha256"])
    assert hmac_verify(v["hmac_key"].encode(), dig, base64.b64decode(v["hmac_sig"]))
    assert not hmac_verify(b"other", dig, base64.b64decode(v["hmac_sig"]))
    key = VerifyKey(base64.b64decode(v["ed25519_pub_b64"]))
    assert ed25519_verify(key, dig, base64.b64decode(v["ed25519_sig"]))
    assert not ed25519_verify(key, bytes(32), base64.b64decode(v["ed25519_sig"]))
