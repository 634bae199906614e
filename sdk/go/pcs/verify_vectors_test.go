package pcs

import (
	"encoding/json"
	"testing"
)

type verificationVector struct {
	Name         string          `json:"name"`
	Tenant       string          `json:"tenant"`
	Keys         json.RawMessage `json:"keys"`
	ReceivedAtMs int64           `json:"received_at_ms"`
	Policy       json.RawMessage `json:"policy"`
	Body         json.RawMessage `json:"body"`
	BodyText     *string         `json:"body_text"`
	Expect       struct {
		HTTPStatus       int      `json:"http_status"`
		Status           Status   `json:"status"`
		Accepted         bool     `json:"accepted"`
		Escalated        bool     `json:"escalated"`
		Reason           *string  `json:"reason"`
		RecomputedDHat   *float64 `json:"recomputed_D_hat"`
		RecomputedBudget *float64 `json:"recomputed_budget"`
		Regime           *string  `json:"regime"`
	} `json:"expect"`
}

func ptrEq(a, b *float64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func TestVerificationVectors(t *testing.T) {
	doc := loadVectors(t)
	if len(doc.Verification) == 0 {
		t.Fatal("no verification vectors")
	}
	failures := 0
	for _, v := range doc.Verification {
		t.Run(v.Name, func(t *testing.T) {
			defer func() {
				if t.Failed() {
					failures++
				}
			}()
			ks, err := ParseKeySet(v.Keys)
			if err != nil {
				t.Fatal(err)
			}
			p := DefaultPolicy()
			if len(v.Policy) > 0 && string(v.Policy) != "null" {
				if err := json.Unmarshal(v.Policy, &p); err != nil {
					t.Fatal(err)
				}
				if err := p.Validate(); err != nil {
					t.Fatal(err)
				}
			}
			body := []byte(v.Body)
			if v.BodyText != nil {
				body = []byte(*v.BodyText)
			}
			got := Evaluate(body, v.Tenant, v.ReceivedAtMs, ks, p)
			e := v.Expect
			reason := ""
			if e.Reason != nil {
				reason = *e.Reason
			}
			regime := ""
			if e.Regime != nil {
				regime = *e.Regime
			}
			if got.HTTPStatus != e.HTTPStatus || got.Status != e.Status || got.Accepted != e.Accepted ||
				got.Escalated != e.Escalated || got.Reason != reason || got.Regime != regime ||
				!ptrEq(got.RecomputedDHat, e.RecomputedDHat) || !ptrEq(got.RecomputedBudget, e.RecomputedBudget) {
				gj, _ := json.Marshal(got)
				ej, _ := json.Marshal(e)
				t.Errorf("\n got %s\nwant %s", gj, ej)
			}
		})
	}
	if failures > 0 {
		t.Errorf("%d out of %d verification vectors failed", failures, len(doc.Verification))
	}
}
