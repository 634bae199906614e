from __future__ import annotations

import base64
import json
import random
import time
from pathlib import Path
from typing import Any

import flk_pcs_reference as ref
import pytest
from flk_pcs import MalformedError, build_pcs, encode_body, parse, payload_of
from flk_pcs._exact import _load_json, _slow_record
from flk_pcs.parsing import _fast_record
from flk_pcs.record import PCSRecord
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[3]
VECTORS = json.loads((REPO / "sdk/vectors/pcs-vectors.json").read_text(encoding="utf-8"))


def _body(v: dict[str, Any]) -> bytes:
    return v["body"].encode("utf-8") if "body" in v else base64.b64decode(v["body_b64"])


def _outcome(body: bytes) -> str | dict[str, str]:
    try:
        parse(body)
    except MalformedError as exc:
        return {"error": exc.code}
    return "ok"


def test_parse_vectors() -> None:
    cases = VECTORS["parse"]
    failures = [(v["name"], _outcome(_body(v)), v["expect"]) for v in cases
                if _outcome(_body(v)) != v["expect"]]
    assert not failures, f"{len(failures)} out of {len(cases)} failed: {failures}"


def test_fast_and_exact_paths_agree_on_every_parse_vector() -> None:
    # The fast path may only say "ok" when the exact path says the same, with the same record.
    for v in VECTORS["parse"]:
        try:
            doc = _load_json(_body(v))
        except MalformedError:
            continue
        fast = _fast_record(doc)
        try:
            exact: PCSRecord | None = _slow_record(doc)
        except MalformedError:
            exact = None
        if fast is not None:
            assert fast == exact, v["name"]


def test_too_large() -> None:
    body = b'{"x":"' + b"a" * (1 << 20) + b'"}'
    with pytest.raises(MalformedError) as info:
        parse(body)
    assert info.value.code == "too_large"


def test_exactly_one_mib_is_not_too_large() -> None:
    head = b'{"x":"'
    body = head + b"a" * ((1 << 20) - len(head) - 2) + b'"}'
    assert len(body) == 1 << 20
    with pytest.raises(MalformedError) as info:
        parse(body)
    assert info.value.code == "missing_field"


def test_integer_tokens_become_floats() -> None:
    v = next(x for x in VECTORS["parse"] if x["name"] == "ok-integer-number-tokens")
    record = parse(_body(v))
    assert type(record.D_hat) is float and record.D_hat == 2.0


def test_errors_name_the_field() -> None:
    v = next(x for x in VECTORS["parse"] if x["name"] == "wrong-type-epoch-float-token")
    with pytest.raises(MalformedError) as info:
        parse(_body(v))
    assert info.value.field == "epoch"
    assert "epoch" in info.value.detail


def test_missing_and_empty_signature_parse_as_none() -> None:
    for name in ("ok-no-sig-is-a-401-not-a-400", "ok-empty-sig-is-a-401-not-a-400"):
        v = next(x for x in VECTORS["parse"] if x["name"] == name)
        record = parse(_body(v))
        assert record.sig is None and record.sig_bytes is None


# --- parse → canonicalise stability (hypothesis) -----------------------------------------

_unit = st.floats(min_value=0, max_value=1, allow_nan=False)
_shard = st.text(alphabet=st.characters(exclude_categories=["Cs"]), min_size=1, max_size=20)


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    scales = draw(st.lists(st.integers(1, 1024), min_size=2, max_size=8, unique=True))
    n_j = {str(s): draw(st.integers(1, 10**9)) for s in scales}
    return build_pcs(
        merkle_root=draw(st.text("0123456789abcdef", min_size=64, max_size=64)),
        epoch=draw(st.integers(0, 2**53 - 1)),
        shard_id=draw(_shard),
        scales=scales,
        N_j=n_j,
        coh_star=draw(st.floats(-2, 2, allow_nan=False)),
        r=draw(_unit),
        v_star=draw(st.lists(st.floats(-1e6, 1e6, allow_nan=False), max_size=4)),
        seed=draw(st.integers(-(2**53) + 1, 2**53 - 1)),
        sent_at="2025-06-15T12:00:00Z",
        D_hat=draw(st.floats(-10, 10, allow_nan=False)),
        budget=draw(st.floats(-10, 10, allow_nan=False)),
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_records(), st.sampled_from([True, False]))
def test_parse_then_canonicalise_is_stable(pcs: dict[str, Any], ascii_body: bool) -> None:
    body = json.dumps(pcs, ensure_ascii=ascii_body).encode("utf-8")
    record = parse(body)
    payload = record.payload()
    assert payload == payload_of(pcs)
    assert payload.decode("ascii") == ref.payload(pcs)
    # Re-encoding the parsed record and parsing again changes nothing.
    again = parse(encode_body(json.loads(body)))
    assert again == record and again.payload() == payload


# --- fuzzing: only the typed error, ever ---------------------------------------------------

_SEED_BODIES = [_body(v) for v in VECTORS["parse"] if len(_body(v)) < 4096]


def _mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(5)
        pos = rng.randrange(len(data) + 1)
        if op == 0 and data:
            del data[min(pos, len(data) - 1)]
        elif op == 1:
            data.insert(pos, rng.randrange(256))
        elif op == 2 and data:
            data[min(pos, len(data) - 1)] = rng.choice(b'{}[]",:0123456789.eE-+\\u tnfalsNI')
        elif op == 3:
            data[pos:pos] = rng.choice(
                [b"NaN", b"1e400", b"\\ud800", b"[[[[", b"1.0", b'"a":1,', b"-", b"\xff", b"null"]
            )
        else:
            data = data[:pos]
    return bytes(data)


def test_fuzz_mutations_raise_only_malformed_error() -> None:
    rng = random.Random(20250615)
    deadline = time.monotonic() + 8.0
    runs = 0
    outcomes: set[str] = set()
    while time.monotonic() < deadline and runs < 60_000:
        body = _mutate(rng, rng.choice(_SEED_BODIES))
        try:
            parse(body)
            outcomes.add("ok")
        except MalformedError as exc:
            outcomes.add(exc.code)
        runs += 1
    assert runs > 1000
    assert {"ok", "malformed_json"} <= outcomes


@settings(max_examples=1500, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_random_bytes(body: bytes) -> None:
    try:
        parse(body)
    except MalformedError:
        pass


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=1500, deadline=None)
@given(st.dictionaries(st.sampled_from(["pcs_id", "epoch", "scales", "N_j", "D_hat", "sig",
                                        "ft", "v_star", "sent_at", "regime", "x"]),
                       _json_values, max_size=8))
def test_fuzz_structured_objects(over: dict[str, Any]) -> None:
    v = next(x for x in VECTORS["parse"] if x["name"] == "ok-signed")
    doc = json.loads(v["body"])
    doc.update(over)
    body = json.dumps(doc).encode("utf-8")  # may contain NaN/Infinity: also must be typed
    try:
        fast_doc = _load_json(body)
    except MalformedError:
        return
    fast = _fast_record(fast_doc)
    try:
        exact: PCSRecord | None = _slow_record(fast_doc)
    except MalformedError:
        exact = None
    if fast is not None:
        assert fast == exact
    try:
        parse(body)
    except MalformedError:
        pass


# --- the hook-free duplicate-key check of the fast path ------------------------------------

_GOOD = next(x for x in VECTORS["parse"] if x["name"] == "ok-signed")["body"]


@pytest.mark.parametrize(
    "body",
    [
        _GOOD[:-1] + ',"epoch":7}',
        _GOOD.replace('"N_j":{', '"N_j":{"2":4,'),
        # A `":` inside a string adds one to the text's count; a duplicate takes one from the
        # parsed keys: the counts still differ, the exact path finds the duplicate.
        _GOOD.replace('"shard-a"', '"x\\":y"')[:-1] + ',"epoch":7}',
        # Whitespace before a colon hides a key from the count: exact path.
        _GOOD.replace('"epoch":', '"epoch" :')[:-1] + ',"seed":42}',
        _GOOD[:-1] + ',"ft":{"degraded":true,"degraded":false}}',
    ],
)
def test_duplicates_are_never_missed(body: str) -> None:
    with pytest.raises(MalformedError) as info:
        parse(body.encode())
    assert info.value.code == "duplicate_key"


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(sorted(json.loads(_GOOD))), st.sampled_from(["", " ", "\n"]),
       st.booleans())
def test_injected_duplicate_anywhere(field: str, ws: str, quote_in_string: bool) -> None:
    doc = json.loads(_GOOD)
    text = json.dumps(doc, separators=(",", ":"))
    if quote_in_string:
        text = text.replace('"shard-a"', '"a\\":b"')
    dup = f'"{field}"{ws}:{json.dumps(doc[field], separators=(",", ":"))}'
    body = text[:-1] + "," + dup + "}"
    with pytest.raises(MalformedError) as info:
        parse(body.encode())
    assert info.value.code == "duplicate_key"
