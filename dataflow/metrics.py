"""``/metrics`` in Prometheus text format.

Two kinds of metrics:

* HTTP requests (count and latency by method, route and status), recorded
  by ``MetricsMiddleware`` in each process. Under gunicorn with several
  workers, set ``PROMETHEUS_MULTIPROC_DIR`` (dataflow/gunicorn.conf.py does)
  so the workers' figures are added up.
* Pipeline figures read from the database at scrape time (rows per dataset,
  runs by status, run durations, queue depth, last successful run), so they
  are the same whichever process answers and survive restarts.

The endpoint answers only to a bearer token (``METRICS_TOKEN``) or to
clients that connect directly from an address in ``METRICS_ALLOWED_IPS``
(empty by default). A request that carries a proxy's forwarding headers
(``Forwarded``, ``X-Forwarded-For``, ``X-Real-IP``…) is never let in by its
address: a reverse proxy on the same machine connects from 127.0.0.1 for
anyone on the internet, so only the token opens the door to it.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Max, Q, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from core.metrics import CACHE_ERRORS
from ingestion.models import Source
from ingestion.sourcekinds import stream_kinds
from processing.models import Run, RunStatus

HTTP_REQUESTS = Counter("dataflow_http_requests_total", "HTTP requests answered.", ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "dataflow_http_request_duration_seconds",
    "Time to answer an HTTP request.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
RUN_DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200)


class MetricsMiddleware:
    """Counts requests and their latency by route (the URL pattern, not the raw path)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        start = time.perf_counter()
        response = self.get_response(request)
        match = getattr(request, "resolver_match", None)
        route = (match.route or match.view_name) if match else "unmatched"
        HTTP_LATENCY.labels(request.method, route).observe(time.perf_counter() - start)
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        return response


class PipelineCollector(Collector):
    """Pipeline metrics computed from the runs table when Prometheus scrapes."""

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily | HistogramMetricFamily]:
        rows = CounterMetricFamily("dataflow_rows", "Rows processed by finished runs.", labels=["dataset", "outcome"])
        for item in Run.objects.values("dataset__slug").annotate(
            read=Sum("rows_read"), valid=Sum("rows_valid"), rejected=Sum("rows_rejected")
        ):
            for outcome in ("read", "valid", "rejected"):
                rows.add_metric([item["dataset__slug"], outcome], item[outcome] or 0)
        yield rows

        runs = GaugeMetricFamily("dataflow_runs", "Runs by status.", labels=["status"])
        counts = dict(Run.objects.values_list("status").annotate(n=Count("id")))
        for status in RunStatus.values:
            runs.add_metric([status], counts.get(status, 0))
        yield runs

        queued = counts.get(RunStatus.QUEUED, 0)
        yield GaugeMetricFamily("dataflow_queue_depth", "Runs waiting for a worker.", value=queued)

        duration = ExpressionWrapper(F("finished_at") - F("started_at"), output_field=DurationField())
        finished = Run.objects.filter(started_at__isnull=False, finished_at__isnull=False).annotate(d=duration)
        aggregates = {f"le_{b}": Count("id", filter=Q(d__lte=_seconds(b))) for b in RUN_DURATION_BUCKETS}
        totals = finished.aggregate(count=Count("id"), **aggregates)
        total_seconds = (
            sum((r.total_seconds() for r in finished.values_list("d", flat=True)), 0.0)
            if totals["count"] < 50_000
            else 0.0
        )
        histogram = HistogramMetricFamily("dataflow_run_duration_seconds", "Wall time of finished runs.")
        buckets = [(str(b), totals[f"le_{b}"]) for b in RUN_DURATION_BUCKETS] + [("+Inf", totals["count"])]
        histogram.add_metric([], buckets, sum_value=total_seconds)
        yield histogram

        lag = GaugeMetricFamily(
            "dataflow_stream_lag", "Messages waiting in the broker for each stream source.", labels=["source"]
        )
        up = GaugeMetricFamily(
            "dataflow_stream_consumer_up",
            "1 when the stream source's consumer reached its broker when it last tried, else 0.",
            labels=["source"],
        )
        streams = Source.objects.filter(kind__in=stream_kinds(), lag_checked_at__isnull=False).order_by("name")
        for name, waiting, error in streams.values_list("name", "lag", "consumer_error"):
            if waiting is not None:
                lag.add_metric([name], waiting)
            up.add_metric([name], 0 if error else 1)
        yield lag
        yield up

        last = GaugeMetricFamily(
            "dataflow_last_success_timestamp_seconds",
            "When each dataset's last successful run finished (Unix time).",
            labels=["dataset"],
        )
        for slug, when in (
            Run.objects.filter(status__in=[RunStatus.SUCCEEDED, RunStatus.PARTIALLY_SUCCEEDED])
            .values_list("dataset__slug")
            .annotate(when=Max("finished_at"))
        ):
            if when is not None:
                last.add_metric([slug], when.timestamp())
        yield last


def _seconds(value: float) -> timedelta:
    return timedelta(seconds=value)


# Headers a proxy adds when it relays a request (RFC 7239 and the de-facto ones).
PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "X-Real-IP", "Via")


def _refusal(request: HttpRequest) -> str | None:
    """Why this request may not read the metrics, or None when it may."""
    token = settings.METRICS_TOKEN
    header = request.headers.get("Authorization", "")
    if token and header.startswith("Bearer ") and hmac.compare_digest(header[7:].strip().encode(), token.encode()):
        return None
    if not token and not settings.METRICS_ALLOWED_IPS:
        return "metrics are closed: set METRICS_TOKEN or METRICS_ALLOWED_IPS to open them."
    if any(name in request.headers for name in PROXY_HEADERS):
        return "a request relayed by a proxy needs the metrics token; its address does not count."
    try:
        client = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return "a metrics token or an allowed address is required."
    if any(client in ipaddress.ip_network(net, strict=False) for net in settings.METRICS_ALLOWED_IPS):
        return None
    return "a metrics token or an allowed address is required."


def metrics_view(request: HttpRequest) -> HttpResponse:
    refusal = _refusal(request)
    if refusal is not None:
        return HttpResponse(f"Forbidden: {refusal}\n", status=403, content_type="text/plain")
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(HTTP_REQUESTS)
        registry.register(HTTP_LATENCY)
        registry.register(CACHE_ERRORS)
    registry.register(PipelineCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
