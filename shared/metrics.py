"""Prometheus metrics: request counts and latencies by endpoint and status, per-Cloud-ID
gauges, and /metrics.

Under gunicorn several workers serve one port, so `serve` points PROMETHEUS_MULTIPROC_DIR at a
fresh directory and /metrics aggregates every worker's files. Figures that are a property of the
data, not of a worker (the per-Cloud-ID gauges), stay out of those files: a collector of the app
(`register_collector`) adds them to the registry of the one scrape, so every series appears once
whatever the number of workers.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from flask import Flask, Response, current_app, g, request
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily

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


log = logging.getLogger(__name__)

_COLLECTORS = "metrics_collectors"


class _ProcessMetrics:
    """The process's default registry, as one collector of a scrape's registry."""

    def collect(self):
        return REGISTRY.collect()


def _registry() -> CollectorRegistry:
    """A registry for one scrape: every worker's metrics (or this process's, outside gunicorn)
    and the app's own collectors. Built per scrape, so the app's collectors are never
    registered twice and never reach the multiprocess files."""
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_ProcessMetrics())
    for collector in current_app.extensions.get(_COLLECTORS, ()):
        registry.register(collector)
    return registry


def register_collector(app: Flask, collector) -> None:
    """Add `collector` (an object with collect()) to what the app's /metrics serves."""
    app.extensions.setdefault(_COLLECTORS, []).append(collector)


# --- per-Cloud-ID gauges ----------------------------------------------------------------------

# Every label value is a series in Prometheus: only the Cloud IDs with the most accounts get
# one (the `<prefix>_cloud_ids` gauge still counts them all).
CLOUD_GAUGES_TOP = 100
# API.md lets the admin figures lag 60 s; the gauges are refreshed at most that often.
CLOUD_GAUGES_SECONDS = 60.0


@dataclass(frozen=True)
class CloudFigures:
    """Figures of the Cloud IDs with the most accounts (at most the `limit` asked for), in that
    order, and how many Cloud IDs there are in all."""

    clouds: int
    top: list[tuple[str, dict[str, int]]]


class CloudGauges:
    """A collector of per-Cloud-ID gauges `<prefix>_cloud_<figure>{cloud_id}`, plus
    `<prefix>_cloud_ids` (Cloud IDs in all) and `<prefix>_cloud_stats_age_seconds`.

    `load(limit)` computes the figures of every Cloud ID at once (one grouped query) and
    returns the top `limit`. A scrape reads what the last load returned; it loads again only
    when that is `seconds` old, so Prometheus scraping often costs no more. Loads are attempted
    at most once per `seconds` also when they fail (a scrape must not hammer a database that
    is down), one at a time: a scrape that finds another load under way serves the older
    figures rather than waiting. A failed load keeps the older figures (their age shows it).
    """

    def __init__(
        self,
        prefix: str,
        figures: dict[str, str],
        load: Callable[[int], CloudFigures],
        *,
        top: int = CLOUD_GAUGES_TOP,
        seconds: float = CLOUD_GAUGES_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.prefix = prefix
        self.figures = figures
        self.load = load
        self.top = top
        self.seconds = seconds
        self.clock = clock
        self.loads = 0
        self._loading = threading.Lock()
        self._next_attempt = float("-inf")
        self._current: tuple[float, CloudFigures] | None = None

    def _refreshed(self) -> tuple[float, CloudFigures] | None:
        if self.clock() < self._next_attempt or not self._loading.acquire(blocking=False):
            return self._current
        try:
            if self.clock() >= self._next_attempt:
                self._next_attempt = self.clock() + self.seconds
                self.loads += 1
                try:
                    figures = self.load(self.top)
                except Exception as exc:
                    # Whatever broke (a store down, a timeout), the scrape goes on.
                    log.warning(
                        "%s cloud figures not refreshed: %s", self.prefix, exc.__class__.__name__
                    )
                else:
                    self._current = (self.clock(), figures)
            return self._current
        finally:
            self._loading.release()

    def collect(self):
        current = self._refreshed()
        if current is None:
            return
        loaded_at, figures = current
        for name, documentation in self.figures.items():
            gauge = GaugeMetricFamily(
                f"{self.prefix}_cloud_{name}", documentation, labels=["cloud_id"]
            )
            for cloud_id, values in figures.top:
                gauge.add_metric([cloud_id], values[name])
            yield gauge
        yield GaugeMetricFamily(
            f"{self.prefix}_cloud_ids",
            f"Cloud IDs in all (the per-Cloud-ID gauges show the {self.top} with most accounts).",
            value=figures.clouds,
        )
        yield GaugeMetricFamily(
            f"{self.prefix}_cloud_stats_age_seconds",
            f"Age of the per-Cloud-ID figures (refreshed at most every {self.seconds:g} s).",
            value=self.clock() - loaded_at,
        )


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
