package pcs

import "encoding/json"

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
		Status           string   `json:"status"`
		Accepted         bool     `json:"accepted"`
		Escalated        bool     `json:"escalated"`
		Reason           *string  `json:"reason"`
		RecomputedDHat   *float64 `json:"recomputed_D_hat"`
		RecomputedBudget *float64 `json:"recomputed_budget"`
		Regime           *string  `json:"regime"`
	} `json:"expect"`
}
