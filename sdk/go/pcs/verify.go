package pcs

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// Key is one signing key of a tenant, valid for receive stamps in
// [ValidFromMs, ValidUntilMs) (a nil ValidUntilMs is open): SPEC §2 step 6, rotation.
type Key struct {
	KeyID        string `json:"key_id"`
	Alg          string `json:"alg"`
	Secret       string `json:"secret,omitempty"`     // hmac: the UTF-8 secret
	PublicKey    string `json:"public_key,omitempty"` // ed25519: base64 of 32 bytes
	ValidFromMs  int64  `json:"valid_from_ms"`
	ValidUntilMs *int64 `json:"valid_until_ms"`

	verifier Verifier
}

// KeySet is the key-set document of the Python core:
// {"keyset_format": 1, "tenants": {name: {"keys": [Key, ...]}}}.
type KeySet struct {
	Tenants map[string][]Key
}

// ParseKeySet reads a key-set document (JSON).
func ParseKeySet(doc []byte) (*KeySet, error) {
	var raw struct {
		Format  *int `json:"keyset_format"`
		Tenants map[string]struct {
			Keys []Key `json:"keys"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		return nil, &ValueError{Field: "keyset", Value: truncate(string(doc), 40), Reason: err.Error()}
	}
	if raw.Format != nil && *raw.Format != 1 {
		return nil, &ValueError{Field: "keyset_format", Value: fmt.Sprint(*raw.Format), Reason: "this library reads 1"}
	}
	ks := &KeySet{Tenants: map[string][]Key{}}
	for tenant, t := range raw.Tenants {
		for i, k := range t.Keys {
			where := fmt.Sprintf("tenants.%s.keys[%d]", tenant, i)
			switch k.Alg {
			case AlgHMAC:
				if k.Secret == "" {
					return nil, &ValueError{Field: where + ".secret", Value: `""`, Reason: "an hmac key needs a secret"}
				}
				k.verifier = HMACKey{Secret: k.Secret}
			case AlgEd25519:
				pub, err := ParseEd25519PublicKey(k.PublicKey)
				if err != nil {
					return nil, field(where+".public_key", err)
				}
				k.verifier = pub
			default:
				return nil, &ValueError{Field: where + ".alg", Value: k.Alg, Reason: "not hmac or ed25519"}
			}
			t.Keys[i] = k
		}
		ks.Tenants[tenant] = t.Keys
	}
	return ks, nil
}

func (k Key) usableAt(ms int64) bool {
	return k.ValidFromMs <= ms && (k.ValidUntilMs == nil || ms < *k.ValidUntilMs)
}

// The 401 reasons of SPEC §3 step 2, as the Python core names them.
const (
	ReasonUnknownTenant    = "unknown_tenant"
	ReasonMissingSignature = "missing_signature"
	ReasonNoValidKey       = "no_valid_key"
	ReasonBadSignature     = "bad_signature"
)

// Check reports which key of tenant, usable at the receive stamp atMs, verifies sig over
// s; otherwise the 401 reason. Keys are tried in document order.
func (ks *KeySet) Check(tenant string, atMs int64, s Signed, sig string) (keyID, reason string) {
	keys, ok := ks.Tenants[tenant]
	if !ok {
		return "", ReasonUnknownTenant
	}
	if sig == "" {
		return "", ReasonMissingSignature
	}
	d, err := Digest(s)
	if err != nil {
		return "", ReasonBadSignature
	}
	usable := false
	for _, k := range keys {
		if k.usableAt(atMs) {
			usable = true
			if k.verifier.VerifyDigest(d, sig) {
				return k.KeyID, ""
			}
		}
	}
	if usable {
		return "", ReasonBadSignature
	}
	return "", ReasonNoValidKey
}

// Verdict is the result of verification (SPEC §3) without dedup.
type Verdict struct {
	HTTPStatus       int      `json:"http_status"` // 200, 202, or 400/401 for a rejection
	Status           Status   `json:"status"`      // accepted | escalated | rejected
	Accepted         bool     `json:"accepted"`
	Escalated        bool     `json:"escalated"`
	Reason           string   `json:"reason,omitempty"`
	RecomputedDHat   *float64 `json:"recomputed_D_hat"`
	RecomputedBudget *float64 `json:"recomputed_budget"`
	Regime           string   `json:"regime,omitempty"`
	KeyID            string   `json:"key_id,omitempty"`
}

const (
	maxScale = 1024
	maxDHat  = 3.5
)

func scalesProblem(r *Record) string {
	distinct := map[int64]bool{}
	for _, s := range r.Scales {
		distinct[s] = true
	}
	if len(distinct) < 2 {
		return "too_few_scales"
	}
	for _, s := range r.Scales {
		if s < 1 || s > maxScale {
			return "scale_out_of_range"
		}
	}
	for _, s := range r.Scales {
		n, ok := r.NJ[fmt.Sprint(s)]
		if !ok {
			return "missing_N_j"
		}
		if n <= 0 {
			return "nonpositive_N_j"
		}
	}
	return ""
}

// Check is the local pre-check of SPEC §3 steps 4–7 on a parsed record: what the
// pipeline will decide for a first write that passed the signature check. The first
// failure wins; a failure of step 4 is accepted=false, escalated=true; a regime or budget
// disagreement is accepted=true, escalated=true; otherwise accepted (200).
// RecomputedDHat is set whenever the scales allow it; the budget and regime always.
func Check(r *Record, p Policy) Verdict {
	problem := scalesProblem(r)
	var dre *float64
	if problem == "" {
		if d, ok := TheilSenDHat(r.Scales, r.NJ); ok {
			dre = &d
		}
	}
	budget := BudgetFor(r.DHat, r.CohStar, r.R, p)
	v := Verdict{
		HTTPStatus: 202, Status: StatusEscalated, Escalated: true,
		RecomputedDHat: dre, RecomputedBudget: &budget, Regime: RegimeFor(r.DHat, r.CohStar, p),
	}
	switch {
	case r.Schema != Schema:
		v.Reason = "schema_mismatch"
	case r.PCSID != ComputePCSID(r.MerkleRoot, r.Epoch, r.ShardID):
		v.Reason = "pcs_id_mismatch"
	case problem != "":
		v.Reason = problem
	case !hex64.MatchString(r.MerkleRoot):
		v.Reason = "bad_merkle_root"
	case !(r.R >= 0 && r.R <= 1):
		v.Reason = "r_out_of_range"
	case !(r.Budget >= 0 && r.Budget <= 1):
		v.Reason = "budget_out_of_range"
	case !(r.DHat >= 0 && r.DHat <= maxDHat):
		v.Reason = "D_hat_out_of_range"
	case dre == nil || abs(r.DHat-*dre) > p.TolD:
		v.Reason = "D_hat_mismatch"
	case !(r.CohStar >= 0 && r.CohStar <= 1+p.TolCoh):
		v.Reason = "coh_star_out_of_range"
	}
	if v.Reason != "" {
		return v
	}
	v.Accepted = true
	switch {
	case r.Regime != v.Regime:
		v.Reason = "regime_mismatch"
	case abs(r.Budget-budget) > p.TolBudget:
		v.Reason = "budget_mismatch"
	default:
		v.HTTPStatus, v.Status, v.Escalated = 200, StatusAccepted, false
	}
	return v
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// Evaluate is SPEC §3 steps 1, 2 and 4–7 for one request body (no dedup, which needs
// the pipeline's state): 400 for a malformed body (Reason is the malformed code), 401
// when no key of tenant valid at receivedAtMs verifies the signature, else Check.
func Evaluate(body []byte, tenant string, receivedAtMs int64, ks *KeySet, p Policy) Verdict {
	r, err := ParseRecord(body)
	if err != nil {
		code := "malformed_json"
		if me, ok := err.(*MalformedRecordError); ok {
			code = me.Code
		}
		return Verdict{HTTPStatus: 400, Status: StatusRejected, Reason: code}
	}
	keyID, reason := ks.Check(tenant, receivedAtMs, r.Signed(), r.Sig)
	if reason != "" {
		return Verdict{HTTPStatus: 401, Status: StatusRejected, Reason: reason}
	}
	v := Check(r, p)
	v.KeyID = keyID
	return v
}

// BodySHA256 is the content hash of a body that every outcome carries (SPEC §2, §3).
func BodySHA256(body []byte) [32]byte { return sha256.Sum256(body) }
