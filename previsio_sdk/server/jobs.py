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
import shutil
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select, update

from .drivers import ConnectorConfig, Driver, SourceSpec, driver_class
from .drivers.formats import CsvDialect, PrefixedStream, count_columns, first_lines_sample
from .drivers.limits import ReadLimits, check_columns
from .errors import PlatformError
from .models import Connector, Dataset, DataSource, Job, utcnow
from .sandbox import Stopped, Usage, run_isolated
from .storage import ParquetDatasetStore, WrittenFile

if TYPE_CHECKING:
    from .core import Platform
    from .settings import Settings

log = logging.getLogger(__name__)

#: Statuses of a job that has ended.
FINISHED = ("succeeded", "failed", "cancelled")
#: Statuses of a job a previous process may have left unfinished.
UNFINISHED = ("pending", "running", "cancelling")
#: Seconds a stopping platform waits for its running jobs to stop and record it.
STOP_TIMEOUT = 10.0


def connector_config(platform: Platform, connector: Connector) -> ConnectorConfig:
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


def build_driver(platform: Platform, connector: Connector) -> Driver:
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
    path: Path, fmt: str, batch_rows: int, limits: ReadLimits | None = None
) -> Iterator[pa.RecordBatchReader]:
    """Open an uploaded CSV or Parquet file as a stream of record batches.

    Raises:
        PlatformError: 422 ``invalid_file`` when it cannot be read.
        LimitExceeded: It has more columns than the platform reads.
    """
    limits = limits or ReadLimits()
    try:
        if fmt == "parquet":
            pf = pq.ParquetFile(path)
            check_columns(pf.metadata.num_columns, limits, "the uploaded file")
            yield pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=batch_rows))
        else:
            block = 16 << 20
            with open(path, "rb") as fh:
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
def _store(settings: Settings) -> ParquetDatasetStore:
    return ParquetDatasetStore(settings.datasets_dir, settings.tmp_dir)


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
    config: ConnectorConfig, spec: SourceSpec, settings: Settings, tmp: Path, *, report: Any
) -> WrittenFile:
    """In the child: read a datasource into the temporary Parquet file ``tmp``."""
    driver = make_driver(config, settings)
    with _disk_full_is_typed(), driver.open_reader(spec, settings.batch_rows) as reader:
        check_columns(len(reader.schema), ReadLimits.from_settings(settings), "the source")
        return _store(settings).write(reader, on_progress=report, tmp=tmp)


def upload_work(path: Path, fmt: str, settings: Settings, tmp: Path, *, report: Any) -> WrittenFile:
    """In the child: parse an uploaded file into the temporary Parquet file ``tmp``."""
    limits = ReadLimits.from_settings(settings)
    with _disk_full_is_typed(), open_upload(path, fmt, settings.batch_rows, limits) as reader:
        return _store(settings).write(reader, on_progress=report, tmp=tmp)


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

    def __init__(self, platform: Platform) -> None:
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

    def failed(self, session: Any, row: Any) -> None:  # noqa: B027 - optional hook
        """Clean the metadata of a job that did not succeed (a pending dataset)."""


def _message(exc: BaseException, noun: str) -> tuple[str, str]:
    if isinstance(exc, PlatformError):
        return exc.code, exc.message
    if isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        return "storage_full", "The platform ran out of disk space during the job."
    log.error("%s failed unexpectedly", noun, exc_info=exc)
    return "internal_error", f"The {noun} failed unexpectedly ({type(exc).__name__})."


def execute(kind: JobKind, row_id: str) -> None:
    """Run the job ``row_id`` of ``kind`` and record its outcome (never raises for a failed job)."""
    platform = kind.platform
    model = kind.model
    with platform.db.session() as s:
        claimed = s.execute(
            update(model)
            .where(model.id == row_id, model.status == "pending")
            .values(status="running", started_at=utcnow())
        ).rowcount
    if not claimed:
        return  # cancelled before it started, or deleted
    work: Work | None = None
    usage = Usage()
    try:
        with platform.db.session() as s:
            row = s.get(model, row_id)
            if row is None:
                return  # deleted (its project was) since it was claimed
            work = kind.prepare(s, row)

        def progress(rows: Any) -> None:
            with platform.db.session() as s:
                s.execute(update(model).where(model.id == row_id).values(progress_rows=int(rows)))

        def should_stop() -> str | None:
            if platform.jobs.stopping.is_set():
                return "platform_stopped"
            with platform.db.session() as s:
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

        limit = platform.settings.job_memory_bytes or None
        result = run_isolated(
            work.fn,
            *work.args,
            memory_limit=limit,
            should_stop=should_stop,
            on_progress=progress,
            on_crash=crashed,
            secrets=work.secrets,
            usage=usage,
        )
        with platform.db.session() as s:
            row = s.get(model, row_id)
            if row is None:
                raise PlatformError(409, "cancelled", "The job was deleted while it ran.")
            summary = kind.succeed(s, row, work, result)
            row.status = "succeeded"
            row.finished_at = utcnow()
        log.info(
            "%s %s succeeded: %s peak_rss=%d start_rss=%d",
            kind.noun,
            row_id,
            summary,
            usage.peak_rss,
            usage.start_rss,
        )
    except BaseException as exc:  # noqa: BLE001 - every failure must be recorded
        _record_failure(kind, row_id, work, exc, usage)
        if not isinstance(exc, Exception):
            raise


def _record_failure(kind: JobKind, row_id: str, work: Work | None, exc: BaseException, usage: Usage) -> None:
    try:
        kind.discard(row_id, work, killed=not usage.answered)
    except Exception:  # noqa: BLE001 - cleaning up must not hide the job's own outcome
        log.exception("%s %s: cleaning up after it failed", kind.noun, row_id)
    code, message = _message(exc, kind.noun)
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
    with kind.platform.db.session() as s:
        row = s.get(kind.model, row_id)
        if row is None:
            return
        row.status = status
        row.error_code = code
        row.error_message = "The job was cancelled." if cancelled else message
        row.finished_at = utcnow()
        kind.failed(s, row)


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

    def __init__(self, platform: Platform, upload: Path | None = None, fmt: str | None = None) -> None:
        super().__init__(platform)
        self.upload = upload
        self.fmt = fmt

    def prepare(self, session: Any, row: Any) -> Work:
        settings = self.platform.settings
        tmp = self.platform.store.job_tmp_path(row.id)
        if self.upload is not None:
            args = (self.upload, self.fmt or "csv", settings, tmp)
            return Work(upload_work, args, crash_code="invalid_file")
        dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
        ds = session.get(DataSource, dataset.datasource_id) if dataset is not None else None
        connector = session.get(Connector, ds.connector_id) if ds is not None else None
        if ds is None or connector is None:
            raise PlatformError(409, "source_deleted", "The datasource was deleted before the snapshot ran.")
        config = connector_config(self.platform, connector)
        return Work(
            snapshot_work,
            (config, source_spec(ds), settings, tmp),
            secrets=list(config.secrets.values()),
            crash_code=crash_code(config),
        )

    def succeed(self, session: Any, row: Any, work: Work, result: Any) -> str:
        written: WrittenFile = result
        dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
        if dataset is None:
            written.tmp_path.unlink(missing_ok=True)
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
        self.platform.store.job_tmp_path(row_id).unlink(missing_ok=True)

    def failed(self, session: Any, row: Any) -> None:
        _drop_pending_dataset(session, row)


class JobRunner:
    """Runs jobs on a thread pool (each job's work in its own child process) and recovers after a restart."""

    def __init__(self, platform: Platform, workers: int) -> None:
        self.platform = platform
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="previsio-job")
        #: Set when the platform stops: running jobs kill their child and fail with ``platform_stopped``.
        self.stopping = threading.Event()
        self._active = 0
        self._idle = threading.Condition()

    def shutdown(self, timeout: float = STOP_TIMEOUT) -> None:
        """Stop accepting jobs and stop the running ones (they fail with ``platform_stopped``), waiting up
        to ``timeout`` seconds for them to record it (what is left is recovered at the next start)."""
        self.stopping.set()
        self.pool.shutdown(wait=False, cancel_futures=True)
        with self._idle:
            self._idle.wait_for(lambda: self._active == 0, timeout=timeout)

    def _submit(self, fn: Any, *args: Any) -> None:
        def tracked() -> None:
            with self._idle:
                self._active += 1
            try:
                fn(*args)
            finally:
                with self._idle:
                    self._active -= 1
                    self._idle.notify_all()

        self.pool.submit(tracked)

    def submit_snapshot(self, job_id: str) -> None:
        """Run the snapshot of job ``job_id`` (its datasource and pending dataset are already stored)."""
        self._submit(execute, DatasetJob(self.platform), job_id)

    def submit_upload(self, job_id: str, upload_path: Path, fmt: str) -> None:
        """Turn an uploaded file into the pending dataset of job ``job_id`` (the file is removed after)."""

        def run() -> None:
            try:
                execute(DatasetJob(self.platform, upload_path, fmt), job_id)
            finally:
                shutil.rmtree(upload_path.parent, ignore_errors=True)

        self._submit(run)

    def submit_export(self, export_id: str, upload: Path | None = None, fmt: str | None = None) -> None:
        """Run export ``export_id`` (see :mod:`.exports`); ``upload`` is an uploaded file to export."""
        from .exports import run_export

        self._submit(run_export, self.platform, export_id, upload, fmt)

    def recover(self) -> None:
        """At start-up: fail the jobs a previous process left unfinished and drop their pending datasets."""
        with self.platform.db.session() as s:
            for job in s.scalars(select(Job).where(Job.status.in_(UNFINISHED))):
                if job.status == "cancelling":
                    job.status = "cancelled"
                    job.error_code = "cancelled"
                    job.error_message = "The job was cancelled."
                else:
                    job.status = "failed"
                    job.error_code = "platform_restarted"
                    job.error_message = (
                        "The platform stopped while this job was running; take the snapshot again."
                    )
                job.finished_at = utcnow()
                job.dataset_id = None
            for dataset in s.scalars(select(Dataset).where(Dataset.status != "ready")):
                s.delete(dataset)
            s.flush()
            keep = set(s.scalars(select(Dataset.id)))
        self.platform.store.clean(keep)
