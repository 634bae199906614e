"""A plain reference of SPEC §2–§3, written straight from the text and sharing no code with
flk_pcs: slow, obvious, and used only to cross-check the fast implementation and the vectors.
"""

from __future__ import annotations

import hashlib
import math
import re
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import Any

DEFAULTS = {
    "tol_D": 0.15, "tol_coh": 0.05, "tol_budget": 0.01, "alpha": 0.30, "beta": 0.50,
    "gamma": 0.20, "base": 0.10, "D0": 2.2, "sticky_coh_min": 0.70, "sticky_D_max": 1.5,
    "non_sticky_D_min": 2.6,
}


def round9(x: float) -> float:
    """SPEC §2.2, the formula as written (with a context wide enough for any double)."""
    return float(Decimal(repr(x)).quantize(Decimal("1e-9"), ROUND_HALF_UP,
                                           context=Context(prec=400)))


def shortest_digits(x: float) -> tuple[str, int]:
    """(digits, exponent) of the shortest decimal that reads back as |x|, nearest to it among
    those of that length: |x| = 0.d1d2… × 10^exp.

    For each length p, the candidates are the correctly rounded p-digit value and its two
    neighbours (at a power of two the round-trip interval is lopsided, so the nearest p-digit
    value may fail where its upper neighbour succeeds).
    """
    exact = Decimal(abs(x))
    for p in range(1, 18):
        rounded = Context(prec=p).plus(exact)
        step = Decimal(1).scaleb(rounded.adjusted() - p + 1)
        fits = [c for c in (rounded - step, rounded, rounded + step)
                if c > 0 and float(c) == abs(x)]
        if fits:
            # Nearest first; of two equally near, the even last digit (as repr, Go's
            # strconv and ECMAScript's Number::toString do): 562949953421312.75 → "…312.8".
            best = min(fits, key=lambda c: (abs(c - exact), int(c.normalize().as_tuple()
                                                                 .digits[-1]) % 2))
            _sign, digits, exp = best.normalize().as_tuple()
            text = "".join(map(str, digits))
            return text, exp + len(text)  # type: ignore[operator]
    raise AssertionError("17 digits always round-trip")


def format_float(x: float) -> str:
    """SPEC §2.3 printing rule, from the text: exponent form when the decimal exponent is
    < -4 or >= 16 (two-digit minimum exponent), otherwise positional with at least '.0'."""
    sign = "-" if math.copysign(1.0, x) < 0 else ""
    if x == 0:
        return sign + "0.0"
    digits, point = shortest_digits(x)  # value = 0.digits × 10^point
    sci_exp = point - 1
    if sci_exp < -4 or sci_exp >= 16:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        return f"{sign}{mantissa}e{'-' if sci_exp < 0 else '+'}{abs(sci_exp):02d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}.0"
    return f"{sign}{digits[:point]}.{digits[point:]}"


_SHORT_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
                  "\b": "\\b", "\f": "\\f"}


def encode_string(s: str) -> str:
    """SPEC §2.3 string rule, from the text."""
    out = ['"']
    for ch in s:
        cp = ord(ch)
        if ch in _SHORT_ESCAPES:
            out.append(_SHORT_ESCAPES[ch])
        elif 0x20 <= cp <= 0x7E:
            out.append(ch)
        elif cp > 0xFFFF:
            v = cp - 0x10000
            out.append(f"\\u{0xD800 + (v >> 10):04x}\\u{0xDC00 + (v & 0x3FF):04x}")
        else:
            out.append(f"\\u{cp:04x}")
    out.append('"')
    return "".join(out)


def payload(pcs: dict[str, Any]) -> str:
    parts = {
        "D_hat": format_float(round9(float(pcs["D_hat"]))),
        "budget": format_float(round9(float(pcs["budget"]))),
        "coh_star": format_float(round9(float(pcs["coh_star"]))),
        "epoch": str(int(pcs["epoch"])),
        "merkle_root": encode_string(pcs["merkle_root"]),
        "pcs_id": encode_string(pcs["pcs_id"]),
        "r": format_float(round9(float(pcs["r"]))),
        "shard_id": encode_string(pcs["shard_id"]),
    }
    return "{" + ",".join(f'"{k}":{parts[k]}' for k in sorted(parts)) + "}"


def pcs_id(merkle_root: str, epoch: int, shard_id: str) -> str:
    return hashlib.sha256((merkle_root + "|" + str(epoch) + "|" + shard_id).encode()).hexdigest()


def d_hat(scales: list[int], n_j: dict[str, int]) -> float | None:
    xs = [math.log2(s) for s in scales]
    ys = [math.log2(n_j[str(s)]) for s in scales]
    slopes = []
    for i in range(len(xs)):
        for j in range(i + 1, len(xs)):
            if abs(xs[j] - xs[i]) >= 1e-9:
                slopes.append((ys[j] - ys[i]) / (xs[j] - xs[i]))
    if not slopes:
        return None
    slopes = sorted(slopes)
    return round9(slopes[len(slopes) // 2])


def semantic(pcs: dict[str, Any], overrides: dict[str, float] | None) -> dict[str, Any]:
    """SPEC §3 steps 4–7 for an authenticated, well-formed first write."""
    p = dict(DEFAULTS, **(overrides or {}))
    D, coh, r, b = (float(pcs[k]) for k in ("D_hat", "coh_star", "r", "budget"))
    scales, n_j = pcs["scales"], pcs["N_j"]
    scales_ok = (
        len(set(scales)) >= 2
        and all(1 <= s <= 1024 for s in scales)
        and all(str(s) in n_j and n_j[str(s)] > 0 for s in scales)
    )
    recomputed = d_hat(scales, n_j) if scales_ok else None
    if coh >= p["sticky_coh_min"] and D <= p["sticky_D_max"]:
        regime = "sticky"
    elif D >= p["non_sticky_D_min"]:
        regime = "non_sticky"
    else:
        regime = "mixed"
    raw_budget = (p["base"] + p["alpha"] * (1 - r) + p["beta"] * max(0.0, D - p["D0"])
                  + p["gamma"] * coh)
    budget = round9(min(1.0, max(0.0, raw_budget)))
    reason = None
    accepted = False
    if pcs["schema"] != "fractal-lba-kakeya":
        reason = "schema_mismatch"
    elif pcs["pcs_id"] != pcs_id(pcs["merkle_root"], pcs["epoch"], pcs["shard_id"]):
        reason = "pcs_id_mismatch"
    elif len(set(scales)) < 2:
        reason = "too_few_scales"
    elif not all(1 <= s <= 1024 for s in scales):
        reason = "scale_out_of_range"
    elif not all(str(s) in n_j for s in scales):
        reason = "missing_N_j"
    elif not all(n_j[str(s)] > 0 for s in scales):
        reason = "nonpositive_N_j"
    elif not re.fullmatch(r"[0-9a-f]{64}", pcs["merkle_root"]):
        reason = "bad_merkle_root"
    elif not 0 <= r <= 1:
        reason = "r_out_of_range"
    elif not 0 <= b <= 1:
        reason = "budget_out_of_range"
    elif not 0 <= D <= 3.5:
        reason = "D_hat_out_of_range"
    elif abs(D - recomputed) > p["tol_D"]:  # type: ignore[operator]
        reason = "D_hat_mismatch"
    elif not 0 <= coh <= 1 + p["tol_coh"]:
        reason = "coh_star_out_of_range"
    else:
        accepted = True
        if pcs["regime"] != regime:
            reason = "regime_mismatch"
        elif abs(b - budget) > p["tol_budget"]:
            reason = "budget_mismatch"
    escalated = reason is not None
    return {
        "http_status": 202 if escalated else 200,
        "status": "escalated" if escalated else "accepted",
        "accepted": accepted,
        "escalated": escalated,
        "reason": reason,
        "recomputed_D_hat": recomputed,
        "recomputed_budget": budget,
        "regime": regime,
    }
