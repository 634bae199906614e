from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from itertools import combinations

from .canonical import round9

_MIN_DX = 1e-9


def d_hat_from_counts(scales: Sequence[int], counts: Sequence[int]) -> float | None:
    """SPEC §3.4 with `counts[i] = N_j[str(scales[i])]`, every count > 0 (checked by callers).

    Points (log2 scale, log2 count) in the order given; the slope of every pair i<j with
    |Δx| ≥ 1e-9; sorted; `slopes[n // 2]` (the upper median); rounded to 9 dp. None when no
    pair is left (fewer than 2 distinct scales).
    """
    log2 = math.log2
    points = [(log2(s), log2(c)) for s, c in zip(scales, counts, strict=True)]
    slopes = [
        (yj - yi) / (xj - xi)
        for (xi, yi), (xj, yj) in combinations(points, 2)
        if abs(xj - xi) >= _MIN_DX
    ]
    if not slopes:
        return None
    slopes.sort()
    return round9(slopes[len(slopes) // 2])


def recompute_d_hat(scales: Sequence[int], n_j: Mapping[str, int]) -> float | None:
    """D̂ of SPEC §3.4 from a record's scales and N_j (KeyError if a scale has no entry)."""
    return d_hat_from_counts(scales, [n_j[str(s)] for s in scales])
