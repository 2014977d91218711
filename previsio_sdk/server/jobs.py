"""Snapshot and upload jobs, run by an in-process thread pool.

A job writes its dataset under a temporary name; only when the whole stream has been written does it move the
file to its final name and mark the dataset ``ready`` in the same step as the job's success. A job that fails
(or a platform that stops in the middle) leaves no visible dataset, and the job records why.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from sqlalchemy import select

from .drivers import ConnectorConfig, Driver, SourceSpec, driver_class
from .errors import PlatformError
from .models import Connector, Dataset, DataSource, Job, utcnow

if TYPE_CHECKING:
    from .core import Platform

log = logging.getLogger(__name__)


def build_driver(platform: Platform, connector: Connector) -> Driver:
    """Instantiate the driver of a stored connector, with its decrypted secrets."""
    cls = driver_class(connector.type)
    config = ConnectorConfig(
        type=connector.type,
        driver=connector.driver,
        host=connector.host,
        port=connector.port,
        username=connector.username,
        database=connector.database,
        options=dict(connector.options or {}),
        secrets=platform.vault.decrypt(connector.secret_enc),
    )
    return cls(config, connect_timeout=platform.settings.connect_timeout, settings=platform.settings)


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


@contextmanager
def open_upload(path: Path, fmt: str, batch_rows: int) -> Iterator[pa.RecordBatchReader]:
    """Open an uploaded CSV or Parquet file as a stream of record batches."""
    try:
        if fmt == "parquet":
            pf = pq.ParquetFile(path)
            yield pa.RecordBatchReader.from_batches(pf.schema_arrow, pf.iter_batches(batch_size=batch_rows))
        else:
            reader = pacsv.open_csv(path, read_options=pacsv.ReadOptions(block_size=16 << 20))
            yield reader
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException) and exc.errno:
            raise
        raise PlatformError(422, "invalid_file", f"The uploaded {fmt} file cannot be read: {exc}") from None


#: ``error_code`` of a job still running that was asked to stop (``POST /jobs/{id}/cancel``).
CANCEL_REQUESTED = "cancel_requested"


def _stop_if_cancelled(job: Job) -> None:
    if job.error_code == CANCEL_REQUESTED:
        raise PlatformError(409, "cancelled", "The job was cancelled; no dataset was kept.")


class JobRunner:
    """Runs jobs in a thread pool and records their outcome in the metadata store."""

    def __init__(self, platform: Platform, workers: int) -> None:
        self.platform = platform
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="previsio-job")

    def shutdown(self) -> None:
        """Stop accepting jobs; running ones are abandoned and marked failed at the next start."""
        self.pool.shutdown(wait=False, cancel_futures=True)

    def submit_snapshot(self, job_id: str) -> None:
        """Run the snapshot of job ``job_id`` (its datasource and pending dataset are already stored)."""
        self.pool.submit(self._run, job_id, self._snapshot_reader)

    def submit_upload(self, job_id: str, upload_path: Path, fmt: str) -> None:
        """Turn an uploaded file into the pending dataset of job ``job_id``."""

        def reader(_session: Any, _job: Job, _dataset: Dataset) -> Any:
            return open_upload(upload_path, fmt, self.platform.settings.batch_rows)

        def run() -> None:
            try:
                self._run(job_id, reader)
            finally:
                shutil.rmtree(upload_path.parent, ignore_errors=True)

        self.pool.submit(run)

    def submit_export(self, export_id: str, upload: Path | None = None, fmt: str | None = None) -> None:
        """Run export ``export_id`` (see :mod:`.exports`); ``upload`` is an uploaded file to export."""
        from .exports import run_export

        self.pool.submit(run_export, self.platform, export_id, upload, fmt)

    # --------------------------------------------------------------------------------------------------------
    def _snapshot_reader(self, session: Any, _job: Job, dataset: Dataset) -> Any:
        ds = session.get(DataSource, dataset.datasource_id)
        if ds is None:
            raise PlatformError(409, "source_deleted", "The datasource was deleted before the snapshot ran.")
        connector = session.get(Connector, ds.connector_id)
        driver = build_driver(self.platform, connector)
        return driver.open_reader(source_spec(ds), self.platform.settings.batch_rows)

    def _progress(self, job_id: str) -> Callable[[int], None]:
        def update(rows: int) -> None:
            with self.platform.db.session() as s:
                job = s.get(Job, job_id)
                if job is not None:
                    _stop_if_cancelled(job)  # checked at each batch: a cancelled snapshot stops here
                    job.progress_rows = rows

        return update

    def _run(self, job_id: str, open_reader: Callable[[Any, Job, Dataset], Any]) -> None:
        platform = self.platform
        with platform.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return
            job.status = "running"
            job.started_at = utcnow()
        written = None
        try:
            with platform.db.session() as s:
                job = s.get(Job, job_id)
                _stop_if_cancelled(job)  # cancelled before it started
                dataset = s.get(Dataset, job.dataset_id)
                opener = open_reader(s, job, dataset)
            with opener as reader:
                written = platform.store.write(reader, on_progress=self._progress(job_id))
            with platform.db.session() as s:
                job = s.get(Job, job_id)
                dataset = s.get(Dataset, job.dataset_id)
                platform.store.commit(written, dataset.id)
                dataset.status = "ready"
                dataset.num_rows = written.num_rows
                dataset.size_bytes = written.size_bytes
                dataset.content_hash = written.content_hash
                dataset.schema_json = written.schema
                job.status = "succeeded"
                job.error_code = None  # a cancel that came too late
                job.progress_rows = written.num_rows
                job.finished_at = utcnow()
            log.info("job %s succeeded: %d rows", job_id, written.num_rows)
        except BaseException as exc:  # noqa: BLE001 - every failure must be recorded
            if written is not None:
                written.tmp_path.unlink(missing_ok=True)
            self._fail(job_id, exc)
            if not isinstance(exc, Exception):
                raise

    def _fail(self, job_id: str, exc: BaseException) -> None:
        if isinstance(exc, PlatformError):
            code, message = exc.code, exc.message
        elif isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
            code, message = "storage_full", "The platform ran out of disk space while writing the dataset."
        else:
            log.error("job %s failed unexpectedly", job_id, exc_info=exc)
            code, message = "internal_error", f"The job failed unexpectedly ({type(exc).__name__})."
        log.info("job %s failed: %s", job_id, code)
        with self.platform.db.session() as s:
            job = s.get(Job, job_id)
            if job is None:
                return
            job.status = "failed"
            job.error_code = code
            job.error_message = message
            job.finished_at = utcnow()
            dataset = s.get(Dataset, job.dataset_id) if job.dataset_id else None
            if dataset is not None and dataset.status != "ready":
                s.delete(dataset)
            job.dataset_id = None

    def recover(self) -> None:
        """At start-up: fail the jobs a previous process left unfinished and drop their pending datasets."""
        with self.platform.db.session() as s:
            for job in s.scalars(select(Job).where(Job.status.in_(("pending", "running")))):
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
