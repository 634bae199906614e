package pcs

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Status is the status of an answer (SPEC §4).
type Status string

const (
	StatusAccepted  Status = "accepted"  // 200: verified, accepted
	StatusEscalated Status = "escalated" // 202: a semantic check failed or disagreed (SPEC §3 steps 4–6)
	StatusPending   Status = "pending"   // 202: the verdict is not known yet; poll Location
	StatusRejected  Status = "rejected"  // a polled request that ended in 400/401
)

// Outcome is the answer to a submission or a read (SPEC §4). A 202 is an Outcome, not
// an error: Escalated (accepted may still be true) or Pending (see Client.Wait).
type Outcome struct {
	RequestID        string      `json:"request_id"`
	Status           Status      `json:"status"`
	PCSID            string      `json:"pcs_id"`
	Tenant           string      `json:"tenant"`
	Accepted         bool        `json:"accepted"`
	Escalated        bool        `json:"escalated"`
	Reason           string      `json:"reason,omitempty"`
	RecomputedDHat   *float64    `json:"recomputed_D_hat,omitempty"`
	RecomputedBudget *float64    `json:"recomputed_budget,omitempty"`
	Regime           string      `json:"regime,omitempty"`
	DedupHit         bool        `json:"dedup_hit"`
	Conflict         bool        `json:"conflict,omitempty"`
	PolicyVersion    LooseString `json:"policy_version,omitempty"`
	Region           string      `json:"region,omitempty"`

	// HTTPStatus is 200 or 202; Location is the polling URL of a pending answer;
	// Endpoint is the base URL of the region that answered.
	HTTPStatus int    `json:"-"`
	Location   string `json:"-"`
	Endpoint   string `json:"-"`
}

// Pending reports whether the verdict is not known yet.
func (o *Outcome) Pending() bool { return o.Status == StatusPending }

// LooseString accepts a JSON string or number (a version may be either).
type LooseString string

func (s *LooseString) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		var v string
		if err := json.Unmarshal(b, &v); err != nil {
			return err
		}
		*s = LooseString(v)
		return nil
	}
	if bytes.Equal(b, []byte("null")) {
		*s = ""
		return nil
	}
	*s = LooseString(b)
	return nil
}

// maxAnswerBytes bounds how much of an answer is read: answers are small, and a broken
// proxy must not make the client buffer an unbounded body.
const maxAnswerBytes = 1 << 20

func readBody(resp *http.Response) []byte {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxAnswerBytes))
	return b
}

// parseRetryAfter reads Retry-After as delay-seconds or an HTTP-date; ok is false when
// the header is absent or unreadable.
func parseRetryAfter(h string, now time.Time) (time.Duration, bool) {
	if h == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(h, 64); err == nil && secs >= 0 {
		return time.Duration(secs * float64(time.Second)), true
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d, true
		}
		return 0, true
	}
	return 0, false
}

// errorAnswer builds the typed error of a non-2xx answer from its body
// {"error", "detail", "request_id"}; a body that is not that shape still yields the
// type for the status, with the body's start as detail.
func errorAnswer(resp *http.Response, body []byte, endpoint string, now time.Time) error {
	var er ErrorResponse
	if json.Unmarshal(body, &er) != nil || er.Code == "" {
		er = ErrorResponse{Code: http.StatusText(resp.StatusCode), Detail: truncate(string(body), 200)}
	}
	er.StatusCode = resp.StatusCode
	er.Endpoint = endpoint
	if er.RequestID == "" {
		er.RequestID = resp.Header.Get("X-Request-Id")
	}
	ra, _ := parseRetryAfter(resp.Header.Get("Retry-After"), now)
	return errorFor(er, ra)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
