"""Executors: who runs a job, chosen by ``PREVISIO_EXECUTOR``, and the reaper of jobs whose process was lost.

A job is named by its kind and its row id, nothing else: everything it needs is in the metadata store (the
row's ``params`` holds an upload's reference in the dataset store). So the API only *submits* the pair:

- :class:`InProcessExecutor` (``inprocess``, the default): a thread pool of this process runs it;
- :class:`CeleryExecutor` (``celery``): a message on the kind's queue of the broker (Redis or RabbitMQ), taken
  by a ``previsio worker`` process (:mod:`.worker`); snapshots, uploads and exports have their own queues so
  that an operator can give exports their own workers.

Delivery is at least once, effects exactly once: a job delivered twice is claimed once (compare-and-set
``pending`` -> ``running``), a process holds a lease on the job it runs and renews it, and the
:class:`Reaper` of every process gives a job whose lease expired back to the queue (a worker killed,
a machine lost) or, after ``max_attempts``, fails it with ``worker_lost``; it also sends again the jobs that
stayed pending because the broker could not be reached when they were created.
"""

from __future__ import annotations

import abc
import logging
import queue
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update

from .errors import PlatformError
from .jobs import STOP_TIMEOUT
from .models import Connector, Dataset, Export, Exporter, Job, utcnow

if TYPE_CHECKING:
    from .context import JobContext

log = logging.getLogger(__name__)

#: The queue of each kind of job.
QUEUES = {"snapshot": "previsio.snapshots", "upload": "previsio.uploads", "export": "previsio.exports"}
#: Seconds a job may stay pending before the reaper sends it again (its message may have been lost).
RESEND_PENDING_AFTER = 60.0


def _kind(kind: str, ctx: JobContext) -> Any:
    from .exports import ExportJob
    from .jobs import DatasetJob

    if kind == "export":
        return ExportJob(ctx)
    if kind in ("snapshot", "upload"):
        return DatasetJob(ctx)
    raise ValueError(f"unknown job kind {kind!r}")


def _model(kind: str) -> Any:
    return Export if kind == "export" else Job


def run_job(ctx: JobContext, kind: str, row_id: str) -> None:
    """Run one job here, whichever process received it; never raises for a failed job."""
    from .jobs import execute

    execute(_kind(kind, ctx), row_id)
    _forget_upload_if_done(ctx, kind, row_id)


def _forget_upload_if_done(ctx: JobContext, kind: str, row_id: str) -> None:
    """Remove a job's staged upload once the job has ended (not when it goes back to the queue)."""
    model = _model(kind)
    with ctx.db.session() as s:
        row = s.get(model, row_id)
        upload = (row.params or {}).get("upload") if row is not None else None
        done = row is None or row.status in ("succeeded", "failed", "cancelled")
    if upload and done:
        try:
            ctx.store.remove_upload(upload)
        except Exception:  # noqa: BLE001 - an upload left behind is cleaned at the next start
            log.warning("%s %s: its upload could not be removed", kind, row_id)


class Executor(abc.ABC):
    """Runs jobs by kind and id (see the module)."""

    def __init__(self, ctx: JobContext) -> None:
        self.ctx = ctx

    @abc.abstractmethod
    def submit(self, kind: str, row_id: str) -> None:
        """Have job ``row_id`` of ``kind`` run; returns at once. Never raises: a job that cannot be sent now
        stays pending and is sent again by the reaper."""

    def shutdown(self) -> None:
        """Stop: running jobs of this process stop (see :func:`~.jobs.execute`)."""
        self.ctx.stopping.set()

    def queue_depth(self) -> dict[str, int]:
        """Jobs waiting per queue, as the metadata store sees them (pending rows)."""
        depth = {}
        with self.ctx.db.session() as s:
            for kind, queue_name in QUEUES.items():
                model = _model(kind)
                where = model.status == "pending"
                if model is Job:
                    where = where & (Job.kind == kind)
                depth[queue_name] = len(list(s.scalars(select(model.id).where(where))))
        return depth

    # -- what the routes call ------------------------------------------------------------------------------
    def submit_snapshot(self, job_id: str) -> None:
        """Run the snapshot of job ``job_id`` (its datasource and pending dataset are already stored)."""
        self.submit("snapshot", job_id)

    def submit_upload(self, job_id: str, upload: str, fmt: str) -> None:
        """Turn an upload staged in the store into the pending dataset of job ``job_id`` (removed after)."""
        self._set_params(Job, job_id, {"upload": upload, "format": fmt})
        self.submit("upload", job_id)

    def submit_export(self, export_id: str, upload: str | None = None, fmt: str | None = None) -> None:
        """Run export ``export_id``; ``upload`` is an upload staged in the store to export (removed after)."""
        if upload is not None:
            self._set_params(Export, export_id, {"upload": upload, "format": fmt})
        self.submit("export", export_id)

    def _set_params(self, model: Any, row_id: str, params: dict[str, Any]) -> None:
        with self.ctx.db.session() as s:
            s.execute(update(model).where(model.id == row_id).values(params=params))


class InProcessExecutor(Executor):
    """A thread pool of this process runs the jobs (each job's work in its own child process)."""

    def __init__(self, ctx: JobContext, workers: int) -> None:
        super().__init__(ctx)
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="previsio-job")
        self._active = 0
        self._idle = threading.Condition()

    def submit(self, kind: str, row_id: str) -> None:
        def tracked() -> None:
            with self._idle:
                self._active += 1
            try:
                run_job(self.ctx, kind, row_id)
            finally:
                with self._idle:
                    self._active -= 1
                    self._idle.notify_all()

        self.pool.submit(tracked)

    def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop the running jobs (they fail with ``platform_stopped``), waiting up to ``timeout`` seconds for
        them to record it (what is left is recovered at the next start)."""
        super().shutdown()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=timeout)


class CeleryExecutor(Executor):
    """Jobs go to the broker, on their kind's queue, for ``previsio worker`` processes.

    Messages are sent by one thread of this process: a request never waits for the broker, and a broker that
    cannot be reached leaves the job pending until the reaper sends it again.
    """

    def __init__(self, ctx: JobContext) -> None:
        super().__init__(ctx)
        from .worker import make_celery

        self.app = make_celery(ctx.settings)
        self._outbox: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._sender = threading.Thread(target=self._send_loop, name="previsio-broker-sender", daemon=True)
        self._sender.start()

    def submit(self, kind: str, row_id: str) -> None:
        self._outbox.put((kind, row_id))

    def send_now(self, kind: str, row_id: str) -> None:
        """Publish the message of a job (blocking; raises when the broker cannot be reached)."""
        self.app.send_task("previsio.run_job", args=[kind, row_id], queue=QUEUES[kind], retry=False)

    def _send_loop(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            kind, row_id = item
            try:
                self.send_now(kind, row_id)
            except Exception as exc:  # noqa: BLE001 - the job stays pending; the reaper sends it again
                log.warning(
                    "%s %s could not be sent to the broker (%s); it waits", kind, row_id, type(exc).__name__
                )

    def shutdown(self) -> None:
        super().shutdown()
        self._outbox.put(None)

    def queue_depth(self) -> dict[str, int]:
        depth = super().queue_depth()
        try:
            with self.app.connection_for_read() as conn:
                channel = conn.default_channel
                for name in QUEUES.values():
                    depth[name] = channel.queue_declare(queue=name, passive=True).message_count
        except Exception:  # noqa: BLE001 - the broker cannot be asked: the metadata store's count stands
            pass
        return depth


def make_executor(ctx: JobContext) -> Executor:
    """The executor the settings name (``PREVISIO_EXECUTOR``)."""
    if ctx.settings.executor == "celery":
        return CeleryExecutor(ctx)
    return InProcessExecutor(ctx, ctx.settings.job_workers)


# ------------------------------------------------------------------------------------------------------------
# The reaper
# ------------------------------------------------------------------------------------------------------------
class Reaper:
    """Looks, every half lease, for jobs whose lease expired or whose message was lost (see the module).

    Every API replica and every worker runs one; two reapers never act twice on a job (each change is a
    compare-and-set on the expired lease).
    """

    def __init__(self, ctx: JobContext, executor: Executor) -> None:
        self.ctx = ctx
        self.executor = executor
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Run in a background thread until the context stops."""
        self._thread = threading.Thread(target=self._loop, name="previsio-reaper", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        every = max(0.5, self.ctx.settings.lease_seconds / 2)
        while not self.ctx.stopping.wait(every):
            try:
                self.reap_once()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("the reaper's round failed")

    def reap_once(self) -> int:
        """One round; return how many jobs it acted on."""
        acted = 0
        for model in (Job, Export):
            acted += self._expired(model)
            acted += self._resend_pending(model)
        return acted

    def _expired(self, model: Any) -> int:
        now = utcnow()
        with self.ctx.db.session() as s:
            rows = list(
                s.execute(
                    select(model.id, model.status, model.attempts, model.lease_expires_at).where(
                        model.status.in_(("running", "cancelling")), model.lease_expires_at < now
                    )
                )
            )
        acted = 0
        for row_id, status, attempts, expired_at in rows:
            kind = "export" if model is Export else None
            if status == "cancelling":
                values: dict[str, Any] = {
                    "status": "cancelled",
                    "error_code": "cancelled",
                    "error_message": "The job was cancelled.",
                    "finished_at": now,
                }
            elif attempts < self.ctx.settings.max_attempts:
                values = {"status": "pending", "progress_rows": 0, "lease_expires_at": None}
            else:
                values = {
                    "status": "failed",
                    "error_code": "worker_lost",
                    "error_message": (
                        f"The process running this job stopped answering {attempts} times; run it again."
                    ),
                    "finished_at": now,
                }
            with self.ctx.db.session() as s:
                changed = s.execute(
                    update(model)
                    .where(model.id == row_id, model.status == status, model.lease_expires_at == expired_at)
                    .values(lease_owner=None, **values)
                ).rowcount
                if changed and values["status"] != "pending" and model is Job:
                    job = s.get(Job, row_id)
                    dataset = s.get(Dataset, job.dataset_id) if job.dataset_id else None
                    if dataset is not None and dataset.status != "ready":
                        s.delete(dataset)
                    job.dataset_id = None
                if changed and model is Job:
                    kind = s.scalar(select(Job.kind).where(Job.id == row_id))
            if not changed:
                continue
            acted += 1
            log.warning("%s %s: its process was lost; %s", kind, row_id, values["status"])
            self._discard(model, row_id, attempts)
            if values["status"] == "pending":
                self.executor.submit(kind or "snapshot", row_id)
            else:
                _forget_upload_if_done(self.ctx, kind or "snapshot", row_id)
        return acted

    def _discard(self, model: Any, row_id: str, attempts: int) -> None:
        """Remove what the lost attempt staged (a dataset file; an export's staging at its destination)."""
        from .exports import destination_spec, discard_staging
        from .jobs import connector_config, staging_id

        try:
            if model is Job:
                self.ctx.store.discard(staging_id(row_id, attempts))
                return
            with self.ctx.db.session() as s:
                export = s.get(Export, row_id)
                exporter = s.get(Exporter, export.exporter_id) if export is not None else None
                connector = s.get(Connector, exporter.connector_id) if exporter is not None else None
                if connector is None:
                    return
                config, dest = connector_config(self.ctx, connector), destination_spec(exporter)
            discard_staging(self.ctx, config, dest, row_id)
        except (PlatformError, OSError, ValueError) as exc:
            log.warning("%s: what its lost attempt staged could not be removed (%s)", row_id, exc)

    def _resend_pending(self, model: Any) -> int:
        """Send again the jobs pending for long (their message was lost, or the broker was down)."""
        now = utcnow()
        stale = now - timedelta(seconds=RESEND_PENDING_AFTER)
        with self.ctx.db.session() as s:
            where = (model.status == "pending") & (model.created_at < stale)
            where = where & ((model.lease_expires_at.is_(None)) | (model.lease_expires_at < now))
            rows = list(s.execute(select(model.id, *([Job.kind] if model is Job else [])).where(where)))
            for row in rows:  # not again before RESEND_PENDING_AFTER: the marker is the lease's expiry
                s.execute(
                    update(model)
                    .where(model.id == row[0])
                    .values(lease_expires_at=now + timedelta(seconds=RESEND_PENDING_AFTER))
                )
        for row in rows:
            self.executor.submit(row[1] if model is Job else "export", row[0])
        return len(rows)


def recover_single_node(ctx: JobContext) -> threading.Thread | None:
    """At the start of a platform whose metadata store is a file of this machine (SQLite): the jobs a
    previous process left unfinished are failed (``platform_restarted``), as no other process can hold them.

    A platform on a shared metadata store (PostgreSQL) does not do this: other processes may hold those jobs,
    and the reaper handles the ones whose process was lost.
    """
    from .exports import recover_exports
    from .jobs import UNFINISHED

    with ctx.db.session() as s:
        for job in s.scalars(select(Job).where(Job.status.in_(UNFINISHED))):
            if job.status == "cancelling":
                job.status, job.error_code, job.error_message = (
                    "cancelled",
                    "cancelled",
                    "The job was cancelled.",
                )
            else:
                job.status = "failed"
                job.error_code = "platform_restarted"
                job.error_message = (
                    "The platform stopped while this job was running; take the snapshot again."
                )
            job.finished_at = utcnow()
            job.dataset_id = None
            job.lease_owner = None
        for dataset in s.scalars(select(Dataset).where(Dataset.status != "ready")):
            s.delete(dataset)
        s.flush()
        keep = set(s.scalars(select(Dataset.id)))
    ctx.store.clean(keep, set())
    return recover_exports(ctx)
