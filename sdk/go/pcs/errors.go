package pcs

import (
	"fmt"
	"time"
)

// ValueError is a local input that cannot be canonicalised, signed or sent. It names
// the field and quotes the value; nothing was sent.
type ValueError struct {
	Field  string
	Value  string
	Reason string
}

func (e *ValueError) Error() string {
	return fmt.Sprintf("pcs: invalid value for %q: %s: %s", e.Field, e.Value, e.Reason)
}

// ErrorResponse is the body of a gateway error answer (SPEC §4):
// {"error": code, "detail": text, "request_id": ...}, plus the HTTP status and the
// endpoint that answered.
type ErrorResponse struct {
	StatusCode int    `json:"-"`
	Code       string `json:"error"`
	Detail     string `json:"detail"`
	RequestID  string `json:"request_id"`
	Endpoint   string `json:"-"`
}

// Details returns the error answer itself; every error type below has it, so
// `var f pcs.APIFailure; errors.As(err, &f)` matches any of them.
func (e *ErrorResponse) Details() *ErrorResponse { return e }

func (e *ErrorResponse) Error() string {
	s := fmt.Sprintf("pcs: %s answered %d %s", e.Endpoint, e.StatusCode, e.Code)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.RequestID != "" {
		s += " (request " + e.RequestID + ")"
	}
	return s
}

// APIFailure is implemented by every typed error answer.
type APIFailure interface {
	error
	Details() *ErrorResponse
}

// MalformedError is a 400: the body broke a structural rule of SPEC §1. Not retried.
type MalformedError struct{ ErrorResponse }

// UnauthorizedError is a 401: unknown tenant, bad or missing signature, or a bad read
// token. Not retried.
type UnauthorizedError struct{ ErrorResponse }

// NotFoundError is a 404: no such pcs_id or request for this tenant.
type NotFoundError struct{ ErrorResponse }

// TooLargeError is a 413: the body is over 1 MiB. Not retried.
type TooLargeError struct{ ErrorResponse }

// RateLimitedError is a 429: the tenant's rate or quota is spent. Retried after
// RetryAfter; returned (inside a *RetriesExhaustedError) when retries run out.
type RateLimitedError struct {
	ErrorResponse
	RetryAfter time.Duration
}

// UnavailableError is a 5xx: the WAL write was not acknowledged or the region is too
// far behind (503 + Retry-After). Retried, on another region when one is healthy.
type UnavailableError struct {
	ErrorResponse
	RetryAfter time.Duration
}

// UnexpectedStatusError is any other status the API does not document.
type UnexpectedStatusError struct{ ErrorResponse }

// RetriesExhaustedError is returned when every attempt failed with a retryable error;
// Last is the final failure and is reachable with errors.As.
type RetriesExhaustedError struct {
	Attempts int
	Last     error
}

func (e *RetriesExhaustedError) Error() string {
	return fmt.Sprintf("pcs: gave up after %d attempts: %v", e.Attempts, e.Last)
}

func (e *RetriesExhaustedError) Unwrap() error { return e.Last }

// RejectedError is what a polled request became when the pipeline rejected it after
// the gateway had answered pending; Err is the typed error for its status.
type RejectedError struct {
	RequestID string
	Err       error
}

func (e *RejectedError) Error() string {
	return fmt.Sprintf("pcs: request %s was rejected: %v", e.RequestID, e.Err)
}

func (e *RejectedError) Unwrap() error { return e.Err }

func errorFor(r ErrorResponse, retryAfter time.Duration) error {
	switch {
	case r.StatusCode == 400:
		return &MalformedError{r}
	case r.StatusCode == 401 || r.StatusCode == 403:
		return &UnauthorizedError{r}
	case r.StatusCode == 404:
		return &NotFoundError{r}
	case r.StatusCode == 413:
		return &TooLargeError{r}
	case r.StatusCode == 429:
		return &RateLimitedError{r, retryAfter}
	case r.StatusCode >= 500:
		return &UnavailableError{r, retryAfter}
	default:
		return &UnexpectedStatusError{r}
	}
}
