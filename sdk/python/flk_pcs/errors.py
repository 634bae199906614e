from __future__ import annotations

from typing import Final

# Stable codes of a structurally broken record (SPEC §1, always HTTP 400). Callers switch on
# `.code`; the detail is for people and never quotes the payload beyond the offending field.
MALFORMED_CODES: Final[frozenset[str]] = frozenset(
    {
        "too_large",
        "invalid_unicode",
        "malformed_json",
        "non_finite_number",
        "number_out_of_range",
        "duplicate_key",
        "too_deep",
        "not_an_object",
        "missing_field",
        "wrong_type",
        "invalid_pcs_id",
        "empty_string",
        "unsupported_version",
        "epoch_out_of_range",
        "attempt_out_of_range",
        "seed_out_of_range",
        "invalid_sent_at",
        "empty_scales",
        "invalid_regime",
        "invalid_signature_encoding",
    }
)


class FlkPcsError(Exception):
    """Base of every error this package raises on purpose."""


class MalformedError(FlkPcsError):
    """A record that breaks a structural rule of SPEC §1 (HTTP 400)."""

    def __init__(self, code: str, detail: str, field: str | None = None) -> None:
        assert code in MALFORMED_CODES, code
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.field = field


class PolicyError(FlkPcsError):
    """An invalid policy document; names the field and the bound it breaks (SPEC §3)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"policy field {field!r}: {detail}")
        self.field = field
        self.detail = detail


class KeySetError(FlkPcsError):
    """An invalid key-set document; names the field."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(f"key set field {field!r}: {detail}")
        self.field = field
        self.detail = detail


class ApiError(FlkPcsError):
    """An error answer of the gateway (SPEC §4): `{"error": code, "detail": text,
    "request_id": ...}`. Switch on `.code` (stable) or on the subclass (HTTP status)."""

    retryable = False

    def __init__(self, status: int, code: str, detail: str, request_id: str | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {detail}" if detail else f"HTTP {status} {code}")
        self.status = status
        self.code = code
        self.detail = detail
        self.request_id = request_id
        self.retry_after = retry_after


class BadRequest(ApiError):
    """400: the record is malformed (never retried; fix the record)."""


class Unauthorized(ApiError):
    """401: unknown tenant, bad or missing signature, or a bad read token (never retried)."""


class NotFound(ApiError):
    """404: no such outcome or request for this tenant."""


class PayloadTooLarge(ApiError):
    """413: the body is over 1 MiB (never retried)."""


class RateLimited(ApiError):
    """429: over the tenant's rate or quota; retried after Retry-After."""

    retryable = True


class Unavailable(ApiError):
    """5xx, e.g. 503 backpressure or WAL not acknowledged; retried, with failover."""

    retryable = True


class RequestRejected(ApiError):
    """A pending request that ended as a rejection (400/401 decided after the fact)."""


class TransportError(FlkPcsError):
    """No endpoint could be reached (connection refused, reset, timed out) within the retries."""

    def __init__(self, detail: str, request_id: str | None = None) -> None:
        super().__init__(detail)
        self.code = "transport_error"
        self.detail = detail
        self.request_id = request_id


class PendingTimeout(FlkPcsError):
    """A pending request did not reach an outcome within the caller's wait."""

    def __init__(self, request_id: str, waited: float) -> None:
        super().__init__(f"request {request_id} still pending after {waited:.1f} s")
        self.code = "pending_timeout"
        self.request_id = request_id
        self.waited = waited
