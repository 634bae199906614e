package pcs

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// gateway is a scripted fake of one region's gateway (SPEC §4): /healthz answers
// health, and each POST /v1/pcs/submit takes the next answer of script.
type gateway struct {
	t      *testing.T
	mu     sync.Mutex
	health int
	script []answer
	seen   []*http.Request
	bodies [][]byte
	srv    *httptest.Server
}

type answer struct {
	status int
	body   string
	header map[string]string
}

func newGateway(t *testing.T, script ...answer) *gateway {
	g := &gateway{t: t, health: 200, script: script}
	g.srv = httptest.NewServer(http.HandlerFunc(g.serve))
	t.Cleanup(g.srv.Close)
	return g
}

func (g *gateway) serve(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if r.URL.Path == "/healthz" {
		w.WriteHeader(g.health)
		return
	}
	b, _ := io.ReadAll(r.Body)
	g.seen = append(g.seen, r)
	g.bodies = append(g.bodies, b)
	if len(g.script) == 0 {
		g.t.Errorf("unexpected request %s %s", r.Method, r.URL.Path)
		w.WriteHeader(500)
		return
	}
	a := g.script[0]
	g.script = g.script[1:]
	for k, v := range a.header {
		w.Header().Set(k, v)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

func (g *gateway) requests() []*http.Request {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]*http.Request{}, g.seen...)
}

const accepted = `{"request_id":"r1","status":"accepted","pcs_id":"p","tenant":"acme","accepted":true,"escalated":false,"regime":"mixed","recomputed_D_hat":2.0,"recomputed_budget":0.35,"dedup_hit":false,"policy_version":"v1","region":"eu"}`

// testClient returns a client whose sleeps are recorded, not slept, and whose jitter is
// the largest possible.
func testClient(t *testing.T, urls []string, opts ...Option) (*Client, *[]time.Duration) {
	t.Helper()
	c, err := NewClient(urls, append([]Option{WithTenant("acme"), WithReadToken("read-tok")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	var slept []time.Duration
	c.sleep = func(_ context.Context, d time.Duration) error { slept = append(slept, d); return nil }
	c.jitter = func(max time.Duration) time.Duration { return max }
	return c, &slept
}

func signedRecord(t *testing.T) *Record {
	t.Helper()
	r, err := Build(Input{
		ShardID: "shard-a", Epoch: 7, MerkleRoot: strings.Repeat("5f", 32),
		Scales: []int64{2, 4, 8, 16}, NJ: map[string]int64{"2": 4, "4": 16, "8": 64, "16": 256},
		CohStar: 0.5, R: 0.5, Seed: 42, SentAt: time.Date(2025, 6, 15, 12, 0, 0, 250e6, time.UTC),
	}, DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Sign(HMACKey{Secret: "acme-secret"}); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSubmitAccepted(t *testing.T) {
	g := newGateway(t, answer{status: 200, body: accepted})
	c, _ := testClient(t, []string{g.srv.URL})
	rec := signedRecord(t)
	o, err := c.Submit(context.Background(), rec)
	if err != nil {
		t.Fatal(err)
	}
	if o.Status != StatusAccepted || !o.Accepted || o.HTTPStatus != 200 || o.Region != "eu" || *o.RecomputedDHat != 2.0 {
		t.Errorf("outcome %+v", o)
	}
	req := g.requests()[0]
	if req.Method != "POST" || req.URL.Path != "/v1/pcs/submit" || req.Header.Get("X-Tenant-Id") != "acme" ||
		req.Header.Get("Content-Type") != "application/json" || len(req.Header.Get("X-Request-Id")) != 36 {
		t.Errorf("request %s %s %v", req.Method, req.URL.Path, req.Header)
	}
	// What was sent parses back to the same signed fields, and its signature verifies.
	back, err := ParseRecord(g.bodies[0])
	if err != nil {
		t.Fatal(err)
	}
	if back.Signed() != rec.Signed() || !Verify(back.Signed(), HMACKey{Secret: "acme-secret"}, back.Sig) {
		t.Errorf("sent record differs: %s", g.bodies[0])
	}
	if v := Check(back, DefaultPolicy()); v.HTTPStatus != 200 {
		t.Errorf("a built record fails the local check: %+v", v)
	}
}

func TestEscalatedAndPendingAreOutcomesNotErrors(t *testing.T) {
	g := newGateway(t,
		answer{status: 202, body: `{"request_id":"r2","status":"escalated","pcs_id":"p","tenant":"acme","accepted":true,"escalated":true,"reason":"regime_mismatch","dedup_hit":false,"policy_version":7,"region":"eu"}`},
		answer{status: 202, body: `{"request_id":"r3","status":"pending","pcs_id":"p","tenant":"acme","accepted":false,"escalated":false,"dedup_hit":false,"region":"eu"}`,
			header: map[string]string{"Location": "/v1/requests/r3"}},
	)
	c, _ := testClient(t, []string{g.srv.URL})
	o, err := c.Submit(context.Background(), signedRecord(t))
	if err != nil || o.Status != StatusEscalated || o.Reason != "regime_mismatch" || o.PolicyVersion != "7" {
		t.Fatalf("escalated: %+v, %v", o, err)
	}
	o, err = c.Submit(context.Background(), signedRecord(t), RespondAsync())
	if err != nil || !o.Pending() || o.Location != "/v1/requests/r3" {
		t.Fatalf("pending: %+v, %v", o, err)
	}
	if g.requests()[1].Header.Get("Prefer") != "respond-async" {
		t.Error("RespondAsync did not send Prefer: respond-async")
	}
}

func TestNoRetryOn400401413(t *testing.T) {
	cases := []struct {
		status int
		target any
	}{
		{400, new(*MalformedError)}, {401, new(*UnauthorizedError)}, {413, new(*TooLargeError)},
	}
	for _, tc := range cases {
		g := newGateway(t, answer{status: tc.status, body: `{"error":"some_code","detail":"field x","request_id":"rq"}`})
		c, slept := testClient(t, []string{g.srv.URL})
		_, err := c.Submit(context.Background(), signedRecord(t))
		if !errors.As(err, tc.target) {
			t.Fatalf("%d: error %T %v", tc.status, err, err)
		}
		var f APIFailure
		if !errors.As(err, &f) || f.Details().Code != "some_code" || f.Details().Detail != "field x" ||
			f.Details().RequestID != "rq" || f.Details().StatusCode != tc.status {
			t.Errorf("%d: details %+v", tc.status, f)
		}
		if n := len(g.requests()); n != 1 || len(*slept) != 0 {
			t.Errorf("%d: %d requests, slept %v; want 1 request, no retry", tc.status, n, *slept)
		}
	}
}

func TestRetryAfterIsHonouredAndRequestIDKept(t *testing.T) {
	g := newGateway(t,
		answer{status: 429, body: `{"error":"rate_limited","detail":"slow down"}`, header: map[string]string{"Retry-After": "3"}},
		answer{status: 503, body: `{"error":"backpressure","detail":"lag"}`, header: map[string]string{"Retry-After": "1"}},
		answer{status: 200, body: accepted},
	)
	c, slept := testClient(t, []string{g.srv.URL})
	if _, err := c.Submit(context.Background(), signedRecord(t)); err != nil {
		t.Fatal(err)
	}
	if want := []time.Duration{3 * time.Second, time.Second}; len(*slept) != 2 || (*slept)[0] != want[0] || (*slept)[1] != want[1] {
		t.Errorf("slept %v, want %v", *slept, want)
	}
	reqs := g.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	id := reqs[0].Header.Get("X-Request-Id")
	for _, r := range reqs {
		if r.Header.Get("X-Request-Id") != id {
			t.Errorf("request id changed across retries: %s vs %s", r.Header.Get("X-Request-Id"), id)
		}
	}
}

func TestExponentialBackoffAndExhaustion(t *testing.T) {
	var script []answer
	for i := 0; i < 4; i++ {
		script = append(script, answer{status: 502, body: "bad gateway"})
	}
	g := newGateway(t, script...)
	c, slept := testClient(t, []string{g.srv.URL}, WithRetry(RetryPolicy{MaxAttempts: 4, BaseDelay: 100 * time.Millisecond, MaxDelay: 300 * time.Millisecond}))
	c.jitter = func(max time.Duration) time.Duration { return max / 2 }
	_, err := c.Submit(context.Background(), signedRecord(t))
	var ex *RetriesExhaustedError
	var un *UnavailableError
	if !errors.As(err, &ex) || ex.Attempts != 4 || !errors.As(err, &un) || un.StatusCode != 502 {
		t.Fatalf("error %T %v", err, err)
	}
	// Equal jitter: d/2 + jitter(d/2), d = 100ms, 200ms, 300ms (capped).
	want := []time.Duration{75 * time.Millisecond, 150 * time.Millisecond, 225 * time.Millisecond}
	if len(*slept) != len(want) {
		t.Fatalf("slept %v, want %v", *slept, want)
	}
	for i := range want {
		if (*slept)[i] != want[i] {
			t.Errorf("sleep %d = %v, want %v", i, (*slept)[i], want[i])
		}
	}
}

func TestRetryAfterBeyondLimitEndsTheCall(t *testing.T) {
	g := newGateway(t, answer{status: 429, body: `{"error":"quota_exhausted","detail":"daily quota"}`, header: map[string]string{"Retry-After": "86400"}})
	c, slept := testClient(t, []string{g.srv.URL})
	_, err := c.Submit(context.Background(), signedRecord(t))
	var rl *RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 24*time.Hour || len(*slept) != 0 {
		t.Fatalf("error %v, slept %v", err, *slept)
	}
}

func TestFailoverOnUnhealthyRegion(t *testing.T) {
	eu := newGateway(t)
	eu.health = 503
	us := newGateway(t, answer{status: 200, body: accepted})
	c, _ := testClient(t, []string{eu.srv.URL, us.srv.URL})
	o, err := c.Submit(context.Background(), signedRecord(t))
	if err != nil || o.Endpoint != us.srv.URL {
		t.Fatalf("%+v, %v", o, err)
	}
	if len(eu.requests()) != 0 {
		t.Error("a submission went to the unhealthy region")
	}
}

func TestFailoverWhenRegionGoesDownMidCall(t *testing.T) {
	eu := newGateway(t, answer{status: 503, body: `{"error":"wal_unavailable","detail":"not acknowledged"}`, header: map[string]string{"Retry-After": "5"}})
	us := newGateway(t, answer{status: 200, body: accepted})
	c, slept := testClient(t, []string{eu.srv.URL, us.srv.URL})
	o, err := c.Submit(context.Background(), signedRecord(t))
	if err != nil || o.Endpoint != us.srv.URL {
		t.Fatalf("%+v, %v", o, err)
	}
	if len(*slept) != 0 {
		t.Errorf("slept %v before failing over to a healthy region", *slept)
	}
	if a, b := eu.requests()[0].Header.Get("X-Request-Id"), us.requests()[0].Header.Get("X-Request-Id"); a != b {
		t.Errorf("request id changed on failover: %s vs %s", a, b)
	}
	// The failed region stays avoided for its Retry-After.
	us.script = append(us.script, answer{status: 200, body: accepted})
	if o, err := c.Submit(context.Background(), signedRecord(t)); err != nil || o.Endpoint != us.srv.URL {
		t.Fatalf("second submit: %+v, %v", o, err)
	}
}

func TestFailoverOnConnectionRefused(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	us := newGateway(t, answer{status: 200, body: accepted})
	c, _ := testClient(t, []string{deadURL, us.srv.URL})
	o, err := c.Submit(context.Background(), signedRecord(t))
	if err != nil || o.Endpoint != us.srv.URL {
		t.Fatalf("%+v, %v", o, err)
	}
}

func TestAllRegionsDownIsATransportErrorAfterRetries(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	deadURL := dead.URL
	dead.Close()
	c, slept := testClient(t, []string{deadURL}, WithRetry(RetryPolicy{MaxAttempts: 3}))
	_, err := c.Submit(context.Background(), signedRecord(t))
	var te *TransportError
	var ex *RetriesExhaustedError
	if !errors.As(err, &ex) || !errors.As(err, &te) || len(*slept) != 2 {
		t.Fatalf("error %v, slept %v", err, *slept)
	}
}

func TestPendingPollingAndReads(t *testing.T) {
	var mu sync.Mutex
	polls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path != "/healthz" && r.URL.Path != "/v1/pcs/submit" && r.Header.Get("Authorization") != "Bearer read-tok" {
			w.WriteHeader(401)
			io.WriteString(w, `{"error":"bad_read_token","detail":"no"}`)
			return
		}
		switch {
		case r.URL.Path == "/healthz":
		case r.URL.Path == "/v1/pcs/submit":
			w.Header().Set("Location", "/v1/requests/req-9")
			w.WriteHeader(202)
			io.WriteString(w, `{"request_id":"req-9","status":"pending","pcs_id":"p","tenant":"acme","accepted":false,"escalated":false,"dedup_hit":false}`)
		case r.URL.Path == "/v1/requests/req-9":
			polls++
			if polls < 3 {
				io.WriteString(w, `{"request_id":"req-9","status":"pending"}`)
				return
			}
			io.WriteString(w, accepted)
		case r.URL.Path == "/v1/requests/req-bad":
			io.WriteString(w, `{"request_id":"req-bad","status":"rejected","http_status":401,"error":"bad_signature","detail":"no key verifies"}`)
		case r.URL.Path == "/v1/pcs/known":
			io.WriteString(w, accepted)
		default:
			w.WriteHeader(404)
			io.WriteString(w, `{"error":"not_found","detail":"unknown pcs_id"}`)
		}
	}))
	t.Cleanup(srv.Close)
	c, slept := testClient(t, []string{srv.URL})
	o, err := c.SubmitAndWait(context.Background(), signedRecord(t))
	if err != nil || o.Status != StatusAccepted || polls != 3 {
		t.Fatalf("%+v, %v, polls %d", o, err, polls)
	}
	if want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond}; len(*slept) != 3 || (*slept)[2] != want[2] {
		t.Errorf("poll delays %v, want %v", *slept, want)
	}
	if o, err := c.GetOutcome(context.Background(), "known"); err != nil || !o.Accepted {
		t.Errorf("GetOutcome: %+v, %v", o, err)
	}
	var nf *NotFoundError
	if _, err := c.GetOutcome(context.Background(), "unknown"); !errors.As(err, &nf) {
		t.Errorf("GetOutcome(unknown) = %v, want *NotFoundError", err)
	}
	var rej *RejectedError
	var un *UnauthorizedError
	if _, err := c.GetRequest(context.Background(), "req-bad"); !errors.As(err, &rej) || !errors.As(err, &un) || un.Code != "bad_signature" {
		t.Errorf("GetRequest(req-bad) = %v, want a rejected 401", err)
	}
	noToken, _ := testClient(t, []string{srv.URL}, WithReadToken(""))
	if _, err := noToken.GetOutcome(context.Background(), "known"); !errors.As(err, &un) {
		t.Errorf("a read without the token = %v, want *UnauthorizedError", err)
	}
}

func TestSubmitRefusesUnsignedRecords(t *testing.T) {
	c, _ := testClient(t, []string{"http://127.0.0.1:1"})
	r := signedRecord(t)
	r.Sig = ""
	var ve *ValueError
	if _, err := c.Submit(context.Background(), r); !errors.As(err, &ve) {
		t.Errorf("unsigned record: %v", err)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if d, ok := parseRetryAfter("7", now); !ok || d != 7*time.Second {
		t.Errorf("seconds: %v %v", d, ok)
	}
	if d, ok := parseRetryAfter("Wed, 01 Jan 2025 00:00:30 GMT", now); !ok || d != 30*time.Second {
		t.Errorf("HTTP-date: %v %v", d, ok)
	}
	if _, ok := parseRetryAfter("soon", now); ok {
		t.Error("garbage accepted")
	}
}
