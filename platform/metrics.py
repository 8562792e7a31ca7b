"""Prometheus metrics at /metrics: request latency by operation, errors by code.

Under gunicorn several worker processes serve requests; with
PROMETHEUS_MULTIPROC_DIR set (the runner sets it) they share their samples
through files there and /metrics adds them up.
"""

from __future__ import annotations

import os

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)

blueprint = Blueprint("metrics", __name__)

REQUEST_SECONDS = Histogram(
    "villagelink_graphql_request_seconds",
    "GraphQL request latency by operation name",
    ["operation"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
ERRORS = Counter("villagelink_graphql_errors_total", "GraphQL errors by extensions.code", ["code"])


def observe_request(operation: str, seconds: float, error_codes: list[str]) -> None:
    REQUEST_SECONDS.labels(operation=operation).observe(seconds)
    for code in error_codes:
        ERRORS.labels(code=code).inc()


@blueprint.get("/metrics")
def metrics() -> Response:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        from prometheus_client import REGISTRY as registry
    return Response(generate_latest(registry), mimetype=CONTENT_TYPE_LATEST)
