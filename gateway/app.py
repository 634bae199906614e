"""The gateway process: its components (tenants, clock, limiter, WAL writer, reply reader,
lag monitor, outcome store) and the Starlette application that serves SPEC §4."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import yaml
from flk_pcs import KeySetError, PolicyError
from redis.asyncio import Redis
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway import errors as E
from gateway import routes
from gateway.accesslog import AccessLog
from gateway.backpressure import LagMonitor
from gateway.hlc import HybridClock
from gateway.limits import Limiter
from gateway.metrics import GatewayMetrics
from gateway.redisio import REDIS_TIMEOUT_S, TurnPipeline, connect_redis
from gateway.replies import ReplyReader
from gateway.settings import Settings
from gateway.store import OutcomeStore, RequestMarkers
from gateway.tenants import TenantsFileError, TenantsStore
from gateway.wal import WalWriter
from infra.layout import load_layout

log = logging.getLogger("flk.gateway")

OPENAPI_PATH = Path(__file__).with_name("openapi.yaml")


class Gateway:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.region = settings.region.name
        self.metrics = GatewayMetrics(self.region, settings.index)
        self.tenants = TenantsStore(settings.home, settings.tenants_file, settings.policy_file)
        self.clock = HybridClock(
            settings.clock_offset_ms, settings.max_future_skew_ms,
            on_skew=lambda _ms: self.metrics.future_skew.labels(self.region).inc())
        self.openapi_text = OPENAPI_PATH.read_text(encoding="utf-8")
        self.openapi_doc: Any = yaml.safe_load(self.openapi_text)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._broker_ok = False
        self._broker_at = 0.0
        self.admitted = 0  # submits past the pre-WAL checks, not answered yet
        self.access = AccessLog(settings.access_log_file, settings.access_log_max_bytes,
                                settings.access_log_backups) if settings.access_log else None
        # Built in start(): they need the running loop.
        self.redis: Redis
        self.redis_batch: TurnPipeline
        self.limiter: Limiter
        self.markers: RequestMarkers
        self.wal: WalWriter
        self.replies: ReplyReader
        self.lag: LagMonitor | None = None
        self.outcomes: OutcomeStore

    # --- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        s = self.settings
        snap = self.tenants.load()  # a bad file at start-up stops the process, naming the field
        self._info(snap.keyset.version, snap.policy.version)
        self.metrics.reloads.labels(self.region, "ok").inc()
        self.redis = connect_redis(s.region.redis_url, timeout_s=REDIS_TIMEOUT_S)
        self.redis_batch = TurnPipeline(self.redis)
        self.limiter = Limiter(self.redis_batch, self.region, timeout_s=REDIS_TIMEOUT_S)
        self.markers = RequestMarkers(self.redis_batch, s.request_marker_ttl_s)
        self.wal = WalWriter(s.region.kafka_bootstrap, s.wal_timeout_ms, s.linger_ms,
                             on_fatal=lambda _r: self.metrics.wal_rebuilds.labels(
                                 self.region).inc())
        self.replies = ReplyReader(
            s.region.kafka_bootstrap, s.reply_partition,
            on_drop=lambda why: self.metrics.replies_dropped.labels(self.region, why).inc())
        self.replies.start(asyncio.get_running_loop())
        others = [r.name for r in load_layout().others(s.region)]
        self.lag = LagMonitor(s.region.kafka_bootstrap, self.region, others,
                              s.backpressure_lag, s.backpressure_poll_s,
                              on_lag=lambda n: self.metrics.dedup_lag.labels(self.region).set(n))
        self.lag.start()
        self.outcomes = OutcomeStore(s.region.postgres_dsn)
        self._spawn(self._reload_loop())
        self._spawn(self._broker_loop())

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.replies.stop()
        if self.lag is not None:
            self.lag.stop()
        await asyncio.to_thread(self.wal.close)
        await self.outcomes.close()
        await self.redis_batch.close()
        await self.redis.aclose()
        if self.access is not None:
            self.access.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _info(self, keyset_version: str, policy_version: str) -> None:
        self.metrics.gateway_info.clear()
        self.metrics.gateway_info.labels(self.region, self.metrics.index, keyset_version,
                                         policy_version).set(1)

    async def _reload_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.reload_interval_s)
            for handler in logging.getLogger().handlers:
                handler.flush()  # buffered info lines (gateway/server.py)
            if self.access is not None:
                self.access.flush()
            try:
                if self.tenants.maybe_reload():
                    snap = self.tenants.snapshot
                    assert snap is not None
                    self._info(snap.keyset.version, snap.policy.version)
                    self.metrics.reloads.labels(self.region, "ok").inc()
                    log.info("tenants reloaded: keyset %s, policy %s, %d tenants",
                             snap.keyset.version, snap.policy.version, len(snap.tenants))
            except (TenantsFileError, PolicyError, KeySetError):
                self.metrics.reloads.labels(self.region, "refused").inc()
            except Exception:
                log.exception("tenants reload failed")

    async def _broker_loop(self) -> None:
        while True:
            ok = await asyncio.to_thread(self.wal.reachable, 1.0)
            self._broker_ok, self._broker_at = ok, time.monotonic()
            await asyncio.sleep(1.0 if ok else 0.5)

    # --- used by the routes ----------------------------------------------------------------

    def readiness(self) -> dict[str, Any]:
        snap = self.tenants.snapshot
        broker = self._broker_ok and time.monotonic() - self._broker_at < 5.0
        assigned = self.replies.assigned.is_set()
        facts: dict[str, Any] = {
            "ready": bool(broker and assigned and snap is not None),
            "region": self.region, "index": self.settings.index,
            "broker": broker, "reply_partition_assigned": assigned,
            "tenants_loaded": snap is not None,
            "keyset_version": snap.keyset.version if snap else None,
            "policy_version": snap.policy.version if snap else None,
            "tenants_error": self.tenants.last_error,
            "dedup_lag": self.lag.lag if self.lag else None,
        }  # fmt: skip
        return facts

    def remember(self, tenant: str, request_id: str, status: int,
                 answer: dict[str, Any]) -> asyncio.Future[Any]:
        """Queue the request marker; returns its write's future (a failure is logged, never
        raised to the request). A request gets one marker: its final answer, or `pending` when
        it was answered 202 pending (a reply arriving after that is not this process's to
        record: the outcome store has it)."""
        if answer.get("status") == "pending":
            future = self.markers.pending(tenant, request_id, answer.get("pcs_id"))
        else:
            future = self.markers.answered(tenant, request_id, status, answer)

        def written(done: asyncio.Future[Any]) -> None:
            exc = None if done.cancelled() else done.exception()
            if exc is not None:
                log.warning("request marker not written request_id=%s: %s", request_id, exc)

        future.add_done_callback(written)
        return future

    def answered(self, tenant: str, request_id: str, status: int,
                 answer: dict[str, Any]) -> Response:
        """Record the answer (in the background) and return it as the response."""
        self.remember(tenant, request_id, status, answer)
        return E.json_response(status, answer, request_id)

    def counted(self, response: Response, tenant: str, route: str) -> Response:
        self.metrics.count(tenant, route, response.status_code)
        return response


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: E.NOT_FOUND, 405: E.METHOD_NOT_ALLOWED}.get(exc.status_code, "http_error")
    # Routing answers (a path no route matches, e.g. `/v1/pcs/a/b`) carry a request id too.
    rid = request.headers.get("x-request-id")
    if rid is None or routes.REQUEST_ID_RE.fullmatch(rid) is None:
        rid = str(uuid.uuid4())
    return E.error_response(exc.status_code, code, str(exc.detail), rid)


async def _internal(request: Request, exc: Exception) -> Response:
    log.error("unhandled error on %s: %s", request.url.path, type(exc).__name__)
    return E.error_response(500, E.INTERNAL, "internal error; see the gateway log", None)


SUBMIT_PATH = "/v1/pcs/submit"


class GatewayApp:
    """The ASGI application. A submit goes straight to `routes.SubmitEndpoint`, which answers
    every error itself (a 500 for the unexpected); everything else — the other routes, 404,
    405, lifespan — goes through Starlette. Starlette's middleware and router layers were about
    a seventh of a busy gateway's event-loop time for the one route that carries the load."""

    def __init__(self, starlette: Starlette, submit: routes.SubmitEndpoint) -> None:
        self.starlette = starlette
        self.state = starlette.state
        self.routes = starlette.routes
        self._submit = submit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == SUBMIT_PATH and scope["method"] == "POST":
            await self._submit(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def create_app(settings: Settings) -> GatewayApp:
    gateway = Gateway(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await gateway.start()
        try:
            yield
        finally:
            await gateway.stop()

    submit = routes.SubmitEndpoint(gateway)
    app = Starlette(
        routes=[
            Route(SUBMIT_PATH, submit, methods=["POST"]),
            Route("/v1/pcs/{pcs_id}", routes.get_pcs, methods=["GET"]),
            Route("/v1/requests/{request_id}", routes.get_request, methods=["GET"]),
            Route("/healthz", routes.healthz, methods=["GET"]),
            Route("/readyz", routes.readyz, methods=["GET"]),
            Route("/metrics", routes.metrics, methods=["GET"]),
            Route("/openapi.yaml", routes.openapi_yaml, methods=["GET"]),
            Route("/openapi.json", routes.openapi_json, methods=["GET"]),
        ],
        exception_handlers={HTTPException: _http_error, Exception: _internal},
        lifespan=lifespan,
    )
    app.state.gw = gateway
    return GatewayApp(app, submit)
