"""``previsio worker``: a Celery worker running the platform's jobs, for the ``celery`` executor.

The worker takes ``previsio.run_job(kind, row_id)`` messages from the queues it is given (all three by
default: ``previsio.snapshots``, ``previsio.uploads``, ``previsio.exports``), and runs each job exactly as
the embedded platform does (:func:`~.executors.run_job`): its data work in a sandboxed child, under a lease
it renews. It builds a :class:`~.context.JobContext` from the same ``PREVISIO_*`` settings as the API
replicas (the metadata database, the dataset store, the secret key) and runs a reaper. Messages carry a kind
and an id, nothing secret; they are JSON, never pickles.

Celery's own tools see the workers (``celery -A previsio_sdk.server.worker inspect active``, Flower): they
send task events.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING, Any

from celery import Celery

if TYPE_CHECKING:
    from .context import JobContext
    from .settings import Settings

log = logging.getLogger(__name__)

_context: JobContext | None = None


def make_celery(settings: Settings) -> Celery:
    """The Celery application of the platform, on ``PREVISIO_BROKER_URL`` (Redis or RabbitMQ)."""
    if not settings.broker_url:
        raise ValueError("PREVISIO_EXECUTOR=celery needs PREVISIO_BROKER_URL (redis://... or amqp://...)")
    app = Celery("previsio", broker=settings.broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        # A message is acknowledged once its job has run: a worker that dies leaves it to another worker.
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue="previsio.snapshots",
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        # Redis gives an unacked message to another worker after this; leases and the reaper act sooner.
        broker_transport_options={"visibility_timeout": 3600},
        worker_send_task_events=True,
        task_send_sent_event=True,
        worker_hijack_root_logger=False,
    )
    app.task(name="previsio.run_job", bind=True, ignore_result=True)(_run_job_task)
    return app


def _run_job_task(task: Any, kind: str, row_id: str) -> None:
    from .executors import run_job

    ctx = worker_context()
    run_job(ctx, kind, row_id)


def worker_context() -> JobContext:
    """The job context of this worker process (built once, from the environment's settings)."""
    global _context
    if _context is None:
        from .context import JobContext
        from .settings import Settings

        _context = JobContext.from_settings(Settings(), role="worker")
    return _context


def run_worker(
    queues: list[str] | None = None,
    concurrency: int = 2,
    log_level: str = "info",
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Run a worker until it is stopped (``SIGTERM``: running jobs go back to the queue).

    Args:
        queues: Queue names to take jobs from; all of the platform's when None.
        concurrency: Jobs run at once (threads; each job's work runs in its own child process).
        log_level: Logging level.
        metrics_port: Serve Prometheus metrics on this port (``metrics_host``); none when None.
        metrics_host: Address of the metrics server.
    """
    from .executors import QUEUES, CeleryExecutor, Reaper
    from .logs import harden_logging

    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    harden_logging()
    ctx = worker_context()
    if ctx.settings.executor != "celery":
        raise SystemExit("previsio worker needs PREVISIO_EXECUTOR=celery and PREVISIO_BROKER_URL")
    executor = CeleryExecutor(ctx)
    Reaper(ctx, executor).start()
    if metrics_port is not None:
        from prometheus_client import start_http_server

        from .metrics import REGISTRY, register_store_collector

        register_store_collector(ctx, executor)
        start_http_server(metrics_port, addr=metrics_host, registry=REGISTRY)
    names = queues or list(QUEUES.values())
    print(f"previsio worker {ctx.owner} taking {', '.join(names)}", flush=True)
    try:
        executor.app.worker_main(
            [
                "worker",
                f"--loglevel={log_level.upper()}",
                "--pool=threads",
                f"--concurrency={concurrency}",
                f"--queues={','.join(names)}",
                f"--hostname=previsio-{socket.gethostname()}-{ctx.owner.rsplit(':', 1)[-1]}@%h",
                "--without-mingle",
                "--without-gossip",
            ]
        )
    finally:
        executor.shutdown()
