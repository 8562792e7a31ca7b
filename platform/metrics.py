"""Prometheus metrics at /metrics: request latency by operation, errors by code, and
the sync between villages (lag from commit to the neighbour's copy, failing villages).

Under gunicorn several worker processes serve requests; with
PROMETHEUS_MULTIPROC_DIR set (the runner sets it) they share their samples
through files there and /metrics adds them up.
"""

from __future__ import annotations

import os

import redis
from flask import Blueprint, Response, current_app
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from villagelink.jobs.health import queue_health

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
    sync = CollectorRegistry()
    runtime = current_app.extensions["villagelink"]
    sync.register(SyncCollector(runtime.db))
    sync.register(QueueCollector(runtime.redis))
    return Response(generate_latest(registry) + generate_latest(sync), mimetype=CONTENT_TYPE_LATEST)


class QueueCollector:
    """Read at each scrape from Redis: each queue's live workers, waiting jobs and the
    age of the oldest, and whether no worker takes its jobs at all."""

    def __init__(self, connection):
        self.connection = connection

    def collect(self):
        try:
            queues = queue_health(self.connection)
        except redis.RedisError:
            return  # /readyz says Redis is down; these would only be made up
        workers = GaugeMetricFamily(
            "villagelink_queue_workers", "Live RQ workers taking the queue's jobs", labels=["queue"]
        )
        waiting = GaugeMetricFamily(
            "villagelink_queue_waiting_jobs", "Jobs waiting on the queue", labels=["queue"]
        )
        oldest = GaugeMetricFamily(
            "villagelink_queue_oldest_job_age_seconds",
            "Age of the queue's oldest waiting job (0 when none waits)",
            labels=["queue"],
        )
        unattended = GaugeMetricFamily(
            "villagelink_queue_without_worker",
            "1 when no live worker takes the queue's jobs",
            labels=["queue"],
        )
        for q in queues:
            workers.add_metric([q.name], q.workers)
            waiting.add_metric([q.name], q.waiting)
            oldest.add_metric([q.name], q.oldest_waiting_seconds)
            unattended.add_metric([q.name], int(q.unattended))
        yield from (workers, waiting, oldest, unattended)


class SyncCollector:
    """Read at each scrape from the exchange log, which every sync worker writes:
    the figures are the platform's, whichever process serves /metrics."""

    WINDOW = "5 minutes"

    def __init__(self, db):
        self.db = db

    def collect(self):
        with self.db.platform() as conn:
            lag = conn.execute(
                text(
                    "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP "
                    "(ORDER BY lag_ms), max(lag_ms), count(*) FROM exchange.log "
                    "WHERE action = 'publish' AND lag_ms IS NOT NULL "
                    f"AND occurred_at > now() - interval '{self.WINDOW}'"
                )
            ).one()
            failing, waiting = conn.execute(
                text(
                    "SELECT count(*) FILTER (WHERE last_error IS NOT NULL), "
                    "count(*) FILTER (WHERE waiting_since IS NOT NULL) FROM exchange.cursors"
                )
            ).one()
        quantiles, longest, published = lag
        seconds = GaugeMetricFamily(
            "villagelink_sync_lag_seconds",
            "Commit in the origin village to the copy visible to the neighbour, over the "
            "publishes of the last 5 minutes",
            labels=["quantile"],
        )
        for q, value in zip(("0.5", "0.95", "0.99"), quantiles or (None,) * 3, strict=True):
            seconds.add_metric([q], (value or 0) / 1000)
        seconds.add_metric(["1"], (longest or 0) / 1000)
        yield seconds
        yield GaugeMetricFamily(
            "villagelink_sync_published_recent",
            "Copies published to neighbours or the region in the last 5 minutes",
            value=published,
        )
        yield GaugeMetricFamily(
            "villagelink_sync_failing_villages",
            "Villages whose last sync failed (retried with backoff and by the sweep)",
            value=failing,
        )
        yield GaugeMetricFamily(
            "villagelink_sync_waiting_villages",
            "Villages whose committed changes wait behind a transaction still running",
            value=waiting,
        )
