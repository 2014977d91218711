"""Prometheus metrics of a platform process (an API replica or a worker), the usual way.

Each process exposes its own: the API replicas on ``GET /metrics`` (an administrator's token), a worker on
``previsio worker --metrics-port``. What a process counts itself (jobs it ended, their duration, the rows
and bytes they moved) is per process, as Prometheus expects; what the metadata store knows (jobs by state
and kind, jobs waiting per queue) is read at each scrape, so every process reports the whole picture there.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

#: The registry of this process: the platform's metrics and the process collector (CPU, memory, files).
REGISTRY = CollectorRegistry(auto_describe=True)

JOB_DURATION = Histogram(
    "previsio_job_duration_seconds",
    "Seconds from the start of a job's work to its end, by kind and outcome, for the jobs this process ran.",
    ["kind", "status"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
    registry=REGISTRY,
)
ROWS = Counter(
    "previsio_rows_moved",
    "Rows the jobs this process ran wrote (snapshots, uploads, exports).",
    ["kind"],
    registry=REGISTRY,
)
BYTES = Counter(
    "previsio_dataset_bytes_written",
    "Bytes of dataset files the jobs this process ran wrote.",
    ["kind"],
    registry=REGISTRY,
)

try:  # CPU, memory and open files of the process (Linux /proc)
    from prometheus_client import ProcessCollector

    ProcessCollector(registry=REGISTRY)
except Exception:  # noqa: BLE001 - not on this system: the platform's own metrics remain
    pass


def record_job(kind: str, status: str, seconds: float, rows: int = 0, size_bytes: int = 0) -> None:
    """Count a job this process ended."""
    JOB_DURATION.labels(kind, status).observe(seconds)
    if rows:
        ROWS.labels(kind).inc(rows)
    if size_bytes:
        BYTES.labels(kind).inc(size_bytes)


class StoreCollector(Collector):
    """Jobs by state and kind, and jobs waiting per queue, read from the metadata store at each scrape."""

    def __init__(
        self, counts: Callable[[], list[tuple[str, str, int]]], depth: Callable[[], dict[str, int]]
    ) -> None:
        self.counts = counts
        self.depth = depth

    def collect(self) -> Iterator[Any]:
        jobs = GaugeMetricFamily(
            "previsio_jobs", "Jobs by kind and state, in the metadata store.", labels=["kind", "state"]
        )
        for kind, state, count in self.counts():
            jobs.add_metric([kind, state], count)
        yield jobs
        queued = GaugeMetricFamily(
            "previsio_queue_depth", "Jobs waiting to be run, per queue.", labels=["queue"]
        )
        for queue, count in self.depth().items():
            queued.add_metric([queue], count)
        yield queued


def register_store_collector(ctx: Any, executor: Any) -> None:
    """Report the metadata store's jobs and the executor's queues in this process's metrics (once)."""
    from sqlalchemy import func, select

    from .models import Export, Job

    def counts() -> list[tuple[str, str, int]]:
        with ctx.db.session() as s:
            rows = [
                (k, st, n)
                for k, st, n in s.execute(
                    select(Job.kind, Job.status, func.count()).group_by(Job.kind, Job.status)
                )
            ]
            rows += [
                ("export", st, n)
                for st, n in s.execute(select(Export.status, func.count()).group_by(Export.status))
            ]
        return rows

    for collector in list(getattr(REGISTRY, "_collector_to_names", {})):
        if isinstance(collector, StoreCollector):
            REGISTRY.unregister(collector)
    REGISTRY.register(StoreCollector(counts, executor.queue_depth))


def exposition() -> bytes:
    """The metrics in Prometheus's text format."""
    return generate_latest(REGISTRY)
