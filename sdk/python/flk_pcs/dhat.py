from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from .canonical import round9

_MIN_DX = 1e-9


def recompute_d_hat(scales: Sequence[int], n_j: Mapping[str, int]) -> float | None:
    """SPEC §3.4: Theil–Sen slope of (log2 scale, log2 N_j[str(scale)]), rounded to 9 dp.

    Points follow the order of `scales`; pairs i<j with |Δx| < 1e-9 are skipped; the slopes are
    sorted and `slopes[n // 2]` (the upper median) is taken. None when no pair remains (fewer
    than 2 distinct scales). Requires N_j[str(s)] > 0 for every scale (checked by the engine
    first; a missing or non-positive entry raises KeyError or ValueError here).
    """
    log2 = math.log2
    points = [(log2(s), log2(n_j[str(s)])) for s in scales]
    slopes = [
        (yj - yi) / (xj - xi)
        for i, (xi, yi) in enumerate(points)
        for xj, yj in points[i + 1 :]
        if abs(xj - xi) >= _MIN_DX
    ]
    if not slopes:
        return None
    slopes.sort()
    return round9(slopes[len(slopes) // 2])
