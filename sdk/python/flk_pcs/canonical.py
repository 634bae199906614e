from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Context, Decimal
from json.encoder import encode_basestring_ascii
from typing import Any, Final

from .errors import MalformedError

# SPEC §2.1: exactly these fields are signed; everything else in a record is not.
SIGNED_FIELDS: Final = (
    "pcs_id", "merkle_root", "epoch", "shard_id", "D_hat", "coh_star", "r", "budget",
)
NUMBER_FIELDS: Final = ("D_hat", "coh_star", "r", "budget")

_NINE_DP: Final = Decimal("1e-9")
# Large enough that quantize never overflows the coefficient for any finite double
# (max ~1.8e308 → 309 integer digits + 9 fraction digits); the default context (28 digits)
# would raise for |x| ≥ 1e19.
_CTX: Final = Context(prec=400)


def _exact_at_9dp(s: str) -> bool:
    """True when the repr `s` has no digit below 1e-9: the quantize is then exact and the
    value unchanged, since repr round-trips. Every record an SDK signs is in this case (SDKs
    put rounded values on the wire), so the hot path never reaches Decimal."""
    e = s.find("e")
    if e < 0:
        dot = s.find(".")
        if dot < 0:  # only "inf", "-inf" and "nan" have neither "." nor "e"
            raise ValueError(f"a finite number is required, got {s}")
        return len(s) - dot <= 10  # positional, at most 9 fraction digits
    dot = s.find(".", 0, e)
    frac_digits = 0 if dot < 0 else e - dot - 1
    return frac_digits - int(s[e + 1 :]) <= 9


def _quantize(s: str) -> float:
    """round9 of the float whose repr is `s`, when `s` has digits below 1e-9.

    Positional reprs (the computed D̂ and budget, |x| in [1e-4, 1e16)) are rounded on the
    digit string: the first dropped digit decides (half up = away from zero, on the decimal
    text), and float() of a decimal string is correctly rounded, like float() of the Decimal.
    Exponent forms take the SPEC's Decimal formula itself.
    """
    if "e" not in s:
        dot = s.index(".")
        cut = dot + 10
        if s[cut] < "5":
            return float(s[:cut])
        neg = s[0] == "-"
        digits = s[neg:dot] + s[dot + 1 : cut]
        return float(f"{'-' if neg else ''}{int(digits) + 1}e-9")
    return float(Decimal(s).quantize(_NINE_DP, rounding=ROUND_HALF_UP, context=_CTX))


def round9(x: float) -> float:
    """SPEC §2.2: round to 9 decimals, half away from zero, on the shortest repr of `x`.

    Equals `float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))`
    (property-tested against exactly that in tests/test_pcs_canonical.py), with a fast path
    that skips Decimal when nothing needs rounding. Requires a finite float.
    """
    s = float.__repr__(x)
    if "e" in s or "n" in s:  # exponent form, or inf/nan (which _exact_at_9dp refuses)
        return x if _exact_at_9dp(s) else _quantize(s)
    # Positional: `_exact_at_9dp` and the positional branch of `_quantize`, inlined.
    dot = s.index(".")
    cut = dot + 10
    if len(s) <= cut:
        return x
    if s[cut] < "5":
        return float(s[:cut])
    neg = s[0] == "-"
    digits = s[neg:dot] + s[dot + 1 : cut]
    return float(f"{'-' if neg else ''}{int(digits) + 1}e-9")


def canonical_number(x: float) -> str:
    """round9 then repr (SPEC §2.2–2.3): the text of one signed number in the payload."""
    s = float.__repr__(x)
    if "e" in s or "n" in s:  # exponent form, or inf/nan (which _exact_at_9dp refuses)
        return s if _exact_at_9dp(s) else float.__repr__(_quantize(s))
    return s if len(s) <= s.index(".") + 10 else float.__repr__(_quantize(s))


def round9_decimal(x: float) -> float:
    """The SPEC's formula itself, with a context wide enough for every double (the default
    28 digits overflow for |x| ≥ 1e19). Slow; kept as the reference for tests and tools."""
    return float(Decimal(repr(x)).quantize(_NINE_DP, rounding=ROUND_HALF_UP, context=_CTX))


def format_float(x: float) -> str:
    """SPEC §2.3: floats print exactly as Python's repr (shortest round trip)."""
    return float.__repr__(x)


def encode_string(s: str) -> str:
    """SPEC §2.3: ASCII-only JSON string; 0x7F and everything outside 0x20–0x7E is `\\uXXXX`.

    This is the C accelerated encoder behind `json.dumps(ensure_ascii=True)`, which escapes
    exactly the characters the SPEC lists, with lowercase hex and surrogate pairs.
    """
    return encode_basestring_ascii(s)


def _valid_unicode(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def signing_payload(
    pcs_id: str,
    merkle_root: str,
    epoch: int,
    shard_id: str,
    D_hat: float,
    coh_star: float,
    r: float,
    budget: float,
) -> bytes:
    """The canonical payload bytes of SPEC §2 (keys sorted by code point: `D_hat` first).

    Integers given for the four numbers are converted to floats (an integer token means the
    float, SPEC §1). Strings must be valid Unicode (no lone surrogates).
    """
    for name, v in (("D_hat", D_hat), ("coh_star", coh_star), ("r", r), ("budget", budget)):
        if type(v) is not float:
            if type(v) is int:
                continue
            raise MalformedError("wrong_type", f"{name} must be a number", name)
        if not math.isfinite(v):
            raise MalformedError("non_finite_number", f"{name} must be finite", name)
    if type(epoch) is not int:
        raise MalformedError("wrong_type", "epoch must be an integer", "epoch")
    for name, s in (("pcs_id", pcs_id), ("merkle_root", merkle_root), ("shard_id", shard_id)):
        if type(s) is not str:
            raise MalformedError("wrong_type", f"{name} must be a string", name)
    if not (pcs_id.isascii() and merkle_root.isascii() and shard_id.isascii()):
        for name, s in (("pcs_id", pcs_id), ("merkle_root", merkle_root), ("shard_id", shard_id)):
            if not _valid_unicode(s):
                raise MalformedError("invalid_unicode", f"{name} is not valid Unicode", name)
    return _payload(pcs_id, merkle_root, epoch, shard_id, float(D_hat), float(coh_star),
                    float(r), float(budget))


def _payload(pcs_id: str, merkle_root: str, epoch: int, shard_id: str, D_hat: float,
             coh_star: float, r: float, budget: float) -> bytes:
    """signing_payload without the argument checks, for callers that hold a parsed record
    (types and Unicode already enforced by the parser)."""
    # canonical_number's common case inlined: a positional repr (no "e"; "n" would be inf or
    # nan, which canonical_number refuses) with at most 9 decimals is the canonical text.
    rep = float.__repr__
    d, b, c, q = rep(D_hat), rep(budget), rep(coh_star), rep(r)
    joined = d + b + c + q
    if not (
        "e" not in joined and "n" not in joined
        and len(d) - d.index(".") <= 10 and len(b) - b.index(".") <= 10
        and len(c) - c.index(".") <= 10 and len(q) - q.index(".") <= 10
    ):
        d, b, c, q = (canonical_number(D_hat), canonical_number(budget),
                      canonical_number(coh_star), canonical_number(r))
    return (
        f'{{"D_hat":{d}'
        f',"budget":{b}'
        f',"coh_star":{c}'
        f',"epoch":{int.__repr__(epoch)}'
        f',"merkle_root":{encode_basestring_ascii(merkle_root)}'
        f',"pcs_id":{encode_basestring_ascii(pcs_id)}'
        f',"r":{q}'
        f',"shard_id":{encode_basestring_ascii(shard_id)}}}'
    ).encode("ascii")


def payload_of(pcs: Mapping[str, Any]) -> bytes:
    """`signing_payload` of the 8 signed fields of a mapping (a record dict or golden vector)."""
    try:
        return signing_payload(
            pcs["pcs_id"], pcs["merkle_root"], pcs["epoch"], pcs["shard_id"],
            pcs["D_hat"], pcs["coh_star"], pcs["r"], pcs["budget"],
        )
    except KeyError as exc:
        field = str(exc.args[0])
        raise MalformedError("missing_field", f"{field} is required", field) from None


def compute_pcs_id(merkle_root: str, epoch: int, shard_id: str) -> str:
    """SPEC §3: `sha256_hex(merkle_root + "|" + str(epoch) + "|" + shard_id)` over UTF-8."""
    text = merkle_root + "|" + int.__repr__(epoch) + "|" + shard_id
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
