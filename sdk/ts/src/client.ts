import {
  ApiError, errorFor, NetworkError, PcsError, PcsValueError, RateLimitedError, RejectedError,
  RetriesExhaustedError, UnavailableError, UnexpectedStatusError, type ErrorBody,
} from "./errors.js";
import { MAX_BODY_BYTES, serializeRecord, type PcsRecord } from "./record.js";

/** Fields every outcome carries (SPEC §4). */
interface OutcomeBase {
  request_id: string;
  pcs_id: string;
  tenant: string;
  accepted: boolean;
  escalated: boolean;
  reason?: string | null;
  recomputed_D_hat?: number | null;
  recomputed_budget?: number | null;
  regime?: string | null;
  dedup_hit: boolean;
  conflict?: boolean;
  policy_version?: string | number;
  region?: string;
  /** Base URL of the region that answered. */
  endpoint: string;
}

/** 200: verified and accepted. */
export interface AcceptedOutcome extends OutcomeBase {
  status: "accepted";
  httpStatus: 200;
}
/** 202: a check failed or disagreed (SPEC §3 steps 4–6); `reason` says which. Not an error. */
export interface EscalatedOutcome extends OutcomeBase {
  status: "escalated";
  httpStatus: 202;
}
/** 202: the verdict is not known yet; poll with `client.wait`. Not an error. */
export interface PendingOutcome extends OutcomeBase {
  status: "pending";
  httpStatus: 202;
  location: string | null;
}
export type Outcome = AcceptedOutcome | EscalatedOutcome | PendingOutcome;

/** Retried: network errors, 429, 5xx. Never retried: 400, 401, 404, 413. */
export interface RetryPolicy {
  /** Attempts per call, the first included (default 5). */
  maxAttempts: number;
  /** First backoff in ms (default 200), doubled per attempt. */
  baseDelayMs: number;
  /** Backoff cap in ms (default 10 000). */
  maxDelayMs: number;
  /** A longer Retry-After ends the call with its error (default 60 000). */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  maxAttempts: 5,
  baseDelayMs: 200,
  maxDelayMs: 10_000,
  maxRetryAfterMs: 60_000,
});

export interface ClientOptions {
  /** Gateway base URLs, in order of preference (one per region). */
  endpoints: string[];
  /** X-Tenant-Id (the gateway's default tenant is `default`). */
  tenant?: string;
  /** The tenant's read token, for outcome and request reads. */
  readToken?: string;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** Per-request timeout in ms (default 30 000). */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** How long a health verdict is trusted, and a failing endpoint avoided (default 10 000 ms). */
  healthTtlMs?: number;
  /** Test seams: sleeping, randomness in [0, 1), the clock. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  random?: () => number;
  now?: () => number;
}

export interface SubmitOptions {
  /** X-Request-Id; by default one UUID per submit, kept across its retries. */
  requestId?: string;
  /** Prefer: respond-async — the gateway answers 202 pending at once. */
  respondAsync?: boolean;
  signal?: AbortSignal;
}

interface Endpoint {
  base: string;
  checkedAt: number | null;
  downUntil: number;
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = (): void => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/** Retry-After as delay-seconds or an HTTP-date, in ms; null when absent or unreadable. */
export function parseRetryAfter(h: string | null, nowMs: number = Date.now()): number | null {
  if (h === null || h.trim() === "") return null;
  if (/^\d+(\.\d+)?$/.test(h.trim())) return Math.round(Number(h) * 1000);
  const t = Date.parse(h);
  return Number.isNaN(t) ? null : Math.max(0, t - nowMs);
}

/** The most of an answer that is read; a broken proxy must not make the client buffer more. */
const MAX_ANSWER_BYTES = 1 << 20;

async function readText(resp: Response): Promise<string> {
  if (resp.body === null) return "";
  const reader = resp.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size >= MAX_ANSWER_BYTES) {
      await reader.cancel();
      break;
    }
  }
  const all = new Uint8Array(Math.min(size, MAX_ANSWER_BYTES));
  let off = 0;
  for (const c of chunks) {
    const n = Math.min(c.length, all.length - off);
    all.set(c.subarray(0, n), off);
    off += n;
  }
  return new TextDecoder().decode(all);
}

interface Call {
  method: "GET" | "POST";
  path: string;
  body?: string;
  headers: Record<string, string>;
  signal?: AbortSignal | undefined;
}

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  endpoint: string;
}

/**
 * Talks to the gateways of one or more regions: the first endpoint whose GET /healthz answered
 * 200 within the health TTL is used; on refused connections, 5xx or a failed health check the
 * client fails over to the next. Retries use exponential backoff with jitter and honour
 * Retry-After. 200/202 answers are Outcomes (202 escalated/pending included); failures throw
 * typed errors with stable codes.
 */
export class Client {
  readonly #eps: Endpoint[];
  readonly #tenant: string | undefined;
  readonly #readToken: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #timeoutMs: number;
  readonly #retry: RetryPolicy;
  readonly #healthTtlMs: number;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  readonly #random: () => number;
  readonly #now: () => number;

  constructor(opts: ClientOptions) {
    if (opts.endpoints.length === 0) throw new PcsValueError("endpoints", "[]", "need at least one gateway URL");
    this.#eps = opts.endpoints.map((e) => {
      let u: URL;
      try {
        u = new URL(e);
      } catch {
        throw new PcsValueError("endpoints", e, "not an http(s) base URL");
      }
      if (u.protocol !== "http:" && u.protocol !== "https:") throw new PcsValueError("endpoints", e, "not an http(s) base URL");
      return { base: e.replace(/\/+$/, ""), checkedAt: null, downUntil: 0 };
    });
    this.#tenant = opts.tenant;
    this.#readToken = opts.readToken;
    this.#fetch = opts.fetch ?? globalThis.fetch.bind(globalThis);
    this.#timeoutMs = opts.timeoutMs ?? 30_000;
    this.#retry = { ...DEFAULT_RETRY, ...(opts.retry ?? {}) };
    this.#healthTtlMs = opts.healthTtlMs ?? 10_000;
    this.#sleep = opts.sleep ?? defaultSleep;
    this.#random = opts.random ?? Math.random;
    this.#now = opts.now ?? Date.now;
  }

  #signal(caller: AbortSignal | undefined): AbortSignal {
    const t = AbortSignal.timeout(this.#timeoutMs);
    return caller === undefined ? t : AbortSignal.any([caller, t]);
  }

  async #probe(ep: Endpoint, caller: AbortSignal | undefined): Promise<boolean> {
    let ok = false;
    try {
      const resp = await this.#fetch(`${ep.base}/healthz`, { signal: AbortSignal.any([this.#signal(caller), AbortSignal.timeout(2000)]) });
      await readText(resp);
      ok = resp.status === 200;
    } catch {
      ok = false;
    }
    if (ok) this.#markUp(ep);
    else this.#markDown(ep, 0);
    return ok;
  }

  #markUp(ep: Endpoint): void {
    ep.checkedAt = this.#now();
    ep.downUntil = 0;
  }

  #markDown(ep: Endpoint, atLeastMs: number): void {
    ep.checkedAt = null;
    ep.downUntil = this.#now() + Math.max(this.#healthTtlMs, atLeastMs);
  }

  async #pick(caller: AbortSignal | undefined): Promise<Endpoint> {
    for (const ep of this.#eps) {
      const now = this.#now();
      if (now < ep.downUntil) continue;
      const fresh = ep.checkedAt !== null && now - ep.checkedAt < this.#healthTtlMs;
      if (fresh || (await this.#probe(ep, caller))) return ep;
    }
    return this.#eps.reduce((a, b) => (b.downUntil < a.downUntil ? b : a));
  }

  #anotherUp(ep: Endpoint): boolean {
    const now = this.#now();
    return this.#eps.some((e) => e !== ep && now >= e.downUntil);
  }

  /** Exponential backoff with equal jitter: half the step fixed, half random. */
  #backoff(attempt: number): number {
    const d = Math.min(this.#retry.maxDelayMs, this.#retry.baseDelayMs * 2 ** (attempt - 1));
    return d / 2 + this.#random() * (d / 2);
  }

  async #do(call: Call): Promise<Answer> {
    let last: PcsError | null = null;
    for (let attempt = 1; attempt <= this.#retry.maxAttempts; attempt++) {
      call.signal?.throwIfAborted();
      const ep = await this.#pick(call.signal);
      let wait: number | null = null;
      let failover = false;
      let resp: Response | null = null;
      try {
        const init: RequestInit = { method: call.method, headers: call.headers, signal: this.#signal(call.signal) };
        if (call.body !== undefined) init.body = call.body;
        resp = await this.#fetch(ep.base + call.path, init);
      } catch (e) {
        call.signal?.throwIfAborted();
        last = new NetworkError(ep.base, e);
        this.#markDown(ep, 0);
        failover = true;
      }
      if (resp !== null) {
        const text = await readText(resp);
        if (resp.status === 200 || resp.status === 202) {
          this.#markUp(ep);
          return { status: resp.status, headers: resp.headers, text, endpoint: ep.base };
        }
        const err = this.#errorAnswer(resp, text, ep.base);
        last = err;
        if (err instanceof RateLimitedError) {
          wait = err.retryAfterMs;
        } else if (err instanceof UnavailableError) {
          wait = err.retryAfterMs;
          this.#markDown(ep, err.retryAfterMs ?? 0);
          failover = true;
        } else {
          throw err; // 400, 401, 404, 413 and the rest: not retried
        }
        if (wait !== null && wait > this.#retry.maxRetryAfterMs) throw err;
      }
      if (attempt === this.#retry.maxAttempts) break;
      if (failover && this.#anotherUp(ep)) continue; // another region is up: go there now
      await this.#sleep(wait ?? this.#backoff(attempt), call.signal);
    }
    throw new RetriesExhaustedError(this.#retry.maxAttempts, last!);
  }

  #errorAnswer(resp: Response, text: string, endpoint: string): ApiError {
    let body: ErrorBody;
    try {
      const j = JSON.parse(text) as Partial<ErrorBody>;
      if (typeof j.error !== "string") throw new Error("no error code");
      body = { error: j.error, detail: typeof j.detail === "string" ? j.detail : "", request_id: j.request_id ?? resp.headers.get("X-Request-Id") };
    } catch {
      body = { error: resp.statusText || `http_${resp.status}`, detail: text.slice(0, 200), request_id: resp.headers.get("X-Request-Id") };
    }
    return errorFor(resp.status, body, endpoint, parseRetryAfter(resp.headers.get("Retry-After"), this.#now()));
  }

  #headers(requestId?: string): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json" };
    if (this.#tenant !== undefined) h["X-Tenant-Id"] = this.#tenant;
    if (requestId !== undefined) h["X-Request-Id"] = requestId;
    return h;
  }

  #readHeaders(): Record<string, string> {
    const h = this.#headers();
    if (this.#readToken !== undefined) h["Authorization"] = `Bearer ${this.#readToken}`;
    return h;
  }

  #outcome(a: Answer): Outcome {
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(a.text) as Record<string, unknown>;
      if (j === null || typeof j !== "object") throw new Error("not an object");
    } catch (e) {
      throw new UnexpectedStatusError(a.status, "bad_answer", `answer is not an outcome: ${String(e)}`, a.headers.get("X-Request-Id"), a.endpoint);
    }
    const status = typeof j["status"] === "string" ? j["status"] : j["escalated"] === true ? "escalated" : "accepted";
    const base = { ...j, request_id: (j["request_id"] as string | undefined) ?? a.headers.get("X-Request-Id") ?? "", endpoint: a.endpoint };
    if (status === "pending") return { ...base, status, httpStatus: 202, location: a.headers.get("Location") } as PendingOutcome;
    if (status === "escalated") return { ...base, status, httpStatus: 202 } as EscalatedOutcome;
    return { ...base, status: "accepted", httpStatus: 200 } as AcceptedOutcome;
  }

  /**
   * POST /v1/pcs/submit with a signed record. Resolves to an Outcome for 200 and 202
   * (accepted, escalated, pending); rejects with MalformedError (400), UnauthorizedError (401),
   * TooLargeError (413), or RetriesExhaustedError wrapping the last RateLimitedError /
   * UnavailableError / NetworkError.
   */
  async submit(record: PcsRecord, opts: SubmitOptions = {}): Promise<Outcome> {
    if (!record.sig) throw new PcsValueError("sig", '""', "the record is not signed; call signRecord first");
    const body = serializeRecord(record);
    if (body.length > MAX_BODY_BYTES) throw new PcsValueError("body", `${body.length} bytes`, "over the 1 MiB limit");
    const headers = this.#headers(opts.requestId ?? globalThis.crypto.randomUUID());
    headers["Content-Type"] = "application/json";
    if (opts.respondAsync) headers["Prefer"] = "respond-async";
    return this.#outcome(await this.#do({ method: "POST", path: "/v1/pcs/submit", body, headers, signal: opts.signal }));
  }

  /** GET /v1/pcs/{pcs_id}: the tenant's stored outcome (NotFoundError if none). */
  async getOutcome(pcsId: string, opts: { signal?: AbortSignal } = {}): Promise<Outcome> {
    return this.#outcome(await this.#do({ method: "GET", path: `/v1/pcs/${encodeURIComponent(pcsId)}`, headers: this.#readHeaders(), signal: opts.signal }));
  }

  /** GET /v1/requests/{id}: what became of one request; a rejection throws RejectedError. */
  async getRequest(requestId: string, opts: { signal?: AbortSignal } = {}): Promise<Outcome> {
    const a = await this.#do({ method: "GET", path: `/v1/requests/${encodeURIComponent(requestId)}`, headers: this.#readHeaders(), signal: opts.signal });
    let j: Record<string, unknown> = {};
    try {
      j = JSON.parse(a.text) as Record<string, unknown>;
    } catch {
      // #outcome reports it
    }
    if (j["status"] === "rejected") {
      // The code is "error" (or the outcome's "reason"); the status "http_status", else the answer's.
      const status = typeof j["http_status"] === "number" ? j["http_status"] : a.status;
      const err = errorFor(status, { error: String(j["error"] ?? j["reason"] ?? "rejected"), detail: String(j["detail"] ?? ""), request_id: requestId }, a.endpoint, null);
      throw new RejectedError(requestId, err);
    }
    return this.#outcome(a);
  }

  /** Polls a pending outcome until its verdict is known (100 ms doubling to 2 s between polls). */
  async wait(outcome: Outcome, opts: { signal?: AbortSignal } = {}): Promise<AcceptedOutcome | EscalatedOutcome> {
    let o = outcome;
    let delay = 100;
    while (o.status === "pending") {
      await this.#sleep(delay, opts.signal);
      delay = Math.min(2 * delay, 2000);
      o = await this.getRequest(o.request_id, opts);
    }
    return o;
  }

  /** submit, then wait when the answer is pending. */
  async submitAndWait(record: PcsRecord, opts: SubmitOptions = {}): Promise<AcceptedOutcome | EscalatedOutcome> {
    const waitOpts = opts.signal === undefined ? {} : { signal: opts.signal };
    return this.wait(await this.submit(record, opts), waitOpts);
  }
}
