"""The exact path of SPEC §1 parsing: every rule checked one at a time, in a fixed order, so
the first broken rule names the error. `parsing.parse` runs a fast path first and comes here
whenever that path has any doubt."""

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
