"""Prometheus metrics of one gateway process, labelled by region (and tenant where bounded:
tenants come from the tenants file; anything else is counted as `unknown`)."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.075, 0.1, 0.25,
            0.5, 1.0, 2.0, 5.0)  # fmt: skip


class GatewayMetrics:
    def __init__(self, region: str, index: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.region = region
        self.requests = Counter(
            "flk_gateway_requests", "HTTP requests answered, by route and status",
            ["region", "tenant", "route", "status"], registry=r)
        self.latency = Histogram(
            "flk_gateway_request_seconds", "Time to answer a submit", ["region"],
            buckets=_LATENCY, registry=r)
        self.wal_produce = Histogram(
            "flk_gateway_wal_produce_seconds", "WAL write until the broker's acknowledgement",
            ["region"], buckets=_LATENCY, registry=r)
        self.wal_errors = Counter(
            "flk_gateway_wal_errors", "WAL writes not acknowledged", ["region", "reason"],
            registry=r)
        self.wal_rebuilds = Counter(
            "flk_gateway_wal_producer_rebuilds", "Producers replaced after a fatal error",
            ["region"], registry=r)
        self.reply_wait = Histogram(
            "flk_gateway_reply_wait_seconds", "Wait for the dedup decision after the WAL ack",
            ["region", "result"], buckets=_LATENCY, registry=r)
        self.in_flight = Gauge(
            "flk_gateway_in_flight", "Submits being handled", ["region"], registry=r)
        self.overloaded = Counter(
            "flk_gateway_overloaded", "Submits refused because the process had its bound of "
            "submits in flight", ["region"], registry=r)
        self.pending = Counter(
            "flk_gateway_pending_answers", "Submits answered 202 pending", ["region", "tenant"],
            registry=r)
        self.replies_dropped = Counter(
            "flk_gateway_replies_dropped", "Replies nobody waited for", ["region", "why"],
            registry=r)
        self.future_skew = Counter(
            "flk_gateway_hlc_future_skew", "Stamps refused for being too far in the future",
            ["region"], registry=r)
        self.limited = Counter(
            "flk_gateway_limited", "Submits refused by rate or quota", ["region", "tenant",
                                                                        "reason"], registry=r)
        self.limiter_errors = Counter(
            "flk_gateway_limiter_errors", "Rate-limit checks that failed (request let through)",
            ["region"], registry=r)
        self.dedup_lag = Gauge(
            "flk_gateway_dedup_lag", "Records the dedup stage has not committed yet",
            ["region"], registry=r)
        self.reloads = Counter(
            "flk_gateway_tenants_reloads", "Tenants/policy file loads", ["region", "result"],
            registry=r)
        self.gateway_info = Gauge(
            "flk_gateway_info", "Versions in force (value 1)",
            ["region", "index", "keyset_version", "policy_version"], registry=r)
        self.index = str(index)
        # Children bound once: a labels() lookup per use costs more than the increment.
        self.latency_r = self.latency.labels(region)
        self.wal_produce_r = self.wal_produce.labels(region)
        self.in_flight_r = self.in_flight.labels(region)
        self.overloaded_r = self.overloaded.labels(region)
        self._counted: dict[tuple[str, str, int], Any] = {}

    def count(self, tenant: str, route: str, status: int) -> None:
        key = (tenant, route, status)
        child = self._counted.get(key)
        if child is None:
            child = self._counted[key] = self.requests.labels(self.region, tenant, route,
                                                              str(status))
        child.inc()
