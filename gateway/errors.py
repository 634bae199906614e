"""Error answers of the gateway: `{"error": code, "detail": text, "request_id": id}` (SPEC §4).

Codes are stable (clients switch on them); details name the field or limit, never the payload.
A 400 carries the core's MalformedError code (flk_pcs.errors.MALFORMED_CODES); a 401 after the
WAL write carries the signature reason (missing_signature, no_valid_key, bad_signature).
"""

from __future__ import annotations

from typing import Any, Final

import orjson
from starlette.responses import Response

PAYLOAD_TOO_LARGE: Final = "payload_too_large"
UNKNOWN_TENANT: Final = "unknown_tenant"
INVALID_REQUEST_ID: Final = "invalid_request_id"
RATE_LIMITED: Final = "rate_limited"
QUOTA_EXCEEDED: Final = "quota_exceeded"
BACKPRESSURE: Final = "backpressure"
OVERLOADED: Final = "overloaded"  # this process has its bound of submits in flight
WAL_UNAVAILABLE: Final = "wal_unavailable"
UNAUTHORIZED: Final = "unauthorized"  # missing or wrong read token
NOT_FOUND: Final = "not_found"
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
UNAVAILABLE: Final = "unavailable"
INTERNAL: Final = "internal_error"

STATUS_OF: Final = {
    PAYLOAD_TOO_LARGE: 413,
    UNKNOWN_TENANT: 401,
    INVALID_REQUEST_ID: 400,
    RATE_LIMITED: 429,
    QUOTA_EXCEEDED: 429,
    BACKPRESSURE: 503,
    OVERLOADED: 503,
    WAL_UNAVAILABLE: 503,
    UNAUTHORIZED: 401,
    NOT_FOUND: 404,
    METHOD_NOT_ALLOWED: 405,
    UNAVAILABLE: 503,
    INTERNAL: 500,
}


def json_response(status: int, body: object, request_id: str | None,
                  headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    out = dict(headers or {})
    if request_id is not None:
        out["X-Request-Id"] = request_id
    # orjson: compact UTF-8 like json.dumps(separators=(",", ":"), ensure_ascii=False), at a
    # fraction of the CPU per answer.
    return Response(orjson.dumps(body), status, out, media_type="application/json")


def error_body(code: str, detail: str, request_id: str | None) -> dict[str, Any]:
    return {"error": code, "detail": detail, "request_id": request_id}


def error_response(status: int, code: str, detail: str, request_id: str | None,
                   retry_after_s: int | None = None) -> Response:  # fmt: skip
    headers = {"Retry-After": str(retry_after_s)} if retry_after_s is not None else None
    return json_response(status, error_body(code, detail, request_id), request_id, headers)
