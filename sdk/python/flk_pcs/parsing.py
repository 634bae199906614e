"""Raw bytes → PCSRecord (SPEC §1): `parse`, a fast path for clean bodies, and the exact path
(`_exact`) for everything else. Both give the same answer; tests pin that."""

from __future__ import annotations

import re
from typing import Any, Final

import orjson

from ._exact import (
    _EPOCH_LIMIT,
    _INT_LIMIT,
    _KNOWN_FIELDS,
    _PCS_ID_RE,
    _SEED_LIMIT,
    _SURROGATE_ESCAPE_RE,
    MAX_BODY_BYTES,
    MAX_DEPTH,
    NUMBER_LIMIT,
    _bad_number,
    _load_json,
    _slow_record,
)
from .record import REGIMES, VERSION, FaultTolerance, PCSRecord
from .signing import b64decode_strict

# What a NamedTuple's generated __new__ does, without its Python frame (hot path).
_tuple_new: Final = tuple.__new__

__all__ = ["MAX_BODY_BYTES", "MAX_DEPTH", "NUMBER_LIMIT", "parse", "record_from_object"]

# The fast path's date-time check, ranges included: day 29 and 30 in every month but February,
# 31 in the 31-day months. 29 February (leap years) takes the exact path, _sent_at.
_RFC3339_FAST_RE: Final = re.compile(
    r"\d{4}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)"
    r"|(?:0[13578]|1[02])-31)[Tt](?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d+)?"
    r"(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d)",
    re.ASCII,
)
_INT: Final = frozenset({int})
_NUMBER: Final = frozenset({int, float})


_FT_KEYS: Final = frozenset({"outbox_seq", "degraded", "fallbacks", "clock_skew_ms"})
_STR: Final = frozenset({str})


def _ft_fast(ft: Any) -> FaultTolerance | None:
    """`_ft` as one conjunction, bounds included; None if anything might be wrong."""
    if type(ft) is not dict:
        return None
    seq, degraded, fallbacks, skew = (
        ft.get("outbox_seq"), ft.get("degraded"), ft.get("fallbacks"), ft.get("clock_skew_ms"),
    )
    if not (
        (seq is None or (type(seq) is int and -_INT_LIMIT < seq < _INT_LIMIT))
        and (degraded is None or type(degraded) is bool)
        and (fallbacks is None or (type(fallbacks) is list and set(map(type, fallbacks)) <= _STR))
        and (skew is None or (type(skew) is int and -_INT_LIMIT < skew < _INT_LIMIT))
        and (ft.keys() <= _FT_KEYS or _bad_number(list(ft.values())) is None)
    ):
        return None
    return FaultTolerance(seq, degraded, None if fallbacks is None else tuple(fallbacks), skew)


def _ft_known(ft: dict[str, Any]) -> FaultTolerance | None:
    """`_ft_fast` for an `ft` object with no unknown members."""
    seq, degraded, fallbacks, skew = (
        ft.get("outbox_seq"), ft.get("degraded"), ft.get("fallbacks"), ft.get("clock_skew_ms"),
    )
    if not (
        (seq is None or (type(seq) is int and -_INT_LIMIT < seq < _INT_LIMIT))
        and (degraded is None or type(degraded) is bool)
        and (fallbacks is None or (type(fallbacks) is list and set(map(type, fallbacks)) <= _STR))
        and (skew is None or (type(skew) is int and -_INT_LIMIT < skew < _INT_LIMIT))
    ):
        return None
    return _tuple_new(
        FaultTolerance, (seq, degraded, None if fallbacks is None else tuple(fallbacks), skew)
    )


def _fast_record(doc: dict[str, Any]) -> PCSRecord | None:
    """All field rules as one cheap conjunction; None if any rule might be broken (then
    `_slow_record` finds which). Returns exactly what `_slow_record` would."""
    ft = doc.get("ft")
    ft_value = None
    if ft is not None:
        ft_value = _ft_fast(ft)
        if ft_value is None:
            return None
    # Numbers in unknown extra fields (the known ones are bounded by _fast_fields, ft above).
    if not doc.keys() <= _KNOWN_FIELDS and _bad_number(
        [v for k, v in doc.items() if k not in _KNOWN_FIELDS]
    ) is not None:
        return None
    return _fast_fields(doc, ft_value)


def _fast_fields(doc: dict[str, Any], ft_value: FaultTolerance | None) -> PCSRecord | None:
    """`_fast_record` for every field but `ft` (given, already checked) and the unknown ones
    (the caller's business)."""
    try:
        pcs_id = doc["pcs_id"]
        schema = doc["schema"]
        version = doc["version"]
        shard_id = doc["shard_id"]
        epoch = doc["epoch"]
        attempt = doc["attempt"]
        sent_at = doc["sent_at"]
        seed = doc["seed"]
        scales = doc["scales"]
        n_j = doc["N_j"]
        coh_star = doc["coh_star"]
        d_hat = doc["D_hat"]
        r = doc["r"]
        budget = doc["budget"]
        v_star = doc["v_star"]
        regime = doc["regime"]
        merkle_root = doc["merkle_root"]
    except KeyError:
        return None
    if not (
        type(pcs_id) is str
        and _PCS_ID_RE.fullmatch(pcs_id) is not None
        and type(schema) is str
        and type(version) is str
        and version == VERSION
        and type(shard_id) is str
        and shard_id
        and type(epoch) is int
        and 0 <= epoch < _EPOCH_LIMIT
        and type(attempt) is int
        and 1 <= attempt < _INT_LIMIT  # the SPEC's |number| < 1e15 bound holds for attempt too
        and type(sent_at) is str
        and _RFC3339_FAST_RE.fullmatch(sent_at) is not None
        and type(seed) is int
        and -_SEED_LIMIT < seed < _SEED_LIMIT
        and type(scales) is list
        and scales
        and set(map(type, scales)) <= _INT
        and type(n_j) is dict
        and set(map(type, n_j.values())) <= _INT
        and type(v_star) is list
        and set(map(type, v_star)) <= _NUMBER
        and type(regime) is str
        and regime in REGIMES
        and type(merkle_root) is str
        and merkle_root
        and -_INT_LIMIT < min(scales)
        and max(scales) < _INT_LIMIT
        and (not n_j or (-_INT_LIMIT < min(n_j.values()) and max(n_j.values()) < _INT_LIMIT))
        and (not v_star or (-NUMBER_LIMIT < min(v_star) and max(v_star) < NUMBER_LIMIT))
    ):
        return None
    t = type(coh_star)
    if t is not float:
        if t is not int:
            return None
        coh_star = float(coh_star)
    t = type(d_hat)
    if t is not float:
        if t is not int:
            return None
        d_hat = float(d_hat)
    t = type(r)
    if t is not float:
        if t is not int:
            return None
        r = float(r)
    t = type(budget)
    if t is not float:
        if t is not int:
            return None
        budget = float(budget)
    if not (
        -NUMBER_LIMIT < coh_star < NUMBER_LIMIT
        and -NUMBER_LIMIT < d_hat < NUMBER_LIMIT
        and -NUMBER_LIMIT < r < NUMBER_LIMIT
        and -NUMBER_LIMIT < budget < NUMBER_LIMIT
    ):
        return None
    sig = doc.get("sig")
    sig_bytes = None
    if sig is not None:
        if type(sig) is not str:
            return None
        if sig:
            sig_bytes = b64decode_strict(sig)
            if sig_bytes is None:
                return None
        else:
            sig = None
    return _tuple_new(PCSRecord, (
        pcs_id, schema, version, shard_id, epoch, attempt, sent_at, seed, tuple(scales), n_j,
        coh_star, d_hat, r, budget, tuple(map(float, v_star)), regime, merkle_root,
        sig, sig_bytes, ft_value,
    ))


def record_from_object(doc: dict[str, Any]) -> PCSRecord:
    """Field rules of SPEC §1 on a JSON object from `load_json`; raises only MalformedError,
    naming the first broken rule in the SPEC table's order."""
    record = _fast_record(doc)
    if record is None:
        record = _slow_record(doc)
    return record


# Duplicate keys without the per-object hook, from byte counts. The fast path accepts only
# bodies whose fields are all known, with only known members in `ft`, so the value it parsed
# has objects only at the top, in N_j and in ft, lists only of numbers or strings, nesting at
# most 3 deep, and it knows exactly how many keys and strings that value holds. Duplicates are
# what a decoder drops silently; two proofs that it dropped none:
#
# * No backslash in the body (the common case): no string has an escape, so every `"` byte
#   delimits a string token (UTF-8 continuation bytes are never ASCII). Then
#   body.count(b'"') = 2 × (string tokens) ≥ 2 × (keys + string values kept), with equality
#   only when no key was dropped, i.e. no duplicates.
# * Otherwise: every key token ends in `"`, optional whitespace, then `:`. If no key has
#   whitespace before its colon, body.count(b'":') = (key tokens) + (such pairs inside
#   strings) ≥ key tokens ≥ keys kept, with equality throughout only when nothing was dropped.
#   A lone surrogate can only come from a \u escape, so only such bodies need looking for one.
#
# Any doubt sends the body to the exact path.
_WS_BEFORE_COLON_RE: Final = re.compile(rb'"[ \t\n\r]+:')
_SURROGATE_ESCAPE_BYTES_RE: Final = re.compile(_SURROGATE_ESCAPE_RE.pattern.encode("ascii"))
_STRING_FIELDS: Final = 7  # pcs_id, schema, version, shard_id, sent_at, regime, merkle_root

# The fast path decodes with orjson (pinned in pyproject.toml), which is stricter than the
# standard library's decoder everywhere the two differ: it refuses NaN/Infinity, literals
# that overflow a double, lone surrogates, a BOM and invalid UTF-8 (all of which the exact
# path then reports), and reads floats correctly rounded, like float(). The one value it
# reads differently is an integer literal outside the 64-bit range, which it makes a float:
# every field the fast path accepts is then refused (an integer field by its type, a number
# field by the 1e15 bound), so such a body goes to the exact path too. Tests pin both paths
# to the same answers on random and mutated bodies.
_FAST_LOADS: Final = orjson.loads


def _fast_parse(body: bytes) -> PCSRecord | None:
    """The whole of `parse` for the common, clean body; None means "use the exact path",
    never "malformed". Returns exactly what the exact path would."""
    if type(body) is not bytes or len(body) > MAX_BODY_BYTES:
        return None  # other buffer types: the exact path, which treats them as it always did
    try:
        if not body.isascii():
            body.decode("utf-8")  # strict UTF-8, exactly as the exact path decodes
        doc = _FAST_LOADS(body)
    except ValueError:  # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    if type(doc) is not dict or not doc.keys() <= _KNOWN_FIELDS:
        return None  # extras may hold objects whose keys we'd not count
    ft = doc.get("ft")
    ft_value = None
    if ft is not None:
        if type(ft) is not dict or not ft.keys() <= _FT_KEYS:
            return None
        ft_value = _ft_known(ft)
        if ft_value is None:
            return None
    record = _fast_fields(doc, ft_value)
    if record is None:
        return None
    keys = len(doc) + len(record.N_j) + (0 if ft is None else len(ft))
    if b"\\" not in body:
        fallbacks = None if ft_value is None else ft_value.fallbacks
        strings = (
            _STRING_FIELDS
            + (type(doc.get("sig")) is str)
            + (0 if fallbacks is None else len(fallbacks))
        )
        return record if body.count(b'"') == 2 * (keys + strings) else None
    if (
        body.count(b'":') != keys
        or _WS_BEFORE_COLON_RE.search(body) is not None
        or (b"\\u" in body and _SURROGATE_ESCAPE_BYTES_RE.search(body) is not None)
    ):
        return None
    return record


def parse(body: bytes) -> PCSRecord:
    """Raw request bytes → PCSRecord; raises only MalformedError (SPEC §1, HTTP 400)."""
    record = _fast_parse(body)
    if record is None:
        record = record_from_object(_load_json(body))
    return record
