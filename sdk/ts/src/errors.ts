/**
 * Stable codes that callers can switch on (`err.code`). API failures also carry the
 * gateway's own code (`apiCode`, e.g. `bad_signature`) and the HTTP status.
 */
export type PcsErrorCode =
  | "ERR_PCS_INVALID_VALUE"
  | "ERR_PCS_MALFORMED_RECORD"
  | "ERR_PCS_POLICY"
  | "ERR_PCS_MALFORMED"
  | "ERR_PCS_UNAUTHORIZED"
  | "ERR_PCS_NOT_FOUND"
  | "ERR_PCS_TOO_LARGE"
  | "ERR_PCS_RATE_LIMITED"
  | "ERR_PCS_UNAVAILABLE"
  | "ERR_PCS_UNEXPECTED_STATUS"
  | "ERR_PCS_NETWORK"
  | "ERR_PCS_RETRIES_EXHAUSTED"
  | "ERR_PCS_REJECTED";

/** Base of every error this package throws on purpose. */
export abstract class PcsError extends Error {
  abstract readonly code: PcsErrorCode;
  override get name(): string {
    return this.constructor.name;
  }
}

/** A local input that cannot be canonicalised, signed or sent; nothing was sent. */
export class PcsValueError extends PcsError {
  readonly code = "ERR_PCS_INVALID_VALUE" as const;
  constructor(
    readonly field: string,
    readonly value: string,
    readonly reason: string,
  ) {
    super(`invalid value for "${field}": ${value}: ${reason}`);
  }
}

/** A body that breaks a structural rule of SPEC §1 (what the gateway answers with 400). */
export class MalformedRecordError extends PcsError {
  readonly code = "ERR_PCS_MALFORMED_RECORD" as const;
  constructor(
    /** The stable malformed code, e.g. `missing_field`, shared with the server. */
    readonly reason: string,
    readonly field: string | null,
    readonly detail: string,
  ) {
    super(field === null ? `malformed record: ${reason}: ${detail}` : `malformed record: ${reason}: field "${field}": ${detail}`);
  }
}

/** An invalid policy; names the field and the bound it breaks. */
export class PolicyError extends PcsError {
  readonly code = "ERR_PCS_POLICY" as const;
  constructor(
    readonly field: string,
    readonly detail: string,
  ) {
    super(`policy field "${field}": ${detail}`);
  }
}

/** The body of a gateway error answer (SPEC §4). */
export interface ErrorBody {
  error: string;
  detail: string;
  request_id: string | null;
}

/** Any error answer of the API: HTTP status, the API's stable code, detail, request id. */
export abstract class ApiError extends PcsError {
  constructor(
    readonly status: number,
    readonly apiCode: string,
    readonly detail: string,
    readonly requestId: string | null,
    readonly endpoint: string,
  ) {
    super(`${endpoint} answered ${status} ${apiCode}${detail ? `: ${detail}` : ""}${requestId ? ` (request ${requestId})` : ""}`);
  }
}

/** 400: the body broke a structural rule of SPEC §1. Never retried. */
export class MalformedError extends ApiError {
  readonly code = "ERR_PCS_MALFORMED" as const;
}
/** 401: unknown tenant, bad or missing signature, bad read token. Never retried. */
export class UnauthorizedError extends ApiError {
  readonly code = "ERR_PCS_UNAUTHORIZED" as const;
}
/** 404: no such pcs_id or request for this tenant. */
export class NotFoundError extends ApiError {
  readonly code = "ERR_PCS_NOT_FOUND" as const;
}
/** 413: the body is over 1 MiB. Never retried. */
export class TooLargeError extends ApiError {
  readonly code = "ERR_PCS_TOO_LARGE" as const;
}
/** 429: the tenant's rate or quota is spent; retried after `retryAfterMs`. */
export class RateLimitedError extends ApiError {
  readonly code = "ERR_PCS_RATE_LIMITED" as const;
  retryAfterMs: number | null = null;
}
/** 5xx: WAL not acknowledged or the region too far behind; retried, on another region if healthy. */
export class UnavailableError extends ApiError {
  readonly code = "ERR_PCS_UNAVAILABLE" as const;
  retryAfterMs: number | null = null;
}
/** Any status the API does not document. */
export class UnexpectedStatusError extends ApiError {
  readonly code = "ERR_PCS_UNEXPECTED_STATUS" as const;
}

/** The request never got an HTTP answer (connection refused, reset, timeout). */
export class NetworkError extends PcsError {
  readonly code = "ERR_PCS_NETWORK" as const;
  constructor(
    readonly endpoint: string,
    override readonly cause: unknown,
  ) {
    super(`${endpoint}: ${cause instanceof Error ? cause.message : String(cause)}`);
  }
}

/** Every attempt failed with a retryable error; `last` is the final failure. */
export class RetriesExhaustedError extends PcsError {
  readonly code = "ERR_PCS_RETRIES_EXHAUSTED" as const;
  constructor(
    readonly attempts: number,
    readonly last: PcsError,
  ) {
    super(`gave up after ${attempts} attempts: ${last.message}`);
  }
}

/** A polled request turned out rejected (400/401) after a pending answer. */
export class RejectedError extends PcsError {
  readonly code = "ERR_PCS_REJECTED" as const;
  constructor(
    readonly requestId: string,
    readonly error: ApiError,
  ) {
    super(`request ${requestId} was rejected: ${error.message}`);
  }
}

/** The typed error for an error answer with this status. */
export function errorFor(status: number, body: ErrorBody, endpoint: string, retryAfterMs: number | null): ApiError {
  const args = [status, body.error, body.detail, body.request_id, endpoint] as const;
  if (status === 400) return new MalformedError(...args);
  if (status === 401 || status === 403) return new UnauthorizedError(...args);
  if (status === 404) return new NotFoundError(...args);
  if (status === 413) return new TooLargeError(...args);
  if (status === 429) {
    const e = new RateLimitedError(...args);
    e.retryAfterMs = retryAfterMs;
    return e;
  }
  if (status >= 500) {
    const e = new UnavailableError(...args);
    e.retryAfterMs = retryAfterMs;
    return e;
  }
  return new UnexpectedStatusError(...args);
}
