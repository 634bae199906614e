import { round9 } from "./canonical.js";
import { PolicyError } from "./errors.js";

/** The verification parameters of SPEC §3 (names as in the policy document). */
export interface Policy {
  tol_D: number;
  tol_coh: number;
  tol_budget: number;
  alpha: number;
  beta: number;
  gamma: number;
  base: number;
  D0: number;
  sticky_coh_min: number;
  sticky_D_max: number;
  non_sticky_D_min: number;
}

/** SPEC §3's default policy. */
export const DEFAULT_POLICY: Readonly<Policy> = Object.freeze({
  tol_D: 0.15,
  tol_coh: 0.05,
  tol_budget: 0.01,
  alpha: 0.3,
  beta: 0.5,
  gamma: 0.2,
  base: 0.1,
  D0: 2.2,
  sticky_coh_min: 0.7,
  sticky_D_max: 1.5,
  non_sticky_D_min: 2.6,
});

const RANGES: Partial<Record<keyof Policy, [number, number]>> = {
  tol_D: [0, 1],
  tol_coh: [0, 0.2],
  tol_budget: [0, 1],
  base: [0, 1],
  D0: [0, 3],
  sticky_coh_min: [0, 1],
  sticky_D_max: [0, 3.5],
  non_sticky_D_min: [0, 3.5],
};

/**
 * The default policy with `overrides` applied, checked against SPEC §3's bounds; a
 * PolicyError names the first field out of bounds.
 */
export function makePolicy(overrides: Partial<Policy> | null = null): Policy {
  const p: Policy = { ...DEFAULT_POLICY, ...(overrides ?? {}) };
  for (const [name, v] of Object.entries(p) as [keyof Policy, number][]) {
    if (!(name in DEFAULT_POLICY)) throw new PolicyError(name, "unknown field");
    if (typeof v !== "number" || !Number.isFinite(v)) throw new PolicyError(name, `${String(v)} is not a finite number`);
    const r = RANGES[name];
    if (r !== undefined && !(v >= r[0] && v <= r[1])) throw new PolicyError(name, `${v} is outside [${r[0]}, ${r[1]}]`);
  }
  for (const w of ["alpha", "beta", "gamma"] as const) {
    if (p[w] < 0) throw new PolicyError(w, `${p[w]} must be ≥ 0`);
  }
  if (p.alpha + p.beta + p.gamma > 1) throw new PolicyError("alpha", "alpha + beta + gamma must be ≤ 1");
  if (!(p.sticky_D_max < p.non_sticky_D_min)) {
    throw new PolicyError("sticky_D_max", `${p.sticky_D_max} must be < non_sticky_D_min ${p.non_sticky_D_min}`);
  }
  return p;
}

/**
 * D̂ recomputed as SPEC §3 step 4 says: points (log2(scale), log2(N_j[String(scale)])) in the
 * order of `scales`, the slope of every pair i<j with |Δx| ≥ 1e-9, sorted, the upper median
 * `slopes[n >> 1]`, rounded to 9 places. null when no pair qualifies or a scale lacks a
 * positive N_j entry.
 */
export function theilSenDHat(scales: readonly number[], nj: Readonly<Record<string, number>>): number | null {
  const pts: [number, number][] = [];
  for (const s of scales) {
    const n = Object.hasOwn(nj, String(s)) ? nj[String(s)] : undefined;
    if (!(s > 0) || n === undefined || !(n > 0)) return null;
    pts.push([Math.log2(s), Math.log2(n)]);
  }
  const slopes: number[] = [];
  for (let i = 0; i < pts.length; i++) {
    for (let j = i + 1; j < pts.length; j++) {
      const [xi, yi] = pts[i]!;
      const [xj, yj] = pts[j]!;
      if (Math.abs(xj - xi) >= 1e-9) slopes.push((yj - yi) / (xj - xi));
    }
  }
  if (slopes.length === 0) return null;
  slopes.sort((a, b) => a - b);
  return round9(slopes[slopes.length >> 1]!);
}

export type Regime = "sticky" | "mixed" | "non_sticky";

/** SPEC §3 step 5, from the claimed D_hat and coh_star. */
export function regimeFor(dHat: number, cohStar: number, p: Policy = DEFAULT_POLICY): Regime {
  if (cohStar >= p.sticky_coh_min && dHat <= p.sticky_D_max) return "sticky";
  if (dHat >= p.non_sticky_D_min) return "non_sticky";
  return "mixed";
}

/**
 * SPEC §3 step 6: clamp[0,1](base + α(1−r) + β·max(0, D̂−D0) + γ·coh★) rounded to 9 places,
 * evaluated left to right exactly as the Python core does.
 */
export function budgetFor(dHat: number, cohStar: number, r: number, p: Policy = DEFAULT_POLICY): number {
  const b = p.base + p.alpha * (1 - r) + p.beta * Math.max(0, dHat - p.D0) + p.gamma * cohStar;
  return round9(Math.min(1, Math.max(0, b)));
}
