"""Prometheus metrics of one server process: requests, latency per route and strategy,
source failures per model, credits charged. Served at GET /metrics."""

from __future__ import annotations

from collections.abc import Set

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160)


class Metrics:
    """``known_models`` are the ids the catalogue and moa.toml name: only those become
    label values; any other id a client sends counts under ``<provider>/other``, so the
    label sets stay bounded whatever clients send."""

    def __init__(self, known_models: Set[str] = frozenset()) -> None:
        self._known_models = known_models
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "moa_requests_total",
            "Requests by route and final status.",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "moa_request_latency_seconds",
            "Request latency by route and strategy.",
            ["route", "strategy"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.source_failures = Counter(
            "moa_source_failures_total",
            "Failed source calls by model.",
            ["model"],
            registry=self.registry,
        )
        self.credits_charged = Counter(
            "moa_credits_charged_total", "Credits charged.", registry=self.registry
        )

    def observe_request(
        self, route: str, strategy: str | None, status: str, seconds: float
    ) -> None:
        self.requests.labels(route=route, status=status).inc()
        self.latency.labels(route=route, strategy=strategy or "").observe(seconds)

    def model_label(self, model: str) -> str:
        if model in self._known_models:
            return model
        return f"{model.partition('/')[0]}/other"

    def source_failed(self, model: str) -> None:
        self.source_failures.labels(model=self.model_label(model)).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
