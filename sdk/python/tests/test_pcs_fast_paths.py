"""The fast paths of the core path (issue 3) pinned to the exact paths they shortcut.

* parsing: `_fast_parse` (orjson, byte-count duplicate proofs) may only ever answer what the
  exact path (`_load_json` with the per-object duplicate hook, then `_slow_record`) answers;
  `parse` as a whole must give the exact path's record or its MalformedError code.
* engine: `decide` (cached per-scales plans, C-level slope maps) equals `_decide_exact`.
* key sets: HMAC verification with a keyed template equals the one-shot hmac.digest.

Records are compared by repr, which tells -0.0 from 0.0, 1 from 1.0 and True from 1, and
shows the order of N_j's keys.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from pathlib import Path
from typing import Any

import orjson
import pytest
from flk_pcs import (
    HmacSigner,
    MalformedError,
    PCSRecord,
    VerificationParams,
    build_pcs,
    decide,
    encode_body,
    keyset_from_mapping,
    parse,
    sign_pcs,
)
from flk_pcs._exact import _load_json, _slow_record
from flk_pcs.engine import _decide_exact
from flk_pcs.parsing import _fast_parse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "sdk/vectors/pcs-vectors.json").read_text(encoding="utf-8"))
SECRET = "fast-path-secret"  # noqa: S105 - a test key


def _vector_body(v: dict[str, Any]) -> bytes:
    return v["body"].encode("utf-8") if "body" in v else base64.b64decode(v["body_b64"])


def _exact(body: bytes) -> PCSRecord | str:
    """The exact path alone: the record, or the MalformedError code."""
    try:
        return _slow_record(_load_json(body))
    except MalformedError as exc:
        return exc.code


def _parsed(body: bytes) -> PCSRecord | str:
    try:
        return parse(body)
    except MalformedError as exc:
        return exc.code


def _same(a: PCSRecord | str, b: PCSRecord | str) -> bool:
    return type(a) is type(b) and repr(a) == repr(b)


def check_body(body: bytes) -> None:
    exact = _exact(body)
    fast = _fast_parse(body)
    if fast is not None:
        assert _same(fast, exact), (body[:300], fast, exact)
    got = _parsed(body)
    assert _same(got, exact), (body[:300], got, exact)


# --- seed bodies -----------------------------------------------------------------------------

def _record_body(rng: random.Random, i: int) -> bytes:
    """A signed record like the clients' (and the benchmark's)."""
    k = rng.randint(2, 8)
    scales = sorted(rng.sample(range(1, 1025), k))
    slope = rng.uniform(0.5, 3.0)
    n_j = {s: max(1, round(s**slope * rng.uniform(0.9, 1.1))) for s in scales}
    ft: dict[str, Any] | None = rng.choice([
        None,
        {"outbox_seq": i, "degraded": False, "fallbacks": [], "clock_skew_ms": 3},
        {"outbox_seq": i, "degraded": True, "fallbacks": ["wal", "dé"], "clock_skew_ms": -7},
        {"degraded": None},
    ])
    pcs = build_pcs(
        merkle_root=f"{rng.getrandbits(256):064x}", epoch=rng.choice([i, 2**53 - 1, 0]),
        shard_id=rng.choice([f"shard-{i % 64}", "é-shard", "a\"b", "x:y", "tab\there", "🙂"]),
        scales=scales, N_j=n_j, coh_star=rng.random(), r=rng.random(),
        v_star=[rng.uniform(-1, 1) for _ in range(rng.randint(0, 4))],
        seed=rng.getrandbits(40) * rng.choice([1, -1]), attempt=rng.randint(1, 3),
        sent_at=rng.choice(["2025-06-15T12:00:00.250Z", "2024-02-29T23:59:60+01:00",
                            "2025-01-31t00:00:00z"]),
        ft=ft,
    )
    if rng.random() < 0.8:
        pcs = sign_pcs(pcs, HmacSigner(SECRET))
    if rng.random() < 0.2:
        pcs["sig"] = rng.choice(["", None])
    if rng.random() < 0.2:
        pcs["extra"] = rng.choice([1, {"a": [1, 2]}, "s", [[["deep"]]], None])
    style = rng.randrange(4)
    if style == 0:
        return encode_body(pcs)
    if style == 1:
        return json.dumps(pcs).encode("utf-8")  # ASCII with \u escapes, spaces after colons
    if style == 2:
        indents: list[int | str] = [1, "\t"]
        indent = rng.choice(indents)
        return json.dumps(pcs, indent=indent, ensure_ascii=False).encode()
    return json.dumps(pcs, separators=(",", " : ")).encode("utf-8")


_RNG = random.Random(20261126)
SEEDS = [_record_body(_RNG, i) for i in range(60)] + [
    _vector_body(v) for v in VECTORS["parse"] if len(_vector_body(v)) < 4096
]

# JSON-aware insertions: the parse rules' edge cases, at random places.
_SNIPPETS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e400", b"-1e400", b"1e15", b"-1e15", b"999999999999999",
    b"1000000000000000", b"1.0", b"-0", b"-0.0", b"0.1e1", b"1E2", b"18446744073709551616",
    b"-9223372036854775809", b"9" * 30, b"1" * 5000, b"\\ud800", b"\\udc00", b"\\ud83d\\ude00",
    b"\\u0041", b"\\/", b'\\"', b"\\\\", b"\xff", b"\xed\xa0\x80", b"\xef\xbb\xbf", b"[[[[", b"]]",
    b"{", b"}", b'"a":1,', b'"epoch":7,', b'"N_j":{},', b'"ft":{"x":[[[[1]]]]},', b" ", b"\n",
    b'" :', b'":', b"null", b"true", b",", b":", b'"', b"\x00", b"\t",
]


def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 3)):
        op = rng.randrange(7)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[min(pos, len(data) - 1)]
        elif op == 1:
            data[pos:pos] = rng.choice(_SNIPPETS)
        elif op == 2 and data:
            data[min(pos, len(data) - 1)] = rng.choice(b'{}[]",:0123456789.eE-+\\u tnfalsNI ')
        elif op == 3:
            # Duplicate a `"key":` token somewhere after an existing comma or brace.
            keys = [m for m in range(len(data)) if bytes(data[m : m + 2]) in (b"{\"", b",\"")]
            if keys:
                at = rng.choice(keys) + 1
                end = data.find(b",", at)
                if end > at:
                    data[at:at] = data[at:end] + b","
        elif op == 4:
            # Replace one number token with an edge-case number.
            digits = [m for m in range(len(data)) if data[m : m + 1] == b":"
                      and data[m + 1 : m + 2] in b"-0123456789"]
            if digits:
                at = rng.choice(digits) + 1
                end = at
                while end < len(data) and data[end : end + 1] in b"-+.eE0123456789":
                    end += 1
                data[at:end] = rng.choice(_SNIPPETS[:17])
        elif op == 5:
            data = data[:pos]
        else:
            # Whitespace before a colon, or an escape in place of a plain character.
            colons = [m for m in range(len(data)) if data[m : m + 2] == b'":']
            if colons:
                at = rng.choice(colons) + 1
                data[at:at] = rng.choice([b" ", b"\n", b"\t\r"])
    return bytes(data)


@pytest.mark.parametrize("attempt", [10**15 - 1, 10**15, 10**30])
def test_attempt_is_bounded_like_every_number(attempt: int) -> None:
    # Found by the mutation test below: the fast field check once accepted attempt ≥ 1e15,
    # which the exact path (and SPEC §1) refuses as number_out_of_range.
    doc = json.loads(SEEDS[0])
    doc["attempt"] = attempt
    body = json.dumps(doc).encode()
    check_body(body)
    got = _parsed(body)
    if attempt < 10**15:
        assert isinstance(got, PCSRecord) and got.attempt == attempt
    else:
        assert got == "number_out_of_range"


def test_seed_bodies_agree() -> None:
    for body in SEEDS:
        check_body(body)


def test_fast_path_takes_the_clean_bodies() -> None:
    # Not a correctness property: the point of the fast path is that it is the one taken.
    rng = random.Random(7)
    clean = [_record_body(rng, i) for i in range(200)]
    taken = sum(_fast_parse(b) is not None for b in clean)
    assert taken >= 50  # extras, 29 February and the like take the exact path
    bench_like = encode_body(sign_pcs(build_pcs(
        merkle_root="ab" * 32, epoch=1, shard_id="s", scales=[2, 4, 8], N_j={2: 3, 4: 9, 8: 27},
        coh_star=0.5, r=0.25, v_star=[0.1], seed=1, attempt=1,
        sent_at="2025-06-15T12:00:00Z",
        ft={"outbox_seq": 1, "degraded": False, "fallbacks": [], "clock_skew_ms": 3},
    ), HmacSigner(SECRET)))
    assert _fast_parse(bench_like) is not None


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(0, len(SEEDS) - 1), st.randoms(use_true_random=False))
def test_mutated_bodies_agree(seed: int, rng: random.Random) -> None:
    check_body(mutate(rng, SEEDS[seed]))


def test_many_mutations_agree() -> None:
    rng = random.Random(42)
    for _ in range(20_000):
        check_body(mutate(rng, rng.choice(SEEDS)))


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=12,
)
_FIELDS = sorted(json.loads(_vector_body(VECTORS["parse"][0])))


@settings(max_examples=800, deadline=None)
@given(st.dictionaries(st.sampled_from([*_FIELDS, "extra", "ft"]), _json_values, max_size=4),
       st.sampled_from(SEEDS[:60]), st.booleans())
def test_structured_overrides_agree(over: dict[str, Any], seed: bytes, ascii_only: bool) -> None:
    doc = json.loads(seed)
    doc.update(over)
    check_body(json.dumps(doc, ensure_ascii=ascii_only, separators=(",", ":")).encode("utf-8"))


_number_text = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(10**20), 10**20).map(str),
    st.from_regex(r"-?(0|[1-9][0-9]{0,25})(\.[0-9]{1,30})?([eE][-+]?[0-9]{1,3})?", fullmatch=True),
)


@settings(max_examples=1200, deadline=None)
@given(st.sampled_from(["D_hat", "coh_star", "r", "budget", "v_star", "epoch", "seed",
                        "N_j", "scales"]), _number_text)
def test_number_tokens_agree(field: str, number: str) -> None:
    doc = json.loads(SEEDS[0])
    text = json.dumps(doc, separators=(",", ":"))
    value = {"v_star": f"[{number}]", "scales": f"[2,{number}]",
             "N_j": '{"2":' + number + "}"}.get(field, number)
    head, _, rest = text.partition(f'"{field}":')
    depth, end = 0, 0
    for end, ch in enumerate(rest):  # noqa: B007 - the loop finds the end of the value
        if ch in "[{":
            depth += 1
        elif ch in "]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == "," and depth == 0:
            break
    check_body(f'{head}"{field}":{value}{rest[end:]}'.encode())


@settings(max_examples=1500, deadline=None)
@given(_number_text)
def test_orjson_reads_numbers_like_the_standard_library(number: str) -> None:
    # The fast path's premise: orjson gives the same value, or an int the standard library
    # reads as an int beyond 64 bits as a float (refused by every fast-path field), or fails.
    try:
        got = orjson.loads(number)
    except orjson.JSONDecodeError:
        return
    want = json.loads(number)
    if type(want) is int and not -(2**63) <= want < 2**64:
        assert type(got) is float
        return
    assert type(got) is type(want) and repr(got) == repr(want)


@pytest.mark.parametrize("escape", ["\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud800\\u0041",
                                    "\\udc00\\ud800", "\\ud800\\ud800", "\\ud800x"])
def test_orjson_refuses_every_lone_surrogate(escape: str) -> None:
    body = ('{"a":"' + escape + '"}').encode()
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(body)
    check_body(body)


# --- engine: the per-scales plan against the exact decide -----------------------------------

_BASE: PCSRecord | None = parse(encode_body(build_pcs(
    merkle_root="ab" * 32, epoch=5, shard_id="s", scales=[2, 4], N_j={2: 3, 4: 9},
    coh_star=0.5, r=0.25, v_star=[], seed=1, attempt=1, sent_at="2025-06-15T12:00:00Z",
)))


@settings(max_examples=600, deadline=None)
@given(
    st.lists(st.integers(-3, 1100) | st.sampled_from([1, 2, 4, 8, 1024]), min_size=1,
             max_size=9),
    st.lists(st.integers(-2, 10**14) | st.just(None), min_size=9, max_size=9),
    st.floats(-1, 4, allow_nan=False), st.floats(-0.5, 1.5, allow_nan=False),
    st.floats(-0.5, 1.5, allow_nan=False), st.floats(-0.5, 1.5, allow_nan=False),
    st.sampled_from(["sticky", "mixed", "non_sticky"]),
    st.sampled_from([VerificationParams(), VerificationParams(tol_D=0.0, tol_budget=0.0),
                     VerificationParams(tol_D=1.0, alpha=0.1, beta=0.2, gamma=0.3, D0=1.0)]),
)
def test_decide_equals_the_exact_decide(
    scales: list[int], counts: list[int | None], d_hat: float, coh: float, r: float,
    budget: float, regime: str, params: VerificationParams,
) -> None:
    assert _BASE is not None
    n_j = {str(s): c for s, c in zip(scales, counts, strict=False) if c is not None}
    record = _BASE._replace(scales=tuple(scales), N_j=n_j, D_hat=d_hat, coh_star=coh, r=r,
                            budget=budget, regime=regime)
    assert repr(decide(record, params)) == repr(_decide_exact(record, params))
    # Twice: the second call uses the cached plan.
    assert repr(decide(record, params)) == repr(_decide_exact(record, params))


@pytest.mark.parametrize("scales", [(1.0, 2), (True, 2), [1, 2], (2, 2), (0, 2), (2, 4096)])
def test_decide_odd_scales_take_the_exact_path(scales: Any) -> None:
    assert _BASE is not None
    record = _BASE._replace(scales=scales, N_j={"1": 3, "2": 5, "True": 4, "1.0": 9, "0": 1,
                                                "4096": 2})
    # First with genuine ints, so a value-equal tuple of another type finds a cached plan.
    decide(_BASE._replace(scales=(1, 2), N_j={"1": 3, "2": 5}), VerificationParams())
    assert repr(decide(record, VerificationParams())) == repr(
        _decide_exact(record, VerificationParams())
    )


def test_decide_with_a_non_dict_mapping() -> None:
    from collections import defaultdict

    assert _BASE is not None
    n_j: defaultdict[str, int] = defaultdict(int, {"2": 3})
    record = _BASE._replace(scales=(2, 4), N_j=n_j)
    assert decide(record, VerificationParams()).reason == "missing_N_j"
    assert dict(n_j) == {"2": 3}  # not written to


# --- key sets: the keyed HMAC template ------------------------------------------------------

@settings(max_examples=500, deadline=None)
@given(st.text(min_size=1, max_size=150), st.binary(min_size=32, max_size=32),
       st.binary(min_size=0, max_size=40), st.booleans())
def test_hmac_check_equals_one_shot_hmac(secret: str, dig: bytes, other: bytes, good: bool
                                         ) -> None:
    ks = keyset_from_mapping({"tenants": {"t": {"keys": [
        {"key_id": "k", "alg": "hmac", "secret": secret}]}}})
    right = hmac.digest(secret.encode("utf-8"), dig, "sha256")
    sig = right if good else other
    assert ks.check("t", 0, dig, sig).ok is hmac.compare_digest(right, sig)
    # The template is reused, never updated: the same check again gives the same answer.
    assert ks.check("t", 0, dig, sig).ok is hmac.compare_digest(right, sig)
    assert not ks.check("t", 0, hashlib.sha256(dig).digest(), right).ok


# --- canonical: the payload's inlined number check ------------------------------------------

def _payload_by_canonical_number(*a: Any) -> bytes:
    from flk_pcs.canonical import canonical_number, encode_string

    pcs_id, merkle_root, epoch, shard_id, d_hat, coh, r, budget = a
    return (
        f'{{"D_hat":{canonical_number(d_hat)},"budget":{canonical_number(budget)}'
        f',"coh_star":{canonical_number(coh)},"epoch":{epoch}'
        f',"merkle_root":{encode_string(merkle_root)},"pcs_id":{encode_string(pcs_id)}'
        f',"r":{canonical_number(r)},"shard_id":{encode_string(shard_id)}}}'
    ).encode("ascii")


_payload_float = st.one_of(
    st.floats(), st.floats(-2, 2).map(lambda x: round(x, 9)),
    st.sampled_from([0.0, -0.0, 1e-5, 1.5e-7, 5e-10, 1e16, 0.1234567895, 2.5e-9]),
)


@settings(max_examples=1500, deadline=None)
@given(_payload_float, _payload_float, _payload_float, _payload_float)
def test_payload_equals_the_canonical_number_formula(d: float, c: float, r: float, b: float
                                                     ) -> None:
    from flk_pcs.canonical import _payload

    args = ("ab" * 32, "cd" * 32, 7, "é", d, c, r, b)
    try:
        want: bytes | str = _payload_by_canonical_number(*args)
    except ValueError as exc:
        want = str(exc)
    try:
        got: bytes | str = _payload(*args)
    except ValueError as exc:
        got = str(exc)
    assert got == want
