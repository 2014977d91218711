"""Export jobs: a stored dataset (or an uploaded file) streamed to an exporter's destination.

An export runs on the job runner's thread pool. It reads the dataset's Parquet file batch by batch (an upload:
its CSV or Parquet file) and hands the stream to the connector's driver, which writes it all or nothing (see
:meth:`~previsio_sdk.server.drivers.base.Driver.write`). The export records its rows, its destination and
its timing, or the reason it failed; a failed export has left the destination as it was.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

import pyarrow as pa
from sqlalchemy import select

from .drivers import DestinationSpec, WriteMode
from .errors import PlatformError
from .jobs import build_driver, open_upload
from .models import Connector, Dataset, Export, Exporter, utcnow

if TYPE_CHECKING:
    from .core import Platform

log = logging.getLogger(__name__)

#: Seconds between two updates of an export's ``progress_rows``.
PROGRESS_EVERY = 0.5


def destination_spec(exporter: Exporter) -> DestinationSpec:
    """The driver-level description of a stored exporter's destination."""
    return DestinationSpec(
        database=exporter.database,
        table=exporter.table,
        path=exporter.path,
        bucket=exporter.bucket,
        options=dict(exporter.options or {}),
    )


def counted(
    reader: pa.RecordBatchReader, on_progress: Callable[[int], None], what: str
) -> pa.RecordBatchReader:
    """``reader`` reporting its rows read so far; a failure to read the source becomes a clear error."""

    def batches() -> Iterator[pa.RecordBatch]:
        rows = 0
        last = time.monotonic()
        try:
            for batch in reader:
                rows += batch.num_rows
                yield batch
                if time.monotonic() - last >= PROGRESS_EVERY:
                    on_progress(rows)
                    last = time.monotonic()
        except (pa.ArrowException, OSError) as exc:  # a value that does not parse, a corrupt page
            raise PlatformError(422, "invalid_file", f"The {what} cannot be read: {exc}") from None

    return pa.RecordBatchReader.from_batches(reader.schema, batches())


def run_export(platform: Platform, export_id: str, upload: str | None = None, fmt: str | None = None) -> None:
    """Run export ``export_id`` and record its outcome (never raises for a failed export).

    Args:
        platform: The platform.
        export_id: The pending export.
        upload: The upload staged in the store to export instead of a dataset (removed afterwards).
        fmt: Format of ``upload``: ``csv`` or ``parquet``.
    """
    try:
        _run(platform, export_id, upload, fmt)
    finally:
        if upload is not None:
            platform.store.remove_upload(upload)


def _run(platform: Platform, export_id: str, upload: str | None, fmt: str | None) -> None:
    with platform.db.session() as s:
        export = s.get(Export, export_id)
        if export is None:
            return
        export.status = "running"
        export.started_at = utcnow()
    try:
        with platform.db.session() as s:
            export = s.get(Export, export_id)
            if export is None:
                return
            exporter = s.get(Exporter, export.exporter_id)
            connector = s.get(Connector, exporter.connector_id) if exporter is not None else None
            if exporter is None or connector is None:
                raise PlatformError(
                    409, "exporter_deleted", "The exporter was deleted before the export ran."
                )
            driver = build_driver(platform, connector)
            dest = destination_spec(exporter)
            mode = WriteMode(exporter.write_mode)
            key = list(exporter.key) if exporter.key else None
            opener: AbstractContextManager[pa.RecordBatchReader]
            if upload is not None:
                opener = open_upload(platform.store, upload, fmt or "csv", platform.settings.batch_rows)
                what = "uploaded file"
            else:
                dataset = s.get(Dataset, export.dataset_id) if export.dataset_id else None
                if dataset is None or dataset.status != "ready":
                    raise PlatformError(
                        409, "source_deleted", "The dataset was deleted before the export ran."
                    )
                opener = platform.store.reader(dataset.id, platform.settings.batch_rows)
                what = "dataset"
        with opener as reader:
            result = driver.write(dest, counted(reader, _progress(platform, export_id), what), mode, key)
        with platform.db.session() as s:
            export = s.get(Export, export_id)
            if export is None:
                return
            export.status = "succeeded"
            export.rows = result.rows
            export.progress_rows = result.rows
            export.destination = result.destination
            export.finished_at = utcnow()
        log.info("export %s succeeded: %d rows to %s", export_id, result.rows, result.destination)
    except BaseException as exc:  # noqa: BLE001 - every failure must be recorded
        _fail(platform, export_id, exc)
        if not isinstance(exc, Exception):
            raise


def _progress(platform: Platform, export_id: str) -> Callable[[int], None]:
    def update(rows: int) -> None:
        with platform.db.session() as s:
            export = s.get(Export, export_id)
            if export is not None:
                export.progress_rows = rows

    return update


def _fail(platform: Platform, export_id: str, exc: BaseException) -> None:
    if isinstance(exc, PlatformError):
        code, message = exc.code, exc.message
    elif isinstance(exc, OSError) and getattr(exc, "errno", None) == 28:
        code, message = "storage_full", "The platform ran out of disk space during the export."
    else:
        log.error("export %s failed unexpectedly", export_id, exc_info=exc)
        code, message = "internal_error", f"The export failed unexpectedly ({type(exc).__name__})."
    log.info("export %s failed: %s", export_id, code)
    with platform.db.session() as s:
        export = s.get(Export, export_id)
        if export is None:
            return
        export.status = "failed"
        export.error_code = code
        export.error_message = message
        export.finished_at = utcnow()


def recover_exports(platform: Platform) -> None:
    """At start-up: fail the exports a previous process left unfinished."""
    with platform.db.session() as s:
        for export in s.scalars(select(Export).where(Export.status.in_(("pending", "running")))):
            export.status = "failed"
            export.error_code = "platform_restarted"
            export.error_message = "The platform stopped while this export was running; export again."
            export.finished_at = utcnow()
