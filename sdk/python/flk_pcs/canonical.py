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
    """True if the repr `s` of a finite float has no digit below 1e-9 (then quantizing to 9 dp
    is exact and the value is unchanged, since repr round-trips). Raises ValueError on
    inf/nan, whose reprs have neither "." nor "e"."""
    e = s.find("e")
    if e < 0:
        dot = s.find(".")
        if dot < 0:
            raise ValueError(f"a finite number is required, got {s}")
        return len(s) - dot <= 10
    dot = s.find(".", 0, e)
    frac_digits = 0 if dot < 0 else e - dot - 1
    return frac_digits - int(s[e + 1 :]) <= 9


def round9(x: float) -> float:
    """SPEC §2.2: round to 9 decimals, half away from zero, on the shortest repr of `x`.

    Equals `float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP))` (property-tested
    against exactly that in tests/test_pcs_canonical.py). Requires a finite float.
    """
    s = float.__repr__(x)
    # Fast path, no Decimal: every record an SDK signs carries already-rounded values.
    if _exact_at_9dp(s):
        return x
    return float(Decimal(s).quantize(_NINE_DP, rounding=ROUND_HALF_UP, context=_CTX))


def canonical_number(x: float) -> str:
    """round9 then repr (SPEC §2.2–2.3): the text of one signed number in the payload."""
    s = float.__repr__(x)
    if _exact_at_9dp(s):
        return s
    return float.__repr__(
        float(Decimal(s).quantize(_NINE_DP, rounding=ROUND_HALF_UP, context=_CTX))
    )


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
    return (
        f'{{"D_hat":{canonical_number(float(D_hat))}'
        f',"budget":{canonical_number(float(budget))}'
        f',"coh_star":{canonical_number(float(coh_star))}'
        f',"epoch":{int.__repr__(epoch)}'
        f',"merkle_root":{encode_basestring_ascii(merkle_root)}'
        f',"pcs_id":{encode_basestring_ascii(pcs_id)}'
        f',"r":{canonical_number(float(r))}'
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
