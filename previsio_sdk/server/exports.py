"""Export jobs: a stored dataset (or an uploaded file) streamed to an exporter's destination.

An export runs like every job (:func:`~.jobs.execute`): its thread claims it, and its child process reads
the dataset's Parquet file batch by batch (an upload: its CSV or Parquet file) and hands the stream to the
connector's driver, which writes it all or nothing (see
:meth:`~previsio_sdk.server.drivers.base.Driver.write`) under names derived from the export's id. The
export records its rows, its destination and its timing, or the reason it failed. A failed, cancelled or
interrupted export has its staging at the destination discarded
(:meth:`~previsio_sdk.server.drivers.base.Driver.discard_staging`), at once or at the next start.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from sqlalchemy import select

from .drivers import ConnectorConfig, DestinationSpec, WriteMode, WriteResult
from .drivers.limits import ReadLimits
from .errors import PlatformError
from .jobs import UNFINISHED, JobKind, Work, connector_config, make_driver, open_upload
from .models import Connector, Dataset, Export, Exporter, utcnow
from .sandbox import run_isolated
from .stores import open_store

if TYPE_CHECKING:
    from .context import JobContext
    from .settings import Settings

log = logging.getLogger(__name__)

#: Seconds between two updates of an export's ``progress_rows``.
PROGRESS_EVERY = 0.5
#: Seconds the removal of an interrupted export's staging may take (a remote call, in a child process).
DISCARD_TIMEOUT = 60.0


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


def _accepts_job_id(write: Callable[..., Any]) -> bool:
    """Whether a driver's ``write`` takes ``job_id=`` (drivers written before it was added do not)."""
    try:
        params = inspect.signature(write).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == "job_id" or p.kind is inspect.Parameter.VAR_KEYWORD for p in params)


def export_work(
    config: ConnectorConfig,
    settings: Settings,
    dest: DestinationSpec,
    mode: WriteMode,
    key: list[str] | None,
    source: str,
    fmt: str | None,
    export_id: str,
    *,
    report: Any,
) -> WriteResult:
    """In the child: stream a dataset (``source`` its id), or an upload staged in the store (``source`` its
    reference, ``fmt`` given), to the destination."""
    driver = make_driver(config, settings)
    store = open_store(settings)
    opener: AbstractContextManager[pa.RecordBatchReader]
    if fmt is not None:
        opener = open_upload(store, source, fmt, settings.batch_rows, ReadLimits.from_settings(settings))
        what = "uploaded file"
    else:
        opener = store.reader(source, settings.batch_rows)
        what = "dataset"
    extra = {"job_id": export_id} if _accepts_job_id(driver.write) else {}
    with opener as reader:
        return driver.write(dest, counted(reader, report, what), mode, key, **extra)


def discard_work(
    config: ConnectorConfig, settings: Settings, dest: DestinationSpec, export_id: str, *, report: Any
) -> None:
    """In the child: remove what an interrupted write of export ``export_id`` left at the destination."""
    make_driver(config, settings).discard_staging(dest, export_id)


class ExportJob(JobKind):
    """An export: a dataset (or an uploaded file) written to an exporter's destination."""

    model = Export
    noun = "export"

    def prepare(self, session: Any, row: Any) -> Work:
        platform = self.platform
        exporter = session.get(Exporter, row.exporter_id)
        connector = session.get(Connector, exporter.connector_id) if exporter is not None else None
        if exporter is None or connector is None:
            raise PlatformError(409, "exporter_deleted", "The exporter was deleted before the export ran.")
        config = connector_config(platform, connector)
        dest = destination_spec(exporter)
        mode = WriteMode(exporter.write_mode)
        key = list(exporter.key) if exporter.key else None
        upload = (row.params or {}).get("upload")
        if upload is not None:
            source, fmt, code = upload, (row.params or {}).get("format") or "csv", "invalid_file"
        else:
            dataset = session.get(Dataset, row.dataset_id) if row.dataset_id else None
            if dataset is None or dataset.status != "ready":
                raise PlatformError(409, "source_deleted", "The dataset was deleted before the export ran.")
            source, fmt, code = dataset.id, None, "worker_crashed"
        return Work(
            export_work,
            (config, platform.settings, dest, mode, key, source, fmt, row.id),
            secrets=list(config.secrets.values()),
            crash_code=code,
            context={"config": config, "dest": dest},
        )

    def succeed(self, session: Any, row: Any, work: Work, result: Any) -> str:
        row.rows = result.rows
        row.progress_rows = result.rows
        row.destination = result.destination
        return f"{result.rows} rows to {result.destination}"

    def discard(self, row_id: str, work: Work | None, killed: bool) -> None:
        # A write that fails on its own removes its staging; one whose process was killed cannot.
        if work is not None and killed:
            discard_staging(self.platform, work.context["config"], work.context["dest"], row_id)


def discard_staging(
    platform: JobContext, config: ConnectorConfig, dest: DestinationSpec, export_id: str
) -> bool:
    """Remove the staging of export ``export_id`` at its destination, in a child, within DISCARD_TIMEOUT.

    Never raises: a destination that cannot be reached keeps its staging (logged); the export's outcome
    stands.

    Returns:
        Whether the staging is gone.
    """
    try:
        run_isolated(
            discard_work,
            config,
            platform.settings,
            dest,
            export_id,
            deadline=time.monotonic() + DISCARD_TIMEOUT,
            memory_limit=platform.settings.job_memory_bytes or None,
            secrets=list(config.secrets.values()),
        )
    except Exception as exc:  # noqa: BLE001 - logged; the staging is tried again at the next start
        code = exc.code if isinstance(exc, PlatformError) else type(exc).__name__
        log.warning("export %s: its staging at the destination could not be removed (%s)", export_id, code)
        return False
    return True


def recover_exports(platform: JobContext) -> threading.Thread | None:
    """At start-up: fail the exports a previous process left unfinished, and discard their staging.

    The staging is removed in the background (a remote call per export, each within DISCARD_TIMEOUT): start-up
    neither waits for it nor fails because of it.

    Returns:
        The thread removing the staging (None when no export was left unfinished).
    """
    left: list[tuple[str, ConnectorConfig, DestinationSpec]] = []
    with platform.db.session() as s:
        for export in s.scalars(select(Export).where(Export.status.in_(UNFINISHED))):
            if export.status == "cancelling":
                export.status = "cancelled"
                export.error_code = "cancelled"
                export.error_message = "The job was cancelled."
            else:
                export.status = "failed"
                export.error_code = "platform_restarted"
                export.error_message = "The platform stopped while this export was running; export again."
            export.finished_at = utcnow()
            exporter = s.get(Exporter, export.exporter_id)
            connector = s.get(Connector, exporter.connector_id) if exporter is not None else None
            if exporter is None or connector is None or export.started_at is None:
                continue
            try:
                left.append((export.id, connector_config(platform, connector), destination_spec(exporter)))
            except Exception:  # noqa: BLE001 - a connector whose secret cannot be decrypted: nothing to do
                log.warning("export %s: its connector cannot be read; its staging is left", export.id)
    if not left:
        return None

    def discard_all() -> None:
        for export_id, config, dest in left:
            if discard_staging(platform, config, dest, export_id):
                log.info("export %s: staging discarded after a restart", export_id)

    thread = threading.Thread(target=discard_all, name="previsio-discard-staging", daemon=True)
    thread.start()
    return thread
