"""The Python SDK client for the gateway's HTTP API (SPEC §4).

    with Client(["https://eu.example", "https://us.example"], tenant="acme",
                read_token="...") as client:
        result = client.submit(sign_pcs(build_pcs(...), HmacSigner(secret)))
        if isinstance(result, Pending):
            result = client.wait(result)

Answers are values (Accepted, Escalated, Pending); failures are typed errors carrying the
API's stable `error` code. One X-Request-Id is generated per logical submission and kept
across retries and failover, so the server deduplicates redeliveries.
"""

from __future__ import annotations

import email.utils
import json
import random
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import httpx

from .build import encode_body
from .errors import (
    ApiError,
    BadRequest,
    NotFound,
    PayloadTooLarge,
    PendingTimeout,
    RateLimited,
    RequestRejected,
    TransportError,
    Unauthorized,
    Unavailable,
)

SUBMIT_PATH: Final = "/v1/pcs/submit"
_ERROR_BODY_LIMIT: Final = 64 * 1024  # error bodies are read under a size limit
_STATUS_ERRORS: Final[dict[int, type[ApiError]]] = {
    400: BadRequest, 401: Unauthorized, 403: Unauthorized, 404: NotFound, 413: PayloadTooLarge,
    429: RateLimited,
}


@dataclass(frozen=True)
class Accepted:
    """200: accepted=true, escalated=false (SPEC §3.7)."""

    request_id: str
    pcs_id: str | None
    tenant: str | None
    dedup_hit: bool
    conflict: bool
    recomputed_D_hat: float | None
    recomputed_budget: float | None
    regime: str | None
    policy_version: str | None
    region: str | None
    body: Mapping[str, Any] = field(repr=False)

    accepted = True
    escalated = False
    reason: str | None = None


@dataclass(frozen=True)
class Escalated:
    """202 with status `escalated`: the record is stored and flagged for review (SPEC §3.4–3.6).

    `accepted` tells whether it still counts (regime or budget mismatch) or not.
    """

    request_id: str
    pcs_id: str | None
    tenant: str | None
    accepted: bool
    reason: str | None
    dedup_hit: bool
    conflict: bool
    recomputed_D_hat: float | None
    recomputed_budget: float | None
    regime: str | None
    policy_version: str | None
    region: str | None
    body: Mapping[str, Any] = field(repr=False)

    escalated = True


@dataclass(frozen=True)
class Pending:
    """202 with status `pending`: in the WAL, decision not yet known; poll with `wait`."""

    request_id: str
    location: str
    endpoint: str  # the region that took the request: asked first when polling


Result = Accepted | Escalated | Pending


def _parse_retry_after(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After is delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now())


def _result(body: Mapping[str, Any], request_id: str, location: str | None, endpoint: str
            ) -> Result:
    status = body.get("status")
    rid = str(body.get("request_id") or request_id)
    if status == "pending":
        return Pending(rid, location or f"/v1/requests/{rid}", endpoint)
    common: dict[str, Any] = {
        "request_id": rid,
        "pcs_id": body.get("pcs_id"),
        "tenant": body.get("tenant"),
        "dedup_hit": bool(body.get("dedup_hit", False)),
        "conflict": bool(body.get("conflict", False)),
        "recomputed_D_hat": body.get("recomputed_D_hat"),
        "recomputed_budget": body.get("recomputed_budget"),
        "regime": body.get("regime"),
        "policy_version": body.get("policy_version"),
        "region": body.get("region"),
        "body": body,
    }
    if status == "accepted" and not body.get("escalated", False):
        return Accepted(**common)
    if status in ("accepted", "escalated"):
        return Escalated(accepted=bool(body.get("accepted", False)),
                         reason=body.get("reason"), **common)
    raise ApiError(200, "unexpected_response", f"unknown status {status!r}", rid)


def _error(response: httpx.Response, request_id: str | None) -> ApiError:
    code, detail, rid = f"http_{response.status_code}", response.reason_phrase, request_id
    raw = response.content[:_ERROR_BODY_LIMIT]
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict):
        code = str(body.get("error") or code)
        detail = str(body.get("detail") or detail)
        rid = str(body["request_id"]) if body.get("request_id") else rid
    cls = _STATUS_ERRORS.get(response.status_code)
    if cls is None:
        cls = Unavailable if response.status_code >= 500 else ApiError
    return cls(response.status_code, code, detail, rid,
               _parse_retry_after(response.headers.get("Retry-After")))


class Client:
    """Submits PCS records to one or more region endpoints.

    Retries (at most `max_attempts` tries per call): connection failures, timeouts, 429 and
    5xx, with exponential backoff and full jitter (sleep = U(0, min(cap, base·2^n))), or
    exactly the server's Retry-After when it sends one. 400, 401 and 413 are never retried.
    A failing endpoint is marked unhealthy and the next one is tried; unhealthy endpoints
    are probed again (GET `health_path`) once `health_ttl` seconds have passed.
    The caller may bring its own httpx.Client (give it a timeout).
    """

    def __init__(
        self,
        endpoints: str | Sequence[str],
        *,
        tenant: str = "default",
        read_token: str | None = None,
        timeout: float = 10.0,
        max_attempts: int = 5,
        backoff_base: float = 0.1,
        backoff_cap: float = 5.0,
        max_retry_after: float = 60.0,
        health_path: str = "/readyz",
        health_ttl: float = 10.0,
        http: httpx.Client | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        eps = [endpoints] if isinstance(endpoints, str) else list(endpoints)
        if not eps:
            raise ValueError("at least one endpoint is required")
        if max_attempts < 1:
            raise ValueError("max_attempts must be ≥ 1")
        self.endpoints = [e.rstrip("/") for e in eps]
        self.tenant = tenant
        self._read_token = read_token
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.health_path = health_path
        self.health_ttl = health_ttl
        self._own_http = http is None
        self._http = http or httpx.Client(timeout=timeout)
        self._sleep = sleep
        self._rng = rng
        self._clock = clock
        # endpoint → (healthy, when checked); absent = never checked, assumed healthy.
        self._health: dict[str, tuple[bool, float]] = {}

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._own_http:
            self._http.close()

    # --- health and endpoint choice ---------------------------------------------------

    def probe(self, endpoint: str) -> bool:
        """GET the health path of one endpoint; records and returns whether it is healthy."""
        try:
            ok = self._http.get(endpoint + self.health_path).status_code == 200
        except httpx.HTTPError:
            ok = False
        self._health[endpoint] = (ok, self._clock())
        return ok

    def _mark(self, endpoint: str, healthy: bool) -> None:
        self._health[endpoint] = (healthy, self._clock())

    def _order(self, preferred: str | None = None) -> list[str]:
        """Endpoints to try, best first: healthy (or re-probed healthy) in configured order,
        then the rest; `preferred` first when it is healthy."""
        now = self._clock()
        healthy: list[str] = []
        unhealthy: list[str] = []
        for ep in self.endpoints:
            state = self._health.get(ep)
            if state is None:
                ok = True
            elif not state[0] and now - state[1] >= self.health_ttl:
                ok = self.probe(ep)
            else:
                ok = state[0]
            (healthy if ok else unhealthy).append(ep)
        order = healthy + unhealthy
        if preferred in healthy:
            order.remove(preferred)
            order.insert(0, preferred)
        return order

    def healthy_endpoints(self) -> list[str]:
        return [ep for ep in self.endpoints if self.probe(ep)]

    # --- the retry loop -----------------------------------------------------------------

    def _backoff(self, attempt: int) -> float:
        return float(self._rng() * min(self.backoff_cap, self.backoff_base * (2**attempt)))

    def _call(self, method: str, path: str, *, request_id: str, headers: dict[str, str],
              content: bytes | None = None, preferred: str | None = None
              ) -> tuple[httpx.Response, str]:
        last: Exception | None = None
        tried_this_round: set[str] = set()
        for attempt in range(self.max_attempts):
            order = self._order(preferred)
            endpoint = next((e for e in order if e not in tried_this_round), None)
            if endpoint is None:  # every endpoint failed once: back off, start a new round
                tried_this_round.clear()
                endpoint = order[0]
            tried_this_round.add(endpoint)
            wait: float | None = None
            try:
                response = self._http.request(method, endpoint + path, headers=headers,
                                              content=content)
            except httpx.TransportError as exc:
                self._mark(endpoint, False)
                last = exc
            else:
                if response.status_code < 400:
                    self._mark(endpoint, True)
                    return response, endpoint
                error = _error(response, request_id)
                if not error.retryable:
                    raise error
                if isinstance(error, Unavailable):
                    self._mark(endpoint, False)  # backpressure or WAL trouble: prefer another
                last = error
                wait = error.retry_after
            if attempt == self.max_attempts - 1:
                break
            next_order = self._order(preferred)
            failover = any(e not in tried_this_round for e in next_order)
            if wait is not None:
                self._sleep(min(wait, self.max_retry_after))
            elif not failover:
                self._sleep(self._backoff(attempt))
        if isinstance(last, ApiError):
            raise last
        raise TransportError(f"no endpoint answered after {self.max_attempts} attempts: {last}",
                             request_id)

    def _headers(self, request_id: str, tenant: str | None, *, read: bool = False
                 ) -> dict[str, str]:
        headers = {"X-Tenant-Id": tenant or self.tenant, "X-Request-Id": request_id,
                   "Accept": "application/json"}
        if read and self._read_token:
            headers["Authorization"] = f"Bearer {self._read_token}"
        return headers

    # --- API ------------------------------------------------------------------------------

    def submit(self, pcs: Mapping[str, Any] | bytes, *, request_id: str | None = None,
               tenant: str | None = None, respond_async: bool = False) -> Result:
        """POST /v1/pcs/submit. `pcs` is a signed PCS object or the exact body bytes.

        Returns Accepted, Escalated or Pending; raises BadRequest, Unauthorized,
        PayloadTooLarge (never retried), RateLimited / Unavailable / TransportError once the
        retries are spent.
        """
        body = pcs if isinstance(pcs, bytes) else encode_body(pcs)
        rid = request_id or str(uuid.uuid4())
        headers = self._headers(rid, tenant)
        headers["Content-Type"] = "application/json"
        if respond_async:
            headers["Prefer"] = "respond-async"
        response, endpoint = self._call("POST", SUBMIT_PATH, request_id=rid, headers=headers,
                                        content=body)
        return _result(self._json(response, rid), rid, response.headers.get("Location"),
                       endpoint)

    def request_status(self, request_id: str, *, tenant: str | None = None,
                       endpoint: str | None = None) -> Result:
        """GET /v1/requests/{id}: pending, an outcome, or RequestRejected."""
        response, ep = self._call("GET", f"/v1/requests/{request_id}", request_id=request_id,
                                  headers=self._headers(request_id, tenant, read=True),
                                  preferred=endpoint)
        body = self._json(response, request_id)
        if body.get("status") == "rejected":
            # The answer itself is 200 (the request is known); the rejection's own status is
            # "http_status" (400 or 401), as the gateway stores it.
            status = body.get("http_status")
            raise RequestRejected(status if isinstance(status, int) else response.status_code,
                                  str(body.get("error") or body.get("reason") or "rejected"),
                                  str(body.get("detail") or ""), request_id)
        return _result(body, request_id, None, ep)

    def wait(self, pending: Pending | str, *, timeout: float = 30.0, interval: float = 0.25,
             tenant: str | None = None) -> Accepted | Escalated:
        """Poll GET /v1/requests/{id} until the request has an outcome (or PendingTimeout).

        404 counts as "not visible yet" (the request may still be crossing regions).
        """
        rid = pending if isinstance(pending, str) else pending.request_id
        preferred = None if isinstance(pending, str) else pending.endpoint
        start = self._clock()
        delay = interval
        while True:
            try:
                result = self.request_status(rid, tenant=tenant, endpoint=preferred)
            except NotFound:
                result = None
            if isinstance(result, (Accepted, Escalated)):
                return result
            waited = self._clock() - start
            if waited + delay > timeout:
                raise PendingTimeout(rid, waited)
            self._sleep(delay)
            delay = min(delay * 2, 2.0)

    def outcome(self, pcs_id: str, *, tenant: str | None = None) -> Accepted | Escalated:
        """GET /v1/pcs/{pcs_id}: the tenant's stored outcome (NotFound if unknown to it)."""
        rid = str(uuid.uuid4())
        response, ep = self._call("GET", f"/v1/pcs/{pcs_id}", request_id=rid,
                                  headers=self._headers(rid, tenant, read=True))
        result = _result(self._json(response, rid), rid, None, ep)
        if isinstance(result, Pending):
            raise ApiError(response.status_code, "unexpected_response",
                           "an outcome read answered pending", rid)
        return result

    @staticmethod
    def _json(response: httpx.Response, request_id: str) -> dict[str, Any]:
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise ApiError(response.status_code, "unexpected_response",
                           "the answer is not a JSON object", request_id)
        return body
