"""Jobs (snapshots, uploads, exports): claimed by a thread of the platform, their data work run in a child.

Every job goes the same way (:func:`execute`), whatever its kind:

1. the thread claims the pending row (compare-and-set ``pending`` -> ``running``);
2. it loads in a short metadata session what the work needs (the decrypted connector, the source or
   destination, paths) and closes the session: none is held while the work runs;
3. the work (read the source, parse the file, stream into a temporary Parquet file or to the destination)
   runs in a child process (:func:`~.sandbox.run_isolated`): a crash there, a memory blow-up past
   ``job_memory_bytes`` or a cancel kills the child, never the platform; its progress comes back as messages
   the thread records;
4. the thread records the outcome: the dataset committed (its file moved to its final name and the row made
   ``ready`` in one step), or the failure (``limit_exceeded``, ``invalid_file``...) or the cancel, after
   removing what the child left (the temporary file, the destination's staging).

A job that fails (or a platform that stops in the middle) leaves no visible dataset, and the job says why.
Statuses: ``pending`` -> ``running`` -> ``succeeded`` | ``failed`` | ``cancelled``, with ``cancelling``
between ``running`` and ``cancelled`` while the child is being stopped.
"""

from __future__ import annotations

import abc
import errno
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select, update

from .drivers import ConnectorConfig, Driver, SourceSpec, driver_class
from .drivers.formats import CsvDialect, PrefixedStream, count_columns, first_lines_sample
from .drivers.limits import ReadLimits, check_columns
from .errors import PlatformError
from .metrics import record_job
from .models import Connector, Dataset, DataSource, Job, utcnow
from .sandbox import Stopped, Usage, run_isolated
from .stores import DatasetStore, WrittenFile, open_store

if TYPE_CHECKING:
    from .context import JobContext
    from .settings import Settings

log = logging.getLogger(__name__)

#: Statuses of a job that has ended.
FINISHED = ("succeeded", "failed", "cancelled")
#: Statuses of a job a previous process may have left unfinished.
UNFINISHED = ("pending", "running", "cancelling")
#: Seconds a stopping platform waits for its running jobs to stop and record it.
STOP_TIMEOUT = 10.0


def connector_config(platform: JobContext, connector: Connector) -> ConnectorConfig:
    """What a driver needs to reach a stored connector's system, its secrets decrypted."""
    return ConnectorConfig(
        type=connector.type,
        driver=connector.driver,
        host=connector.host,
        port=connector.port,
        username=connector.username,
        database=connector.database,
        options=dict(connector.options or {}),
        secrets=platform.vault.decrypt(connector.secret_enc),
    )


def make_driver(config: ConnectorConfig, settings: Settings) -> Driver:
    """Instantiate the driver of a connector configuration (in the platform or in a job's child)."""
    return driver_class(config.type)(config, connect_timeout=settings.connect_timeout, settings=settings)


def build_driver(platform: JobContext, connector: Connector) -> Driver:
    """Instantiate the driver of a stored connector, with its decrypted secrets."""
    return make_driver(connector_config(platform, connector), platform.settings)


def source_spec(ds: DataSource) -> SourceSpec:
    """The driver-level description of a stored datasource."""
    return SourceSpec(
        database=ds.database,
        table=ds.table,
        request=ds.request,
        path=ds.path,
        bucket=ds.bucket,
        options=dict(ds.options or {}),
    )


def crash_code(config: ConnectorConfig | None) -> str:
    """What a crash of a job's child means: a file it parsed (``invalid_file``), or a worker that died."""
    from .drivers.files import FileDriver

    if config is None or issubclass(driver_class(config.type), FileDriver):
        return "invalid_file"
    return "worker_crashed"


@contextmanager
def open_upload(
    store: DatasetStore, ref: str, fmt: str, batch_rows: int, limits: ReadLimits | None = None
) -> Iterator[pa.RecordBatchReader]:
    """Open an upload staged in the store (CSV or Parquet) as a stream of record batches.

    Raises:
        PlatformError: 422 ``invalid_file`` when it cannot be read.
        LimitExceeded: It has more columns than the platform reads.
    """
    limits = limits or ReadLimits()
    try:
        with store.open_upload(ref) as fh:
            if fmt == "parquet":
                pf = pq.ParquetFile(fh)
                check_columns(pf.metadata.num_columns, limits, "the uploaded file")
                yield pa.RecordBatchReader.from_batches(
                    pf.schema_arrow, pf.iter_batches(batch_size=batch_rows)
                )
                return
            block = 16 << 20
            sample, _ = first_lines_sample(fh, 64 * 1024, 0, block)
            header = sample.split(b"\n", 1)[0].decode("utf-8", errors="replace")
            check_columns(count_columns([header], CsvDialect()), limits, "the uploaded file")
            stream = PrefixedStream(sample, fh)
            yield pacsv.open_csv(stream, read_options=pacsv.ReadOptions(block_size=block))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException) and exc.errno:
            raise
        raise PlatformError(422, "invalid_file", f"The uploaded {fmt} file cannot be read: {exc}") from None


# ------------------------------------------------------------------------------------------------------------
# What runs in the child
# ------------------------------------------------------------------------------------------------------------
@contextmanager
def _disk_full_is_typed() -> Iterator[None]:
    """A full disk while the dataset is written: ``storage_full``, not an unexpected error."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise PlatformError(
            507, "storage_full", "The platform ran out of disk space while writing the dataset."
        ) from None


def snapshot_work(
    config: ConnectorConfig, spec: SourceSpec, settings: Settings, job_id: str, *, report: Any
) -> WrittenFile:
    """In the child: read a datasource into job ``job_id``'s staging object of the dataset store."""
    driver = make_driver(config, settings)
    with _disk_full_is_typed(), driver.open_reader(spec, settings.batch_rows) as reader:
        check_columns(len(reader.schema), ReadLimits.from_settings(settings), "the source")
        return open_store(settings).write(reader, job_id, on_progress=report)


def upload_work(upload: str, fmt: str, settings: Settings, job_id: str, *, report: Any) -> WrittenFile:
    """In the child: parse an upload staged in the store into job ``job_id``'s staging object."""
    store = open_store(settings)
    limits = ReadLimits.from_settings(settings)
    with _disk_full_is_typed(), open_upload(store, upload, fmt, settings.batch_rows, limits) as reader:
        return store.write(reader, job_id, on_progress=report)


# ------------------------------------------------------------------------------------------------------------
# One way to run every kind of job
# ------------------------------------------------------------------------------------------------------------
@dataclass
class Work:
    """What a job runs in its child, as the parent prepared it from the metadata store."""

    #: A module-level function, called in the child as ``fn(*args, report=...)``.
    fn: Any
    args: tuple[Any, ...]
    #: Values the child masks in its log lines (the connector's secrets).
    secrets: list[Any] = field(default_factory=list)
    #: The error code of a crash of the child (``invalid_file`` while parsing a file).
    crash_code: str = "worker_crashed"
    #: Anything the kind needs again to record the outcome or clean up.
    context: dict[str, Any] = field(default_factory=dict)


class JobKind(abc.ABC):
    """How one kind of job (snapshot or upload, export) prepares its work and records its outcome."""

    #: The model of the job's row (it has ``status``, ``progress_rows``, ``error_*`` and timestamps).
    model: ClassVar[Any]
    #: The word used in log lines (``job``, ``export``).
    noun: ClassVar[str]

    def __init__(self, platform: JobContext) -> None:
        self.platform = platform

    @abc.abstractmethod
    def prepare(self, session: Any, row: Any) -> Work:
        """Load what the work needs (in the parent, in a short session).

        Raises:
            PlatformError: The job cannot run (its source was deleted...).
        """

    @abc.abstractmethod
    def succeed(self, session: Any, row: Any, work: Work, result: Any) -> str:
        """Record the work's result on the row (in the parent's session); return a summary for the log."""

    def discard(self, row_id: str, work: Work | None, killed: bool) -> None:  # noqa: B027 - optional hook
        """Remove what a failed child left; ``killed``: it was stopped or crashed, without cleaning up."""

    def moved(self, result: Any) -> tuple[int, int]:
        """The rows and dataset bytes a successful work's result moved (for the metrics)."""
        return int(getattr(result, "num_rows", None) or getattr(result, "rows", 0) or 0), int(
            getattr(result, "size_bytes", 0) or 0
        )

    def failed(self, session: Any, row: Any) -> None:  # noqa: B027 - optional hook
        """Clean the metadata of a job that did not succeed (a pending dataset)."""


def _message(exc: BaseException, noun: str) -> tuple[str, str]:
    if isinstance(exc, PlatformError):
        return exc.code, exc.message
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return "storage_full", "The platform ran out of disk space during the job."
    log.error("%s failed unexpectedly", noun, exc_info=exc)
    return "internal_error", f"The {noun} failed unexpectedly ({type(exc).__name__})."


def staging_id(row_id: str, attempt: int) -> str:
    """The name of what attempt ``attempt`` of job ``row_id`` stages in the dataset store.

    Each attempt has its own: a process that lost its lease (and may still be writing) never touches what
    the process holding the job now writes.
    """
    return f"{row_id}-{attempt}"


def _lease_until(ctx: Any) -> datetime:
    return utcnow() + timedelta(seconds=ctx.settings.lease_seconds)


def _held(model: Any, row_id: str, owner: str) -> Any:
    """The WHERE clause of a change only the lease holder may make."""
    return (model.id == row_id) & (model.lease_owner == owner) & model.status.in_(("running", "cancelling"))


def execute(kind: JobKind, row_id: str) -> None:
    """Run the job ``row_id`` of ``kind`` and record its outcome (never raises for a failed job).

    The job is claimed with a compare-and-set (``pending`` -> ``running``) that also takes a lease in this
    process's name (:attr:`~.context.JobContext.owner`); a job delivered twice is claimed once. While the
    work runs, the lease is renewed every third of ``lease_seconds``; a process that cannot renew it (a
    reaper gave the job to another process after this one stalled) stops its work and records nothing.
    The outcome is recorded only by the lease holder, in the same transaction that checks it holds the lease.
    """
    ctx = kind.platform
    model = kind.model
    owner = ctx.owner
    with ctx.db.session() as s:
        claimed = s.execute(
            update(model)
            .where(model.id == row_id, model.status == "pending")
            .values(
                status="running",
                started_at=utcnow(),
                lease_owner=owner,
                lease_expires_at=_lease_until(ctx),
                attempts=model.attempts + 1,
            )
        ).rowcount
    if not claimed:
        return  # cancelled before it started, deleted, or claimed by another delivery of the same job
    work: Work | None = None
    usage = Usage()
    began = time.monotonic()
    renew_every = max(0.5, ctx.settings.lease_seconds / 3)
    renew_at = [time.monotonic() + renew_every]
    try:
        with ctx.db.session() as s:
            row = s.get(model, row_id)
            if row is None:
                return  # deleted (its project was) since it was claimed
            work = kind.prepare(s, row)

        def progress(rows: Any) -> None:
            with ctx.db.session() as s:
                s.execute(update(model).where(_held(model, row_id, owner)).values(progress_rows=int(rows)))

        def should_stop() -> str | None:
            if ctx.stopping.is_set():
                return "platform_stopped"
            with ctx.db.session() as s:
                if time.monotonic() >= renew_at[0]:
                    renew_at[0] = time.monotonic() + renew_every
                    renewed = s.execute(
                        update(model)
                        .where(_held(model, row_id, owner))
                        .values(lease_expires_at=_lease_until(ctx))
                    ).rowcount
                    if not renewed:
                        return "lease_lost"
                status = s.scalar(select(model.status).where(model.id == row_id))
            return "cancelled" if status in ("cancelling", None) else None

        code = work.crash_code

        def crashed(exitcode: int | None) -> PlatformError:
            how = f"signal {-exitcode}" if exitcode is not None and exitcode < 0 else f"exit code {exitcode}"
            if code == "invalid_file":
                message = f"The file could not be parsed: the parser crashed ({how})."
            else:
                message = f"The job's worker process stopped without an answer ({how})."
            return PlatformError(422, code, message, {"exitcode": exitcode})

        limit = ctx.settings.job_memory_bytes or None
        timeout = ctx.settings.job_timeout_seconds

        def timed_out() -> PlatformError:
            return PlatformError(
                422,
                "job_timeout",
                f"The {kind.noun} ran longer than the platform allows ({timeout} s, setting "
                "PREVISIO_JOB_TIMEOUT_SECONDS) and was stopped.",
                {"limit": "job_timeout_seconds", "seconds": timeout},
            )

        result = run_isolated(
            work.fn,
            *work.args,
            memory_limit=limit,
            deadline=time.monotonic() + timeout if timeout > 0 else None,
            on_deadline=timed_out,
            should_stop=should_stop,
            on_progress=progress,
            on_crash=crashed,
            secrets=work.secrets,
            usage=usage,
        )
        with ctx.db.session() as s:
            row = s.get(model, row_id, with_for_update=True)
            if row is None:
                raise PlatformError(409, "cancelled", "The job was deleted while it ran.")
            if row.lease_owner != owner or row.status not in ("running", "cancelling"):
                raise Stopped("lease_lost", "Another process holds the job now.")
            summary = kind.succeed(s, row, work, result)
            row.status = "succeeded"
            row.finished_at = utcnow()
            row.lease_owner = None
            row.lease_expires_at = None
        log.info(
            "%s %s succeeded: %s peak_rss=%d start_rss=%d",
            kind.noun,
            row_id,
            summary,
            usage.peak_rss,
            usage.start_rss,
        )
        rows, size = kind.moved(result)
        record_job(kind.noun, "succeeded", time.monotonic() - began, rows, size)
    except BaseException as exc:  # noqa: BLE001 - every failure must be recorded
        status = _record_failure(kind, row_id, work, exc, usage)
        if status:
            record_job(kind.noun, status, time.monotonic() - began)
        if not isinstance(exc, Exception):
            raise


def _record_failure(
    kind: JobKind, row_id: str, work: Work | None, exc: BaseException, usage: Usage
) -> str | None:
    """Record why a job did not succeed; return the status recorded (None: nothing, the job is elsewhere)."""
    ctx = kind.platform
    code, message = _message(exc, kind.noun)
    lost = isinstance(exc, Stopped) and code == "lease_lost"
    try:
        if not lost or isinstance(kind, DatasetJob):  # a lost export's staging is the new holder's too
            kind.discard(row_id, work, killed=not usage.answered)
    except Exception:  # noqa: BLE001 - cleaning up must not hide the job's own outcome
        log.exception("%s %s: cleaning up after it failed", kind.noun, row_id)
    if lost:
        log.warning("%s %s: its lease was lost; another process runs it now", kind.noun, row_id)
        return None
    if isinstance(exc, Stopped) and code == "platform_stopped" and ctx.settings.executor == "celery":
        # A worker shutting down hands its job back: another worker runs it from the start.
        with ctx.db.session() as s:
            released = s.execute(
                update(kind.model)
                .where(_held(kind.model, row_id, ctx.owner))
                .values(status="pending", lease_owner=None, lease_expires_at=None, progress_rows=0)
            ).rowcount
        if released:
            log.info("%s %s handed back to the queue (this worker stops)", kind.noun, row_id)
            return None
    cancelled = isinstance(exc, Stopped) and code == "cancelled"
    if isinstance(exc, Stopped) and code == "platform_stopped":
        message = f"The platform stopped while this {kind.noun} was running; run it again."
    status = "cancelled" if cancelled else "failed"
    log.info(
        "%s %s %s: %s peak_rss=%d start_rss=%d",
        kind.noun,
        row_id,
        status,
        code,
        usage.peak_rss,
        usage.start_rss,
    )
    with ctx.db.session() as s:
        row = s.get(kind.model, row_id, with_for_update=True)
        if row is None or row.lease_owner != ctx.owner:
            return None  # deleted, or reaped and given to another process meanwhile
        row.lease_owner = None
        row.lease_expires_at = None
        row.status = status
        row.error_code = code
        row.error_message = "The job was cancelled." if cancelled else message
        row.finished_at = utcnow()
        kind.failed(s, row)
    return status


def cancel(session: Any, row: Any) -> Any:
    """Ask a job to stop: a pending one is cancelled at once, a running one is marked ``cancelling``.

    The thread running it sees the mark within half a second, kills its child and records ``cancelled``.

    Raises:
        PlatformError: 409 ``job_finished`` when the job has already ended.
    """
    model = type(row)
    done = session.execute(
        update(model)
        .where(model.id == row.id, model.status == "pending")
        .values(
            status="cancelled",
            error_code="cancelled",
            error_message="The job was cancelled before it started.",
            finished_at=utcnow(),
        )
    ).rowcount
    if done and isinstance(row, Job):
        session.refresh(row)
        _drop_pending_dataset(session, row)
    if not done:
        session.execute(
            update(model).where(model.id == row.id, model.status == "running").values(status="cancelling")
        )
    session.commit()  # now: the thread running the job reads the mark from its own sessions
    session.refresh(row)
    if row.status in FINISHED and not done:
        raise PlatformError(
            409, "job_finished", f"The job has already ended ({row.status}).", {"status": row.status}
        )
    return row


def _drop_pending_dataset(session: Any, job: Job) -> None:
    dataset = session.get(Dataset, job.dataset_id) if job.dataset_id else None
    if dataset is not None and dataset.status != "ready":
        session.delete(dataset)
    job.dataset_id = None


class DatasetJob(JobKind):
    """A snapshot of a datasource, or an uploaded file, written into a new dataset."""

    model = Job
    noun = "job"

    def prepare(self, session: Any, row: Any) -> Work:
        settings = self.platform.settings
        staging = staging_id(row.id, row.attempts)
        upload = (row.params or {}).get("upload")
        if upload is not None:
            args = (upload, (row.params or {}).get("format") or "csv", settings, staging)
            return Work(upload_work, args, crash_code="invalid_file", context={"staging": staging})
        dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
        ds = session.get(DataSource, dataset.datasource_id) if dataset is not None else None
        connector = session.get(Connector, ds.connector_id) if ds is not None else None
        if ds is None or connector is None:
            raise PlatformError(409, "source_deleted", "The datasource was deleted before the snapshot ran.")
        config = connector_config(self.platform, connector)
        return Work(
            snapshot_work,
            (config, source_spec(ds), settings, staging),
            secrets=list(config.secrets.values()),
            crash_code=crash_code(config),
            context={"staging": staging},
        )

    def succeed(self, session: Any, row: Any, work: Work, result: Any) -> str:
        written: WrittenFile = result
        dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
        if dataset is None:
            self.platform.store.discard(written.job_id)
            raise PlatformError(409, "cancelled", "The dataset was deleted while the job ran.")
        self.platform.store.commit(written, dataset.id)
        dataset.status = "ready"
        dataset.num_rows = written.num_rows
        dataset.size_bytes = written.size_bytes
        dataset.content_hash = written.content_hash
        dataset.schema_json = written.schema
        row.progress_rows = written.num_rows
        return f"{written.num_rows} rows"

    def discard(self, row_id: str, work: Work | None, killed: bool) -> None:
        if work is not None:
            self.platform.store.discard(work.context["staging"])

    def failed(self, session: Any, row: Any) -> None:
        _drop_pending_dataset(session, row)
