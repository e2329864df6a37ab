"""Prometheus metrics: request counts and latencies by endpoint and status, and /metrics.

Under gunicorn several workers serve one port, so `serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory and /metrics aggregates every worker's files.
"""

from __future__ import annotations

import os
import time

from flask import Flask, Response, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

from shared.contract import Answer, declare

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by service, endpoint, method and status.",
    ["service", "endpoint", "method", "status"],
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by service and endpoint.",
    ["service", "endpoint", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)


# gunicorn accepts any method token, and every label value is a new series in every worker's
# multiprocess file: only these are counted by name, anything else as "other".
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else "other"


def _registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    from prometheus_client import REGISTRY

    return REGISTRY


def register_metrics(app: Flask, service: str) -> None:
    """Count and time every request; serve GET /metrics in the Prometheus text format."""

    @app.before_request
    def _metrics_start():
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _metrics_record(response):
        # The URL rule, not the path, so per-device URLs do not explode the label set.
        endpoint = request.url_rule.rule if request.url_rule else "other"
        method = method_label(request.method)
        REQUESTS.labels(service, endpoint, method, str(response.status_code)).inc()
        started = g.get("metrics_started")
        if started is not None:
            LATENCY.labels(service, endpoint, method).observe(time.perf_counter() - started)
        return response

    @declare(
        answers=[Answer(200, None, "Prometheus text format", media=CONTENT_TYPE_LATEST)],
        tags=["operations"],
    )
    def metrics():
        """Prometheus metrics of this service (every worker's, aggregated)."""
        return Response(generate_latest(_registry()), mimetype=CONTENT_TYPE_LATEST)

    app.add_url_rule("/metrics", "metrics", metrics, methods=["GET"])
