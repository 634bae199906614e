"""The HTTP API of SPEC §4. Submit order: 413 · 401 unknown tenant · 429 · 503 backpressure or
overloaded · WAL write (503 if not acknowledged) · 400 / 401 from the core · wait for the dedup
decision (200 / 202, or 202 pending)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any, Final

from flk_pcs import MalformedError, PCSRecord, SignatureCheck, parse, verify_signature
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from gateway import errors as E
from gateway.errors import error_response, json_response
from gateway.redisio import REDIS_ERRORS, REDIS_TIMEOUT_S
from gateway.tenants import TENANT_RE, Snapshot, Tenant
from gateway.wal import WalUnavailable
from topics.catalogue import REPLIES
from topics.wal import ReplyTo, WalHeaders, record_key

if TYPE_CHECKING:
    from gateway.app import Gateway

log = logging.getLogger("flk.gateway")

REQUEST_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}", re.ASCII)
PCS_ID_RE: Final = re.compile(r"[0-9a-f]{64}", re.ASCII)
_OPTIONAL: Final = ("reason", "recomputed_D_hat", "recomputed_budget", "regime")


def _gw(request: Request) -> Gateway:
    gw: Gateway = request.app.state.gw
    return gw


_SUBMIT_HEADERS: Final = frozenset({b"x-request-id", b"x-tenant-id", b"content-length", b"prefer"})
CLIENT_CLOSED: Final = 499  # the status counted for a submit whose client went away (no answer)


def _submit_headers(scope: Scope) -> dict[bytes, str]:
    """The few headers a submit reads, in one pass over the raw list."""
    out: dict[bytes, str] = {}
    for name, value in scope["headers"]:
        if name in _SUBMIT_HEADERS:
            out[name] = value.decode("latin-1")
    return out


def _request_id(given: str | None) -> tuple[str, Response | None]:
    if given is None:
        return str(uuid.uuid4()), None
    if REQUEST_ID_RE.fullmatch(given) is None:
        rid = str(uuid.uuid4())
        return rid, error_response(
            400, E.INVALID_REQUEST_ID,
            "X-Request-Id must be 1-128 of A-Z a-z 0-9 . _ : - starting with a letter or digit",
            rid)
    return given, None


class _ClientGone(Exception):
    """The client disconnected before its body was read."""


async def _read_body(receive: Receive, length: str | None, limit: int) -> bytes | None:
    """The whole body, or None as soon as it exceeds `limit` (never truncated: SPEC §4)."""
    if length is not None and length.isdigit() and int(length) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        if not message.get("more_body", False):
            if not chunks:
                return chunk
            chunks.append(chunk)
            return b"".join(chunks)
        chunks.append(chunk)


def _verdict_body(answer: dict[str, Any], region: str) -> dict[str, Any]:
    body = {
        "request_id": answer["request_id"], "status": answer["status"],
        "pcs_id": answer.get("pcs_id"), "tenant": answer["tenant"],
        "accepted": bool(answer.get("accepted")), "escalated": bool(answer.get("escalated")),
        "dedup_hit": bool(answer.get("dedup_hit", False)),
        "conflict": bool(answer.get("conflict", False)),
        "policy_version": answer.get("policy_version"), "region": region,
    }  # fmt: skip
    for name in _OPTIONAL:
        if answer.get(name) is not None:
            body[name] = answer[name]
    return body


def _pending_body(rid: str, tenant: str, pcs_id: str | None, policy_version: str,
                  region: str) -> dict[str, Any]:  # fmt: skip
    return {"request_id": rid, "status": "pending", "pcs_id": pcs_id, "tenant": tenant,
            "accepted": False, "escalated": False, "dedup_hit": False,
            "policy_version": policy_version, "region": region}  # fmt: skip


def _pending_response(rid: str, body: dict[str, Any]) -> Response:
    return json_response(202, body, rid, {"Location": f"/v1/requests/{rid}"})


class _Outcome:
    """What one submit came to, for the metrics and the log line."""

    __slots__ = ("pcs_id", "reason", "tenant")

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant
        self.pcs_id: str | None = None
        self.reason: str | None = None


class SubmitEndpoint:
    """`POST /v1/pcs/submit` as a plain ASGI app: the busiest route skips Starlette's Request
    object and per-call wrapper (about a tenth of a gateway's CPU at saturation); the other
    routes are ordinary Starlette functions."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await submit(self.gw, scope, receive)
        if response is not None:
            await response(scope, receive, send)


async def submit(gw: Gateway, scope: Scope, receive: Receive) -> Response | None:
    """The answer to one submit; None when the client went away before sending its body."""
    t0 = time.perf_counter()
    gw.metrics.in_flight_r.inc()
    headers = _submit_headers(scope)
    rid, bad = _request_id(headers.get(b"x-request-id"))
    out = _Outcome("unknown")
    response: Response | None
    try:
        response = bad or await _submit(gw, receive, headers, rid, out)
    except _ClientGone:
        out.reason = "client_closed"
        response = None
    except Exception:
        log.exception("submit failed request_id=%s tenant=%s", rid, out.tenant)
        out.reason = E.INTERNAL
        response = error_response(500, E.INTERNAL, "internal error; see the gateway log", rid)
    finally:
        gw.metrics.in_flight_r.dec()
    status = CLIENT_CLOSED if response is None else response.status_code
    gw.metrics.latency_r.observe(time.perf_counter() - t0)
    gw.metrics.count(out.tenant, "submit", status)
    if gw.access is not None:
        gw.access.line(f"submit request_id={rid} tenant={out.tenant} pcs_id={out.pcs_id} "
                       f"status={status} reason={out.reason}")
    return response


async def _submit(gw: Gateway, receive: Receive, headers: dict[bytes, str], rid: str,
                  out: _Outcome) -> Response:  # fmt: skip
    settings = gw.settings
    body = await _read_body(receive, headers.get(b"content-length"), settings.max_body_bytes)
    tenant_id = headers.get(b"x-tenant-id") or "default"
    snap = gw.tenants.snapshot
    assert snap is not None
    tenant = snap.tenants.get(tenant_id)
    if tenant is not None:
        out.tenant = tenant.id
    if body is None:
        out.reason = E.PAYLOAD_TOO_LARGE
        return error_response(413, E.PAYLOAD_TOO_LARGE,
                              f"the body exceeds {settings.max_body_bytes} bytes", rid)
    if tenant is None:
        out.reason = E.UNKNOWN_TENANT
        shown = tenant_id if TENANT_RE.fullmatch(tenant_id) else "(invalid id)"
        return error_response(401, E.UNKNOWN_TENANT, f"tenant {shown} is not known", rid)
    try:
        verdict = await gw.limiter.take(tenant)
    except REDIS_ERRORS as exc:  # fail open: the WAL matters more than the limit
        gw.metrics.limiter_errors.labels(gw.region).inc()
        log.warning("rate limiter unavailable, request let through: %s", exc)
    else:
        if not verdict.allowed:
            assert verdict.reason is not None
            out.reason = verdict.reason
            gw.metrics.limited.labels(gw.region, tenant.id, verdict.reason).inc()
            what = "rate" if verdict.reason == E.RATE_LIMITED else "daily quota"
            return error_response(429, verdict.reason, f"tenant {tenant.id} is over its {what}",
                                  rid, verdict.retry_after_s)
    if gw.lag is not None and gw.lag.over():
        out.reason = E.BACKPRESSURE
        return error_response(503, E.BACKPRESSURE, "the pipeline is behind; retry later", rid,
                              settings.retry_after_s)
    if gw.admitted >= settings.max_in_flight:
        # A bound on what one event loop holds (answers, reply waits, markers): a refusal
        # costs no WAL write, reply wait or marker (docs/gateway.md says what it cannot do).
        out.reason = E.OVERLOADED
        gw.metrics.overloaded_r.inc()
        return error_response(503, E.OVERLOADED, "this gateway has too many submits in flight;"
                              " retry later", rid, settings.retry_after_s)
    respond_async = "respond-async" in headers.get(b"prefer", "").lower()
    gw.admitted += 1
    try:
        return await _append_and_answer(gw, respond_async, rid, tenant, snap, body, out)
    finally:
        gw.admitted -= 1


async def _append_and_answer(gw: Gateway, respond_async: bool, rid: str, tenant: Tenant,
                             snap: Snapshot, body: bytes, out: _Outcome) -> Response:  # fmt: skip
    settings = gw.settings
    stamp = gw.clock.now()
    # The body is read here only to choose the partition key and to prepare the answer;
    # whatever it holds, it is appended (SPEC §5 WAL before verdict).
    record: PCSRecord | None = None
    malformed: MalformedError | None = None
    check: SignatureCheck | None = None
    try:
        record = parse(body)
    except MalformedError as exc:
        malformed = exc
    if record is not None:
        out.pcs_id = record.pcs_id
        check = verify_signature(record, snap.keyset, tenant.id, stamp.ms)
    pcs_id = record.pcs_id if record is not None else None
    will_wait = check is not None and check.ok and not respond_async
    waiter = gw.replies.expect(rid, tenant.id) if will_wait else None
    headers = WalHeaders(
        tenant=tenant.id, origin=gw.region, request_id=rid, stamp=stamp,
        body_sha256=hashlib.sha256(body).hexdigest(), policy_version=snap.policy.version,
        keyset_version=snap.keyset.version, reply_to=ReplyTo(REPLIES, settings.reply_partition),
    )  # fmt: skip
    try:
        ack = await gw.wal.append(record_key(tenant.id, pcs_id, rid), body,
                                  list(headers.encode()))
    except WalUnavailable as exc:
        if waiter is not None:
            gw.replies.forget(rid)
        gw.metrics.wal_errors.labels(gw.region, exc.reason).inc()
        out.reason = E.WAL_UNAVAILABLE
        return error_response(503, E.WAL_UNAVAILABLE,
                              "the write-ahead log did not acknowledge the request; retry later",
                              rid, settings.retry_after_s)
    gw.metrics.wal_produce_r.observe(ack.seconds)
    if malformed is not None:
        out.reason = malformed.code
        return gw.answered(tenant.id, rid, 400, E.error_body(malformed.code, malformed.detail,
                                                             rid))  # fmt: skip
    assert check is not None
    if not check.ok:
        reason = check.reason or "bad_signature"
        out.reason = reason
        return gw.answered(tenant.id, rid, 401, E.error_body(
            reason, f"no key of tenant {tenant.id} valid at the receive stamp verifies sig"
            if reason in ("bad_signature", "no_valid_key") else "the record has no signature",
            rid))
    pending = _pending_body(rid, tenant.id, pcs_id, snap.policy.version, gw.region)
    if waiter is not None:
        t_wait = time.perf_counter()
        try:
            reply = await asyncio.wait_for(waiter, settings.reply_wait_s)
        except TimeoutError:
            gw.replies.forget(rid)
            gw.metrics.reply_wait.labels(gw.region, "timeout").observe(
                time.perf_counter() - t_wait)
        else:
            gw.metrics.reply_wait.labels(gw.region, "reply").observe(
                time.perf_counter() - t_wait)
            # Answered in time: no marker. A worker replies only once the outcome store has
            # the request (streams/app.py), so a read of it finds the store's row.
            status, answer = answer_from_reply(reply, rid, gw.region, out)
            return json_response(status, answer, rid)
    # A pending answer waits for its marker, so the Location it gives always resolves.
    out.reason = "pending"
    gw.metrics.pending.labels(gw.region, tenant.id).inc()
    await asyncio.wait([gw.remember(tenant.id, rid, 202, pending)],
                       timeout=REDIS_TIMEOUT_S)
    return _pending_response(rid, pending)


def answer_from_reply(reply: dict[str, Any], rid: str, region: str, out: _Outcome
                      ) -> tuple[int, dict[str, Any]]:  # fmt: skip
    status = int(reply.get("http_status", 500))
    out.reason = reply.get("reason")
    if status in (200, 202) and reply.get("status") in ("accepted", "escalated"):
        return status, _verdict_body(reply, region)
    code = str(reply.get("reason") or "rejected")
    return status, E.error_body(code, str(reply.get("detail") or code), rid)


# --- reads ---------------------------------------------------------------------------------


def _reader(request: Request, snap: Snapshot, rid: str) -> Tenant | Response:
    """The tenant whose read token is presented (SPEC §4: Bearer; constant-time compare)."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return error_response(401, E.UNAUTHORIZED, "a Bearer read token is required", rid)
    named = request.headers.get("x-tenant-id")
    if named:
        tenant = snap.tenants.get(named)
        if tenant is not None and tenant.token_matches(token):
            return tenant
    else:
        found = snap.tenant_for_token(token)
        if found is not None:
            return found
    return error_response(401, E.UNAUTHORIZED, "the read token is not valid for this tenant",
                          rid)


def _not_found(what: str, rid: str) -> Response:
    return error_response(404, E.NOT_FOUND, f"{what} is not known to this tenant", rid)


def _authorized(request: Request, route: str) -> tuple[Gateway, str, Tenant] | Response:
    """The common start of the read routes: a valid request id and the tenant's read token."""
    gw = _gw(request)
    rid, bad = _request_id(request.headers.get("x-request-id"))
    if bad is not None:
        return bad
    snap = gw.tenants.snapshot
    assert snap is not None
    who = _reader(request, snap, rid)
    if isinstance(who, Response):
        return gw.counted(who, "unknown", route)
    return gw, rid, who


async def get_pcs(request: Request) -> Response:
    checked = _authorized(request, "pcs")
    if isinstance(checked, Response):
        return checked
    gw, rid, who = checked
    pcs_id = request.path_params["pcs_id"]
    if PCS_ID_RE.fullmatch(pcs_id) is None:
        return gw.counted(_not_found("pcs_id", rid), who.id, "pcs")
    try:
        row = await gw.outcomes.outcome(who.id, pcs_id)
    except Exception as exc:
        log.warning("outcome store unavailable: %s", exc)
        return gw.counted(error_response(503, E.UNAVAILABLE, "the outcome store is unavailable",
                                         rid, gw.settings.retry_after_s), who.id, "pcs")
    if row is None:
        return gw.counted(_not_found("pcs_id", rid), who.id, "pcs")
    outcome = dict(row["outcome"])
    outcome["request_id"] = row["winner_request_id"]
    body = _verdict_body(outcome, gw.region)
    body.pop("conflict", None)  # per-request facts; a stored outcome has neither
    body["dedup_hit"] = False
    body["winner_origin"] = row["winner_origin"]
    body["body_sha256"] = outcome.get("body_sha256")
    return gw.counted(json_response(200, body, rid), who.id, "pcs")


async def get_request(request: Request) -> Response:
    checked = _authorized(request, "requests")
    if isinstance(checked, Response):
        return checked
    gw, rid, who = checked
    wanted = request.path_params["request_id"]
    if REQUEST_ID_RE.fullmatch(wanted) is None:
        return gw.counted(_not_found("request", rid), who.id, "requests")
    row = None
    try:
        row = await gw.outcomes.request(who.id, wanted)
    except Exception as exc:  # fall back to the markers
        log.warning("outcome store unavailable: %s", exc)
    if row is not None:
        return gw.counted(_stored_answer(wanted, who.id, row.get("pcs_id"), row["http_status"],
                                         dict(row["answer"]), gw.region), who.id, "requests")
    marker = await gw.markers.get(who.id, wanted)
    if marker is None:
        return gw.counted(_not_found("request", rid), who.id, "requests")
    if marker["state"] == "pending":
        snap = gw.tenants.snapshot
        assert snap is not None
        pending = _pending_body(wanted, who.id, marker.get("pcs_id"), snap.policy.version,
                                gw.region)
        return gw.counted(_pending_response(wanted, pending), who.id, "requests")
    return gw.counted(_stored_answer(wanted, who.id, marker["answer"].get("pcs_id"),
                                     marker["http_status"], marker["answer"], gw.region),
                      who.id, "requests")


def _stored_answer(rid: str, tenant: str, pcs_id: str | None, http_status: int,
                   answer: dict[str, Any], region: str) -> Response:  # fmt: skip
    if http_status in (200, 202) and answer.get("status") in ("accepted", "escalated"):
        answer.setdefault("request_id", rid)
        answer.setdefault("tenant", tenant)
        return json_response(http_status, _verdict_body(answer, region), rid)
    # A rejection is what became of the request: the resource exists, so 200 (SPEC §4).
    body = {"request_id": rid, "status": "rejected", "tenant": tenant, "pcs_id": pcs_id,
            "http_status": http_status, "error": answer.get("error") or answer.get("reason"),
            "detail": answer.get("detail"), "region": region}  # fmt: skip
    return json_response(200, body, rid)


# --- operations ----------------------------------------------------------------------------


async def healthz(request: Request) -> Response:
    return json_response(200, {"status": "ok"}, None)


async def readyz(request: Request) -> Response:
    gw = _gw(request)
    facts = gw.readiness()
    return json_response(200 if facts["ready"] else 503, facts, None)


def _basic_ok(request: Request, user: str, password: str) -> bool:
    import hmac

    auth = request.headers.get("authorization", "")
    scheme, _, value = auth.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return False
    given_user, _, given_password = decoded.partition(":")
    return hmac.compare_digest(given_user.encode(), user.encode()) & hmac.compare_digest(
        given_password.encode(), password.encode())


async def metrics(request: Request) -> Response:
    gw = _gw(request)
    s = gw.settings
    if s.metrics_user is not None and s.metrics_password is not None and not _basic_ok(
            request, s.metrics_user, str(s.metrics_password)):
        return Response(b"authentication required\n", 401,
                        {"WWW-Authenticate": 'Basic realm="flk-metrics"'}, "text/plain")
    return Response(generate_latest(gw.metrics.registry), 200,
                     media_type=CONTENT_TYPE_LATEST)


async def openapi_yaml(request: Request) -> Response:
    return Response(_gw(request).openapi_text, 200, media_type="application/yaml")


async def openapi_json(request: Request) -> Response:
    return json_response(200, _gw(request).openapi_doc, None)
