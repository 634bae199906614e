package pcs

import (
	"fmt"
	"math"
	"sort"
	"strconv"
)

// Policy holds the verification parameters of SPEC §3. The JSON names are those of the
// policy document and of the vector file's overrides.
type Policy struct {
	TolD          float64 `json:"tol_D"`
	TolCoh        float64 `json:"tol_coh"`
	TolBudget     float64 `json:"tol_budget"`
	Alpha         float64 `json:"alpha"`
	Beta          float64 `json:"beta"`
	Gamma         float64 `json:"gamma"`
	Base          float64 `json:"base"`
	D0            float64 `json:"D0"`
	StickyCohMin  float64 `json:"sticky_coh_min"`
	StickyDMax    float64 `json:"sticky_D_max"`
	NonStickyDMin float64 `json:"non_sticky_D_min"`
}

// DefaultPolicy returns SPEC §3's defaults.
func DefaultPolicy() Policy {
	return Policy{
		TolD: 0.15, TolCoh: 0.05, TolBudget: 0.01,
		Alpha: 0.30, Beta: 0.50, Gamma: 0.20, Base: 0.10, D0: 2.2,
		StickyCohMin: 0.70, StickyDMax: 1.5, NonStickyDMin: 2.6,
	}
}

// PolicyError names the policy field and the bound it breaks.
type PolicyError struct {
	Field  string
	Value  float64
	Detail string
}

func (e *PolicyError) Error() string {
	return fmt.Sprintf("pcs: policy field %q = %s: %s", e.Field, FormatFloat(e.Value), e.Detail)
}

// Validate checks the bounds of SPEC §3: tolD ∈ [0,1], tolCoh ∈ [0,0.2], weights ≥ 0
// with α+β+γ ≤ 1, base ∈ [0,1], D0 ∈ [0,3], sticky D̂ max < non-sticky D̂ min.
func (p Policy) Validate() error {
	in := func(name string, v, lo, hi float64) error {
		if math.IsNaN(v) || v < lo || v > hi {
			return &PolicyError{name, v, fmt.Sprintf("must be in [%s, %s]", FormatFloat(lo), FormatFloat(hi))}
		}
		return nil
	}
	checks := []error{
		in("tol_D", p.TolD, 0, 1),
		in("tol_coh", p.TolCoh, 0, 0.2),
		in("tol_budget", p.TolBudget, 0, 1),
		in("alpha", p.Alpha, 0, 1),
		in("beta", p.Beta, 0, 1),
		in("gamma", p.Gamma, 0, 1),
		in("base", p.Base, 0, 1),
		in("D0", p.D0, 0, 3),
		in("sticky_coh_min", p.StickyCohMin, 0, 1),
		in("sticky_D_max", p.StickyDMax, 0, 3.5),
		in("non_sticky_D_min", p.NonStickyDMin, 0, 3.5),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	if s := p.Alpha + p.Beta + p.Gamma; s > 1 {
		return &PolicyError{"alpha+beta+gamma", s, "must be at most 1"}
	}
	if p.StickyDMax >= p.NonStickyDMin {
		return &PolicyError{"sticky_D_max", p.StickyDMax, "must be below non_sticky_D_min " + FormatFloat(p.NonStickyDMin)}
	}
	return nil
}

// round9 is Round9 for values already known to be finite.
func round9(x float64) float64 {
	v, err := Round9(x)
	if err != nil {
		return x
	}
	return v
}

// TheilSenDHat recomputes D̂ (SPEC §3 step 4): points (log2(scale), log2(N_j[str(scale)]))
// in the order of scales, the slope of every pair i<j with |Δx| ≥ 1e-9, sorted, the upper
// median slopes[n/2], rounded to 9 places. ok is false when no pair qualifies or a scale
// has no positive N_j entry.
func TheilSenDHat(scales []int64, nj map[string]int64) (dhat float64, ok bool) {
	xs := make([]float64, len(scales))
	ys := make([]float64, len(scales))
	for i, s := range scales {
		n, present := nj[strconv.FormatInt(s, 10)]
		if s <= 0 || !present || n <= 0 {
			return 0, false
		}
		xs[i], ys[i] = math.Log2(float64(s)), math.Log2(float64(n))
	}
	var slopes []float64
	for i := range xs {
		for j := i + 1; j < len(xs); j++ {
			dx := xs[j] - xs[i]
			if math.Abs(dx) >= 1e-9 {
				slopes = append(slopes, float64(ys[j]-ys[i])/dx)
			}
		}
	}
	if len(slopes) == 0 {
		return 0, false
	}
	sort.Float64s(slopes)
	return round9(slopes[len(slopes)/2]), true
}

// RegimeFor classifies claimed values (SPEC §3 step 5): sticky if coh★ ≥ sticky_coh_min
// and D̂ ≤ sticky_D_max; else non_sticky if D̂ ≥ non_sticky_D_min; else mixed.
func RegimeFor(dhat, cohStar float64, p Policy) string {
	switch {
	case cohStar >= p.StickyCohMin && dhat <= p.StickyDMax:
		return RegimeSticky
	case dhat >= p.NonStickyDMin:
		return RegimeNonSticky
	default:
		return RegimeMixed
	}
}

// BudgetFor is clamp[0,1](base + α(1−r) + β·max(0, D̂−D0) + γ·coh★), rounded to 9 places
// (SPEC §3 step 6). The explicit float64 conversions forbid fused multiply-adds, so the
// sum is the same double Python computes left to right.
func BudgetFor(dhat, cohStar, r float64, p Policy) float64 {
	b := p.Base + float64(p.Alpha*float64(1-r)) + float64(p.Beta*math.Max(0, dhat-p.D0)) + float64(p.Gamma*cohStar)
	return round9(math.Min(1, math.Max(0, b)))
}
