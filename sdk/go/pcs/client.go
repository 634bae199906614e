package pcs

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// RetryPolicy bounds the retries of one logical call (a submission or a read).
// Retried: network errors, 429 and 5xx. Never retried: 400, 401, 404, 413.
type RetryPolicy struct {
	MaxAttempts   int           // attempts per call, the first included (default 5)
	BaseDelay     time.Duration // first backoff (default 200ms), doubled per attempt
	MaxDelay      time.Duration // backoff cap (default 10s)
	MaxRetryAfter time.Duration // a longer Retry-After ends the call with its error (default 60s)
}

// DefaultRetryPolicy returns the defaults named in RetryPolicy.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{MaxAttempts: 5, BaseDelay: 200 * time.Millisecond, MaxDelay: 10 * time.Second, MaxRetryAfter: time.Minute}
}

// TransportError is a request that got no HTTP answer (refused, reset, timed out).
type TransportError struct {
	Endpoint string
	Err      error
}

func (e *TransportError) Error() string { return fmt.Sprintf("pcs: %s: %v", e.Endpoint, e.Err) }
func (e *TransportError) Unwrap() error { return e.Err }

type endpoint struct {
	base      string
	checkedAt time.Time // last successful /healthz or answer
	downUntil time.Time
}

// Client talks to the gateways of one or more regions, in order of preference: it uses
// the first endpoint whose GET /healthz answered 200 within the health TTL, and fails
// over to the next when one refuses connections, answers 5xx or fails its health check.
// A Client is safe for concurrent use.
type Client struct {
	hc        *http.Client
	eps       []*endpoint
	tenant    string
	readToken string
	retry     RetryPolicy
	healthTTL time.Duration
	cooldown  time.Duration

	mu sync.Mutex

	// Seams for tests: time, sleeping, jitter and request ids.
	now    func() time.Time
	sleep  func(context.Context, time.Duration) error
	jitter func(max time.Duration) time.Duration
	newID  func() string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client; give it a Timeout. The default is a client with
// a 30-second timeout.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithTenant sets X-Tenant-Id (the gateway's default tenant is "default").
func WithTenant(t string) Option { return func(c *Client) { c.tenant = t } }

// WithReadToken sets the tenant's read token for GET /v1/pcs and /v1/requests.
func WithReadToken(tok string) Option { return func(c *Client) { c.readToken = tok } }

// WithRetry replaces the retry policy; zero fields take their defaults.
func WithRetry(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithHealthTTL sets how long a health verdict is trusted (default 10s) and how long a
// failing endpoint is avoided (the same duration, unless Retry-After says longer).
func WithHealthTTL(d time.Duration) Option {
	return func(c *Client) { c.healthTTL, c.cooldown = d, d }
}

// NewClient returns a client for the given gateway base URLs, e.g.
// "https://eu.pcs.example.com", in order of preference.
func NewClient(endpoints []string, opts ...Option) (*Client, error) {
	if len(endpoints) == 0 {
		return nil, &ValueError{Field: "endpoints", Value: "[]", Reason: "need at least one gateway URL"}
	}
	c := &Client{
		hc:        &http.Client{Timeout: 30 * time.Second},
		retry:     DefaultRetryPolicy(),
		healthTTL: 10 * time.Second,
		cooldown:  10 * time.Second,
		now:       time.Now,
		sleep:     sleepCtx,
		jitter:    func(max time.Duration) time.Duration { return time.Duration(mrand.Int64N(int64(max) + 1)) },
		newID:     newRequestID,
	}
	for _, e := range endpoints {
		u, err := url.Parse(e)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, &ValueError{Field: "endpoints", Value: e, Reason: "not an http(s) base URL"}
		}
		c.eps = append(c.eps, &endpoint{base: strings.TrimRight(e, "/")})
	}
	for _, o := range opts {
		o(c)
	}
	d := DefaultRetryPolicy()
	if c.retry.MaxAttempts <= 0 {
		c.retry.MaxAttempts = d.MaxAttempts
	}
	if c.retry.BaseDelay <= 0 {
		c.retry.BaseDelay = d.BaseDelay
	}
	if c.retry.MaxDelay <= 0 {
		c.retry.MaxDelay = d.MaxDelay
	}
	if c.retry.MaxRetryAfter <= 0 {
		c.retry.MaxRetryAfter = d.MaxRetryAfter
	}
	return c, nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// newRequestID returns a random UUIDv4.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// pick returns the endpoint to use: the first one not cooling down whose health is known
// good or, probed now, is good. When all are down, the one that recovers first.
func (c *Client) pick(ctx context.Context) *endpoint {
	for _, ep := range c.eps {
		c.mu.Lock()
		now := c.now()
		down := now.Before(ep.downUntil)
		fresh := !ep.checkedAt.IsZero() && now.Sub(ep.checkedAt) < c.healthTTL
		c.mu.Unlock()
		if down {
			continue
		}
		if fresh || c.probe(ctx, ep) {
			return ep
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	best := c.eps[0]
	for _, ep := range c.eps[1:] {
		if ep.downUntil.Before(best.downUntil) {
			best = ep
		}
	}
	return best
}

// probe is GET /healthz; it records the verdict.
func (c *Client) probe(ctx context.Context, ep *endpoint) bool {
	pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(pctx, http.MethodGet, ep.base+"/healthz", nil)
	ok := false
	if err == nil {
		if resp, err := c.hc.Do(req); err == nil {
			readBody(resp)
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
		}
	}
	if ok {
		c.markUp(ep)
	} else {
		c.markDown(ep, 0)
	}
	return ok
}

func (c *Client) markUp(ep *endpoint) {
	c.mu.Lock()
	ep.checkedAt, ep.downUntil = c.now(), time.Time{}
	c.mu.Unlock()
}

func (c *Client) markDown(ep *endpoint, atLeast time.Duration) {
	c.mu.Lock()
	d := max(c.cooldown, atLeast)
	ep.checkedAt, ep.downUntil = time.Time{}, c.now().Add(d)
	c.mu.Unlock()
}

// anotherUp reports whether an endpoint other than ep is not cooling down.
func (c *Client) anotherUp(ep *endpoint) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for _, e := range c.eps {
		if e != ep && !now.Before(e.downUntil) {
			return true
		}
	}
	return false
}

// backoff is exponential with equal jitter: half the step fixed, half random.
func (c *Client) backoff(attempt int) time.Duration {
	d := c.retry.BaseDelay << (attempt - 1)
	if d > c.retry.MaxDelay || d <= 0 {
		d = c.retry.MaxDelay
	}
	return d/2 + c.jitter(d/2)
}

type call struct {
	method string
	path   string
	body   []byte
	header http.Header
}

// do runs one logical call with retries and failover and returns the final 2xx answer.
func (c *Client) do(ctx context.Context, k call) (*http.Response, []byte, string, error) {
	var last error
	for attempt := 1; attempt <= c.retry.MaxAttempts; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, nil, "", err
		}
		ep := c.pick(ctx)
		req, err := http.NewRequestWithContext(ctx, k.method, ep.base+k.path, bytes.NewReader(k.body))
		if err != nil {
			return nil, nil, "", err
		}
		req.Header = k.header.Clone()
		resp, err := c.hc.Do(req)
		var wait time.Duration
		failover := false
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return nil, nil, "", ctx.Err()
			}
			last = &TransportError{Endpoint: ep.base, Err: err}
			c.markDown(ep, 0)
			failover = true
		default:
			body := readBody(resp)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusAccepted {
				c.markUp(ep)
				return resp, body, ep.base, nil
			}
			last = errorAnswer(resp, body, ep.base, c.now())
			var rl *RateLimitedError
			var un *UnavailableError
			switch {
			case errors.As(last, &rl):
				wait = rl.RetryAfter
			case errors.As(last, &un):
				wait = un.RetryAfter
				c.markDown(ep, un.RetryAfter)
				failover = true
			default:
				return nil, nil, "", last // 400, 401, 404, 413, others: not retried
			}
			if wait > c.retry.MaxRetryAfter {
				return nil, nil, "", last
			}
		}
		if attempt == c.retry.MaxAttempts {
			break
		}
		if failover && c.anotherUp(ep) {
			continue // another region is up: go there now
		}
		if wait == 0 {
			wait = c.backoff(attempt)
		}
		if dl, ok := ctx.Deadline(); ok && c.now().Add(wait).After(dl) {
			return nil, nil, "", last
		}
		if err := c.sleep(ctx, wait); err != nil {
			return nil, nil, "", err
		}
	}
	return nil, nil, "", &RetriesExhaustedError{Attempts: c.retry.MaxAttempts, Last: last}
}

// SubmitOption adjusts one submission.
type SubmitOption func(*submitOpts)

type submitOpts struct {
	requestID string
	async     bool
}

// WithRequestID sets X-Request-Id; by default each Submit generates one UUID and keeps
// it across its retries, so a retried request is a redelivery, not a duplicate (SPEC §3).
func WithRequestID(id string) SubmitOption { return func(o *submitOpts) { o.requestID = id } }

// RespondAsync sends Prefer: respond-async: the gateway answers 202 pending at once.
func RespondAsync() SubmitOption { return func(o *submitOpts) { o.async = true } }

// Submit sends a signed record (POST /v1/pcs/submit). A 200 or 202 is an *Outcome —
// accepted, escalated or pending — never an error. Failures are typed: *MalformedError
// (400), *UnauthorizedError (401), *TooLargeError (413); *RateLimitedError and
// *UnavailableError are retried and come back inside *RetriesExhaustedError.
func (c *Client) Submit(ctx context.Context, rec *Record, opts ...SubmitOption) (*Outcome, error) {
	body, err := rec.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if rec.Sig == "" {
		return nil, &ValueError{Field: "sig", Value: `""`, Reason: "the record is not signed; call Sign first"}
	}
	if len(body) > MaxBodyBytes {
		return nil, &ValueError{Field: "body", Value: fmt.Sprintf("%d bytes", len(body)), Reason: "over the 1 MiB limit"}
	}
	var o submitOpts
	for _, f := range opts {
		f(&o)
	}
	if o.requestID == "" {
		o.requestID = c.newID()
	}
	h := c.headers(o.requestID)
	h.Set("Content-Type", "application/json")
	if o.async {
		h.Set("Prefer", "respond-async")
	}
	resp, b, base, err := c.do(ctx, call{method: http.MethodPost, path: "/v1/pcs/submit", body: body, header: h})
	if err != nil {
		return nil, err
	}
	return decodeOutcome(resp, b, base)
}

func (c *Client) headers(requestID string) http.Header {
	h := http.Header{}
	h.Set("Accept", "application/json")
	if c.tenant != "" {
		h.Set("X-Tenant-Id", c.tenant)
	}
	if requestID != "" {
		h.Set("X-Request-Id", requestID)
	}
	return h
}

func (c *Client) readHeaders() http.Header {
	h := c.headers("")
	if c.readToken != "" {
		h.Set("Authorization", "Bearer "+c.readToken)
	}
	return h
}

func decodeOutcome(resp *http.Response, body []byte, base string) (*Outcome, error) {
	var o Outcome
	if err := json.Unmarshal(body, &o); err != nil {
		return nil, &UnexpectedStatusError{ErrorResponse{
			StatusCode: resp.StatusCode, Code: "bad_answer", Endpoint: base,
			Detail: "answer is not an outcome: " + err.Error(), RequestID: resp.Header.Get("X-Request-Id"),
		}}
	}
	o.HTTPStatus, o.Endpoint = resp.StatusCode, base
	o.Location = resp.Header.Get("Location")
	if o.RequestID == "" {
		o.RequestID = resp.Header.Get("X-Request-Id")
	}
	if o.Status == "" {
		o.Status = StatusAccepted
		if o.Escalated {
			o.Status = StatusEscalated
		}
	}
	return &o, nil
}

// GetOutcome reads the tenant's stored outcome of a pcs_id (GET /v1/pcs/{pcs_id}) with
// the read token; *NotFoundError when this tenant has none.
func (c *Client) GetOutcome(ctx context.Context, pcsID string) (*Outcome, error) {
	resp, b, base, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/pcs/" + url.PathEscape(pcsID), header: c.readHeaders()})
	if err != nil {
		return nil, err
	}
	return decodeOutcome(resp, b, base)
}

// GetRequest reads what became of one request (GET /v1/requests/{id}): an Outcome
// (possibly still pending), or a *RejectedError carrying the 400/401 it ended in.
func (c *Client) GetRequest(ctx context.Context, requestID string) (*Outcome, error) {
	resp, b, base, err := c.do(ctx, call{method: http.MethodGet, path: "/v1/requests/" + url.PathEscape(requestID), header: c.readHeaders()})
	if err != nil {
		return nil, err
	}
	var rej struct {
		Status     Status `json:"status"`
		HTTPStatus int    `json:"http_status"`
		Reason     string `json:"reason"`
		ErrorResponse
	}
	if json.Unmarshal(b, &rej) == nil && rej.Status == StatusRejected {
		// The rejection's code is "error" (or the outcome's "reason"); its status is
		// "http_status" when the record names it, else the answer's own status.
		er := rej.ErrorResponse
		er.StatusCode, er.Endpoint = rej.HTTPStatus, base
		if er.StatusCode == 0 {
			er.StatusCode = resp.StatusCode
		}
		if er.Code == "" {
			er.Code = rej.Reason
		}
		if er.RequestID == "" {
			er.RequestID = requestID
		}
		return nil, &RejectedError{RequestID: requestID, Err: errorFor(er, 0)}
	}
	return decodeOutcome(resp, b, base)
}

// Wait polls a pending outcome (its Location, GET /v1/requests/{id}) until the verdict
// is known or ctx ends, backing off from 100ms to 2s between polls (or Retry-After).
// A non-pending outcome is returned as it is.
func (c *Client) Wait(ctx context.Context, o *Outcome) (*Outcome, error) {
	delay := 100 * time.Millisecond
	for o.Pending() {
		if err := c.sleep(ctx, delay); err != nil {
			return nil, err
		}
		delay = min(2*delay, 2*time.Second)
		next, err := c.GetRequest(ctx, o.RequestID)
		if err != nil {
			return nil, err
		}
		o = next
	}
	return o, nil
}

// SubmitAndWait is Submit followed by Wait when the answer is pending.
func (c *Client) SubmitAndWait(ctx context.Context, rec *Record, opts ...SubmitOption) (*Outcome, error) {
	o, err := c.Submit(ctx, rec, opts...)
	if err != nil {
		return nil, err
	}
	return c.Wait(ctx, o)
}
