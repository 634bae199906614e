from __future__ import annotations

import calendar
import json
import re
from typing import Any, Final, NoReturn

from .errors import MalformedError
from .record import REGIMES, VERSION, FaultTolerance, PCSRecord
from .signing import b64decode_strict

MAX_BODY_BYTES: Final = 1 << 20  # SPEC §1: at most 1 MiB
MAX_DEPTH: Final = 32  # the top-level object is depth 1
NUMBER_LIMIT: Final = 1e15  # SPEC §1: |number| ≥ 1e15 is malformed
_INT_LIMIT: Final = 10**15
_EPOCH_LIMIT: Final = 2**53
_SEED_LIMIT: Final = 2**53

_PCS_ID_RE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
# RFC 3339 §5.6 `date-time`; "T"/"Z" may be lower case (RFC 3339 §5.6 note). Ranges are
# checked after the match.
_RFC3339_RE: Final = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(?:[Zz]|[+-](\d{2}):(\d{2}))",
    re.ASCII,
)
# A lone surrogate can only come from a \u escape (strict UTF-8 decoding rejects encoded ones).
_SURROGATE_ESCAPE_RE: Final = re.compile(r"\\u[dD][89a-fA-F]")


def _fail(code: str, detail: str, field: str | None = None) -> NoReturn:
    raise MalformedError(code, detail, field)


def _duplicate_check(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Called by the C scanner for every JSON object: the one place that sees duplicate keys.
    # Kept minimal because it runs once per object on the hot path.
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                _fail("duplicate_key", f"key {k[:40]!r} appears more than once", k)
            seen.add(k)
    return d


def _constant(name: str) -> NoReturn:
    _fail("non_finite_number", f"{name} is not a JSON number")


def _children(node: Any) -> list[Any]:
    if type(node) is dict:
        return list(node.values())
    if type(node) is list:
        return node
    return []


def _depth(root: Any) -> int:
    deepest = 0
    stack: list[tuple[Any, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        stack.extend((c, depth + 1) for c in _children(node) if type(c) in (dict, list))
    return deepest


# SPEC §1 bounds |number| < 1e15 for every number except `epoch` and `seed`, whose own,
# explicit ranges reach 2^53 (the golden vector `large-epoch` signs epoch 2^53 − 1).
_OWN_RANGE: Final = frozenset({"epoch", "seed"})
_KNOWN_FIELDS: Final = frozenset({
    "pcs_id", "schema", "version", "shard_id", "epoch", "attempt", "sent_at", "seed", "scales",
    "N_j", "coh_star", "D_hat", "r", "budget", "v_star", "regime", "merkle_root", "sig", "ft",
})


def _bad_number(values: list[Any]) -> float | int | None:
    """The first number out of range among `values` and everything nested in them."""
    stack = [values]
    while stack:
        for v in stack.pop():
            t = type(v)
            if t is float or t is int:
                # inf from an overflowing literal such as 1e400 fails this comparison too.
                if not -NUMBER_LIMIT < v < NUMBER_LIMIT:
                    return v  # type: ignore[no-any-return]
            elif t is list:
                stack.append(v)
            elif t is dict:
                stack.append(list(v.values()))
    return None


def _check_numbers(doc: dict[str, Any]) -> None:
    bad = _bad_number([v for k, v in doc.items() if k not in _OWN_RANGE])
    if bad is not None:
        text = repr(bad) if type(bad) is float else str(bad)[:40]
        _fail("number_out_of_range", f"|{text}| must be < 1e15 (epoch and seed excepted)")


# Built once: json.loads(text, **hooks) would construct a decoder and scanner per call.
_EXACT_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_duplicate_check, parse_constant=_constant
)
_FAST_DECODER: Final = json.JSONDecoder(parse_constant=_constant)


def _load_json(body: bytes) -> dict[str, Any]:
    """Raw bytes → JSON object, enforcing the document-wide rules of SPEC §1 (except the
    number bound, which record_from_object checks while it looks at the fields anyway).

    Raises only MalformedError. The body is decoded as strict UTF-8 ourselves: json.loads on
    bytes would guess UTF-16/32 and would accept encodings the SPEC does not.
    """
    if len(body) > MAX_BODY_BYTES:
        _fail("too_large", f"body is {len(body)} bytes; the limit is {MAX_BODY_BYTES}")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        _fail("invalid_unicode", f"body is not valid UTF-8 at byte {exc.start}")
    try:
        doc = _EXACT_DECODER.decode(text)
    except json.JSONDecodeError as exc:
        _fail("malformed_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    except RecursionError:
        _fail("too_deep", f"nesting deeper than {MAX_DEPTH}")
    except ValueError:
        # int() refuses literals over sys.get_int_max_str_digits() digits.
        _fail("number_out_of_range", "an integer literal is far beyond 1e15")
    # Conservative pre-check: fewer openers than the limit (even counting those inside strings)
    # cannot nest deeper than it, so the exact walk runs only on suspicious bodies.
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(doc) > MAX_DEPTH:
        _fail("too_deep", f"nesting deeper than {MAX_DEPTH}")
    if "\\u" in text and _SURROGATE_ESCAPE_RE.search(text):
        try:
            json.dumps(doc, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            _fail("invalid_unicode", "a string holds a lone surrogate escape")
    if type(doc) is not dict:
        _fail("not_an_object", f"the body is a JSON {type(doc).__name__}, not an object")
    return doc


def _get(doc: dict[str, Any], field: str) -> Any:
    try:
        return doc[field]
    except KeyError:
        _fail("missing_field", f"{field} is required", field)


def _string(doc: dict[str, Any], field: str) -> str:
    v = _get(doc, field)
    if type(v) is not str:
        _fail("wrong_type", f"{field} must be a string", field)
    return v


def _nonempty(doc: dict[str, Any], field: str) -> str:
    v = _string(doc, field)
    if not v:
        _fail("empty_string", f"{field} must not be empty", field)
    return v


def _integer(doc: dict[str, Any], field: str) -> int:
    v = _get(doc, field)
    if type(v) is not int:  # bool is an int subclass, and 1.0 is a float token: both refused
        _fail("wrong_type", f"{field} must be an integer token, got {type(v).__name__}", field)
    return v


def _number(doc: dict[str, Any], field: str) -> float:
    v = _get(doc, field)
    t = type(v)
    if t is float:
        return v  # type: ignore[no-any-return]
    if t is int:
        return float(v)  # SPEC §1: an integer token means the float
    _fail("wrong_type", f"{field} must be a number", field)


def _sent_at(doc: dict[str, Any]) -> str:
    v = _string(doc, "sent_at")
    m = _RFC3339_RE.fullmatch(v)
    if m is None:
        _fail("invalid_sent_at", f"sent_at {v[:40]!r} is not an RFC 3339 date-time", "sent_at")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    ok = (
        1 <= month <= 12
        and 1 <= day <= calendar.monthrange(year, month)[1]
        and hour <= 23
        and minute <= 59
        and second <= 60  # a leap second
    )
    if m.group(7) is not None:
        ok = ok and int(m.group(7)) <= 23 and int(m.group(8)) <= 59
    if not ok:
        _fail("invalid_sent_at", f"sent_at {v!r} is not a valid date-time", "sent_at")
    return v


def _ft(doc: dict[str, Any]) -> FaultTolerance | None:
    ft = doc.get("ft")
    if ft is None:  # absent, or null from a client that serialises None: both mean "no ft"
        return None
    if type(ft) is not dict:
        _fail("wrong_type", "ft must be an object", "ft")
    seq, degraded, fallbacks, skew = (
        ft.get("outbox_seq"), ft.get("degraded"), ft.get("fallbacks"), ft.get("clock_skew_ms"),
    )
    if seq is not None and type(seq) is not int:
        _fail("wrong_type", "ft.outbox_seq must be an integer", "ft.outbox_seq")
    if degraded is not None and type(degraded) is not bool:
        _fail("wrong_type", "ft.degraded must be a boolean", "ft.degraded")
    if fallbacks is not None:
        if type(fallbacks) is not list or any(type(x) is not str for x in fallbacks):
            _fail("wrong_type", "ft.fallbacks must be an array of strings", "ft.fallbacks")
        fallbacks = tuple(fallbacks)
    if skew is not None and type(skew) is not int:
        _fail("wrong_type", "ft.clock_skew_ms must be an integer", "ft.clock_skew_ms")
    return FaultTolerance(seq, degraded, fallbacks, skew)


def _slow_record(doc: dict[str, Any]) -> PCSRecord:
    """Field rules of SPEC §1, one at a time in the SPEC table's order: the first broken rule
    names the error. Used when the fast path below says "something is wrong".

    Document-wide rules come first (the number bound), then the fields.
    """
    _check_numbers(doc)
    pcs_id = _string(doc, "pcs_id")
    if _PCS_ID_RE.fullmatch(pcs_id) is None:
        _fail("invalid_pcs_id", "pcs_id must be 64 lowercase hex characters", "pcs_id")
    schema = _string(doc, "schema")
    version = _string(doc, "version")
    if version != VERSION:
        _fail("unsupported_version", f"version {version[:20]!r} is not {VERSION!r}", "version")
    shard_id = _nonempty(doc, "shard_id")
    epoch = _integer(doc, "epoch")
    if not 0 <= epoch < _EPOCH_LIMIT:
        _fail("epoch_out_of_range", f"epoch {epoch} is not in [0, 2^53)", "epoch")
    attempt = _integer(doc, "attempt")
    if attempt < 1:
        _fail("attempt_out_of_range", f"attempt {attempt} must be ≥ 1", "attempt")
    sent_at = _sent_at(doc)
    seed = _integer(doc, "seed")
    if not -_SEED_LIMIT < seed < _SEED_LIMIT:
        _fail("seed_out_of_range", f"|seed| {seed} must be < 2^53", "seed")
    scales = _get(doc, "scales")
    if type(scales) is not list:
        _fail("wrong_type", "scales must be an array of integers", "scales")
    if not scales:
        _fail("empty_scales", "scales must not be empty", "scales")
    for s in scales:
        if type(s) is not int:
            _fail("wrong_type", "scales must be an array of integers", "scales")
    n_j = _get(doc, "N_j")
    if type(n_j) is not dict:
        _fail("wrong_type", "N_j must be an object", "N_j")
    for k, v in n_j.items():
        if type(v) is not int:
            _fail("wrong_type", f"N_j[{k[:20]!r}] must be an integer", "N_j")
    coh_star = _number(doc, "coh_star")
    d_hat = _number(doc, "D_hat")
    r = _number(doc, "r")
    budget = _number(doc, "budget")
    v_star = _get(doc, "v_star")
    if type(v_star) is not list:
        _fail("wrong_type", "v_star must be an array of numbers", "v_star")
    for x in v_star:
        if type(x) is not float and type(x) is not int:
            _fail("wrong_type", "v_star must be an array of numbers", "v_star")
    regime = _string(doc, "regime")
    if regime not in REGIMES:
        _fail("invalid_regime", f"regime {regime[:20]!r} is not sticky, mixed or non_sticky",
              "regime")
    merkle_root = _nonempty(doc, "merkle_root")
    sig = doc.get("sig")
    sig_bytes = None
    if sig is not None:  # absent, null and "" all mean "no signature": a 401, not a 400
        if type(sig) is not str:
            _fail("wrong_type", "sig must be a string", "sig")
        if sig:
            sig_bytes = b64decode_strict(sig)
            if sig_bytes is None:
                _fail("invalid_signature_encoding",
                      "sig must be base64 (standard alphabet, padded)", "sig")
        else:
            sig = None
    return PCSRecord(
        pcs_id, schema, version, shard_id, epoch, attempt, sent_at, seed, tuple(scales), n_j,
        coh_star, d_hat, r, budget, tuple([float(x) for x in v_star]), regime, merkle_root,
        sig, sig_bytes, _ft(doc),
    )


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


def _fast_record(doc: dict[str, Any]) -> PCSRecord | None:
    """All field rules as one cheap conjunction; None if any rule might be broken (then
    `_slow_record` finds which). Returns exactly what `_slow_record` would."""
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
        and attempt >= 1
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
    # Numbers in unknown extra fields (the known ones were bounded above, ft just below).
    if not doc.keys() <= _KNOWN_FIELDS and _bad_number(
        [v for k, v in doc.items() if k not in _KNOWN_FIELDS]
    ) is not None:
        return None
    ft = doc.get("ft")
    ft_value = None
    if ft is not None:
        ft_value = _ft_fast(ft)
        if ft_value is None:
            return None
    return PCSRecord(
        pcs_id, schema, version, shard_id, epoch, attempt, sent_at, seed, tuple(scales), n_j,
        coh_star, d_hat, r, budget, tuple(map(float, v_star)), regime, merkle_root,
        sig, sig_bytes, ft_value,
    )


def record_from_object(doc: dict[str, Any]) -> PCSRecord:
    """Field rules of SPEC §1 on a JSON object from `load_json`; raises only MalformedError,
    naming the first broken rule in the SPEC table's order."""
    record = _fast_record(doc)
    if record is None:
        record = _slow_record(doc)
    return record


# Duplicate keys without the per-object hook (the hook costs more than the rest of the
# document-wide checks together). Every key token ends in `"` then optional whitespace then
# `:`. If no key has whitespace before its colon, text.count('":') = (key tokens) + (such pairs
# inside strings) ≥ key tokens ≥ keys kept by json.loads, with equality throughout only when
# nothing was dropped, i.e. no duplicates. Any doubt sends the body to the exact path.
_WS_BEFORE_COLON_RE: Final = re.compile(r'"[ \t\n\r]+:')


def _fast_parse(body: bytes) -> PCSRecord | None:
    """The whole of `parse` for the common, clean body; None means "use the exact path",
    never "malformed". Returns exactly what the exact path would."""
    if len(body) > MAX_BODY_BYTES:
        return None
    try:
        text = body.decode("utf-8")
        doc = _FAST_DECODER.decode(text)
    except (ValueError, RecursionError, MalformedError):  # UnicodeDecodeError is a ValueError
        return None
    if (
        type(doc) is not dict
        or text.count("{") + text.count("[") > MAX_DEPTH
        or ("\\u" in text and _SURROGATE_ESCAPE_RE.search(text) is not None)
        or not doc.keys() <= _KNOWN_FIELDS  # extras may hold objects whose keys we'd not count
    ):
        return None
    record = _fast_record(doc)
    if record is None:
        return None
    ft = doc.get("ft")
    keys = len(doc) + len(record.N_j) + (len(ft) if type(ft) is dict else 0)
    # Lists in a record accepted by _fast_record hold only numbers or strings, so doc, N_j and
    # ft are the only objects, unless ft has unknown members (then the count cannot match).
    if text.count('":') != keys or _WS_BEFORE_COLON_RE.search(text) is not None:
        return None
    return record


def parse(body: bytes) -> PCSRecord:
    """Raw request bytes → PCSRecord; raises only MalformedError (SPEC §1, HTTP 400)."""
    record = _fast_parse(body)
    if record is None:
        record = record_from_object(_load_json(body))
    return record
