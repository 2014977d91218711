"""Exporters: write datasets, local files and DataFrames back to a connector's system.

An exporter is a destination behind a connector (a table of an SQL database, or a file path on a file
connector) and a write mode. Each export of a dataset through it is an :class:`Export`, run by the platform
and polled by the SDK, like a snapshot job.
"""

from __future__ import annotations

import enum
import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from . import _display
from ._default import get_client
from ._progress import Progress
from ._progress import wanted as progress_wanted
from ._resource import PrevisionIds, ident, parse_datetime
from .client import Client, format_path, new_idempotency_key
from .connectors import Connector
from .errors import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd

    from .datasets import Dataset

_UPLOAD_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: previsionio's name of each export status (``export.state``).
_PREVISION_STATES = {"pending": "pending", "running": "running", "succeeded": "done", "failed": "failed"}


class ExporterWriteMode(str, enum.Enum):
    """What an export does with what its destination already holds.

    Files take ``safe``, ``replace`` and ``timestamp``; tables take ``replace``, ``append`` and ``upsert``.
    """

    safe = "safe"
    """Files: write the file; fail (``destination_exists``) when it already exists."""
    replace = "replace"
    """Files: overwrite the file. Tables: replace the table by one made from the dataset's schema."""
    timestamp = "timestamp"
    """Files: write a new file whose name carries the export time (``orders_20240131T120000Z.csv``)."""
    append = "append"
    """Tables: add the rows; the table is created from the dataset's schema when it does not exist."""
    upsert = "upsert"
    """Tables: replace the rows whose ``key`` columns match a row of the dataset, add the others."""

    def __str__(self) -> str:
        return self.value


def as_write_mode(value: ExporterWriteMode | str) -> ExporterWriteMode:
    """``value`` as an :class:`ExporterWriteMode`.

    Raises:
        ConfigurationError: It names no write mode.
    """
    try:
        return ExporterWriteMode(value)
    except ValueError:
        known = ", ".join(m.value for m in ExporterWriteMode)
        raise ConfigurationError(f"Unknown write mode {value!r}; use one of {known}.") from None


@attrs.define(eq=False)
class Export(PrevisionIds, metaclass=_display.Documented):
    """One export: a dataset (or a file, or a DataFrame) written to an exporter's destination.

    Attributes:
        id: Platform id.
        project_id: Id of the project.
        exporter_id: Id of the exporter it ran through.
        status: ``pending``, ``running``, ``cancelling`` (asked to stop, stopping), then ``succeeded``,
            ``failed`` or ``cancelled``.
        source: ``dataset``, ``file`` or ``dataframe``.
        rows: Rows written, once it succeeded.
        progress_rows: Rows read so far.
        destination: Where the rows went: the table (``database.schema.table``) or the file path written
            (with a ``timestamp`` exporter: the name carrying the export time).
        dataset_id: Id of the dataset exported (None for a file or a DataFrame, or a deleted dataset).
        file_name: Name of the exported local file.
        error_code: Why it failed, as a code (``destination_exists``, ``incompatible_schema``,
            ``write_failed``, ``connection_failed``...).
        error_message: Why it failed, in words.
        created_at: When it was asked for (UTC).
        started_at: When the platform started it (UTC).
        finished_at: When it ended (UTC), or None while it runs.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    exporter_id: str
    status: str
    source: str = "dataset"
    rows: int | None = None
    progress_rows: int = 0
    destination: str | None = None
    dataset_id: str | None = None
    file_name: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Export:
        """Build an export object from the platform's description."""
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            exporter_id=data["exporter_id"],
            status=data["status"],
            source=data.get("source") or "dataset",
            rows=data.get("rows"),
            progress_rows=data.get("progress_rows") or 0,
            destination=data.get("destination"),
            dataset_id=data.get("dataset_id"),
            file_name=data.get("file_name"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            created_at=parse_datetime(data.get("created_at")),
            started_at=parse_datetime(data.get("started_at")),
            finished_at=parse_datetime(data.get("finished_at")),
            client=get_client(client),
        )

    @classmethod
    def from_id(cls, export_id: str, client: Client | None = None) -> Export:
        """Fetch an export by id.

        Raises:
            NotFoundError: No such export is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/exports/{}", export_id)), client)

    @classmethod
    def list(cls, exporter_id: str, client: Client | None = None) -> list[Export]:
        """The exports run through an exporter, oldest first (previsionio's ``Export.list(exporter_id)``)."""
        client = get_client(client)
        path = format_path("/exporters/{}/exports", exporter_id)
        return [cls.from_dict(e, client) for e in client.iter_pages(path)]

    @classmethod
    def export_dataset(
        cls,
        exporter_id: str,
        dataset: Dataset | str,
        wait_for_export: bool = False,
        client: Client | None = None,
    ) -> Export:
        """Write a dataset through an exporter given by id (previsionio's class-level form).

        Same as :meth:`Exporter.export_dataset`; ``wait_for_export`` is False by default, as in previsionio.
        """
        exporter = Exporter.from_id(exporter_id, client)
        return exporter.export_dataset(dataset, wait_for_export=wait_for_export)

    @classmethod
    def export_file(
        cls,
        exporter_id: str,
        file_path: str | os.PathLike[str],
        encoding: str | None = None,
        separator: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
        wait_for_export: bool = False,
        client: Client | None = None,
        **kwargs: Any,
    ) -> Export:
        """Write a local file through an exporter given by id (previsionio's class-level form).

        Same as :meth:`Exporter.export_file`; ``wait_for_export`` is False by default, as in previsionio.
        """
        exporter = Exporter.from_id(exporter_id, client)
        return exporter.export_file(
            file_path,
            encoding=encoding,
            separator=separator,
            decimal=decimal,
            thousands=thousands,
            wait_for_export=wait_for_export,
            **kwargs,
        )

    @property
    def client(self) -> Client:
        """The client this export came from."""
        return get_client(self._client)

    @property
    def state(self) -> str:
        """The status in previsionio's words: ``pending``, ``running``, ``done`` or ``failed``."""
        return _PREVISION_STATES.get(self.status, self.status)

    @property
    def done(self) -> bool:
        """Whether the export has ended: succeeded, failed or cancelled."""
        return self.status in ("succeeded", "failed", "cancelled")

    @property
    def duration(self) -> float | None:
        """Seconds the platform spent on it, from start to end (None until it ended)."""
        if self.started_at is None or self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()

    def refresh(self) -> Export:
        """Fetch the export's current state (returns a new object)."""
        return Export.from_id(self.id, self.client)

    def cancel(self) -> Export:
        """Ask the platform to stop the export; returns its state at once (``cancelled``, or ``cancelling``
        while the platform stops it, within about a second). What it had written is discarded: the
        destination is left as it was. :meth:`wait` then raises
        :class:`~previsio_sdk.errors.JobCancelledError`.

        Raises:
            ConflictError: The export has already ended (code ``job_finished``).
            PermissionDeniedError: The token's role in the project is below editor.
        """
        return Export.from_dict(self.client.post(format_path("/exports/{}/cancel", self.id)), self.client)

    def wait(
        self, timeout: float | None = None, progress: bool | None = None, total: int | None = None
    ) -> Export:
        """Wait for the export to end and return it, finished.

        Shows the rows written so far and leaves a summary line (``export: 2,000 rows → public.scores in
        0.4 s``). Interrupted, it prints how to get back to the export.

        Args:
            timeout: Seconds to wait at most; None waits as long as it takes.
            progress: Show progress; None shows it in a notebook or a terminal (``PREVISIO_PROGRESS=0``: not).
            total: Rows to write, when known (a bar with an ETA instead of a counter).

        Raises:
            JobFailedError: The export failed; ``code`` and ``message`` carry the platform's reason, and the
                destination was left as it was.
            JobCancelledError: The export was cancelled; the destination was left as it was.
            JobTimeoutError: ``timeout`` passed first (the export goes on).
        """
        __tracebackhide__ = True
        with Progress("export", total=total, enabled=progress_wanted(progress)) as bar:
            data = self.client.wait_job(
                self.id,
                timeout=timeout,
                path=format_path("/exports/{}", self.id),
                bar=bar,
                resume=f"pio.Export.from_id({self.id!r})",
                cancellable=False,
            )
            done = Export.from_dict(data, self.client)
            rows = done.rows if done.rows is not None else done.progress_rows
            bar.close(f"{rows:,} rows" + (f" → {done.destination}" if done.destination else ""))
        return done


@attrs.define(eq=False)
class Exporter(PrevisionIds, metaclass=_display.Documented):
    """An exporter of a project: a destination behind a connector, and a write mode.

    Attributes:
        id: Platform id.
        project_id: Id of the project owning it.
        connector_id: Id of the connector it writes through.
        name: Name, unique among the project's exporters.
        write_mode: What an export does with what the destination holds.
        description: Free text.
        database: Database of the table (SQL; the connector's default when None).
        table: Table written (SQL; ``schema.table`` on PostgreSQL).
        path: File path written (file connectors), relative to the connector's root.
        bucket: Bucket (object stores).
        key: Key columns of an ``upsert``.
        options: Type-specific settings (files: ``format``).
        created_at: Creation time (UTC).
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    connector_id: str
    name: str
    write_mode: ExporterWriteMode
    description: str | None = None
    database: str | None = None
    table: str | None = None
    path: str | None = None
    bucket: str | None = None
    key: list[str] | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Exporter:
        """Build an exporter object from the platform's description."""
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            connector_id=data["connector_id"],
            name=data["name"],
            write_mode=ExporterWriteMode(data["write_mode"]),
            description=data.get("description"),
            database=data.get("database"),
            table=data.get("table"),
            path=data.get("path"),
            bucket=data.get("bucket"),
            key=data.get("key"),
            options=data.get("options") or {},
            created_at=parse_datetime(data.get("created_at")),
            client=get_client(client),
        )

    @classmethod
    def from_id(cls, exporter_id: str, client: Client | None = None) -> Exporter:
        """Fetch an exporter by id.

        Raises:
            NotFoundError: No such exporter is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/exporters/{}", exporter_id)), client)

    @classmethod
    def list(cls, project_id: str, all: bool = True, client: Client | None = None) -> list[Exporter]:
        """The exporters of a project, oldest first.

        Args:
            project_id: Id of the project.
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
            client: Client to use; the default client when None.
        """
        client = get_client(client)
        path = format_path("/projects/{}/exporters", project_id)
        return [cls.from_dict(e, client) for e in client.list_items(path, all=all)]

    @property
    def client(self) -> Client:
        """The client this exporter came from."""
        return get_client(self._client)

    @property
    def connector(self) -> Connector:
        """The connector this exporter writes through (fetched from the platform)."""
        return Connector.from_id(self.connector_id, self.client)

    def delete(self) -> None:
        """Delete this exporter and the record of its exports; what they wrote stays where it is."""
        self.client.delete(format_path("/exporters/{}", self.id))

    def export_dataset(
        self,
        dataset: Dataset | str,
        wait_for_export: bool = False,
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> Export:
        """Write a dataset of the project to the destination.

        Args:
            dataset: The dataset (or its id).
            wait_for_export: Wait for the export to end; False (the default, as in previsionio) returns the
                pending export at once (``export.wait()`` waits for it).
            timeout: Seconds to wait at most (with ``wait_for_export``).
            progress: Show a progress bar (rows so far); None shows one in a terminal or a notebook.

        Returns:
            The export: finished (``wait_for_export``), or pending.

        Raises:
            NotFoundError: The dataset is not one of the exporter's project.
            JobFailedError: The export failed; the destination was left as it was.
            JobTimeoutError: ``timeout`` passed first (the export goes on).
        """
        data = self.client.post(format_path("/exporters/{}/exports", self.id), {"dataset_id": ident(dataset)})
        export = Export.from_dict(data, self.client)
        total = getattr(dataset, "num_rows", None)  # known for a Dataset object, not for an id
        return export.wait(timeout=timeout, progress=progress, total=total) if wait_for_export else export

    def export_file(
        self,
        file_path: str | os.PathLike[str],
        encoding: str | None = None,
        separator: str | None = None,
        decimal: str | None = None,
        thousands: str | None = None,
        wait_for_export: bool = False,
        timeout: float | None = None,
        progress: bool | None = None,
        format: str | None = None,
        **kwargs: Any,
    ) -> Export:
        """Upload a local CSV or Parquet file and write its rows to the destination.

        The signature is previsionio's. A CSV file read with ``encoding``, ``separator``, ``decimal`` or
        ``thousands`` is converted to Parquet on this machine first (streamed, except with ``thousands``).

        Args:
            file_path: The local file.
            encoding: Text encoding of the CSV file (``utf-8`` when None).
            separator: Field separator of the CSV file (``,`` when None).
            decimal: Decimal mark of the CSV numbers (``.`` when None).
            thousands: Thousands separator of the CSV numbers.
            wait_for_export: Wait for the export to end; False (the default, as in previsionio) returns the
                pending export at once.
            timeout: Seconds to wait at most (with ``wait_for_export``).
            progress: Show a progress bar (rows so far); None shows one in a terminal or a notebook.
            format: ``csv`` or ``parquet``; from the file's extension when None (``csv`` for another
                extension given CSV options).
            **kwargs: previsionio's pipeline keywords (``origin``, ``pipeline_scheduled_run_id``), accepted
                and ignored: there are no pipelines here.

        Raises:
            ConfigurationError: The file's format is unknown, or the CSV options do not read it.
            JobFailedError: The export failed (an unreadable file among the reasons).
            JobTimeoutError: ``timeout`` passed first.
        """
        unknown = sorted(set(kwargs) - {"origin", "pipeline_scheduled_run_id"})
        if unknown:
            raise ConfigurationError(f"Unknown arguments of export_file: {unknown}.")
        file = Path(file_path)
        csv_options = dict(encoding=encoding, separator=separator, decimal=decimal, thousands=thousands)
        has_options = any(v is not None for v in csv_options.values())
        fmt = format or _UPLOAD_FORMATS.get(file.suffix.lower()) or ("csv" if has_options else None)
        if fmt not in ("csv", "parquet"):
            raise ConfigurationError(
                f"Cannot tell the format of {str(file)!r}: use a .csv or .parquet file, or format=."
            )
        if fmt == "csv" and has_options:
            from ._csvfiles import csv_to_parquet

            with tempfile.TemporaryDirectory(prefix="previsio-") as tmp:
                converted = Path(tmp) / "file.parquet"
                csv_to_parquet(file, converted, **csv_options)
                export = self._upload(converted, "parquet", file.name, "file")
        else:
            export = self._upload(file, fmt, file.name, "file")
        return export.wait(timeout=timeout, progress=progress) if wait_for_export else export

    def export_dataframe(
        self,
        dataframe: pd.DataFrame,
        wait_for_export: bool = False,
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> Export:
        """Write the rows of a pandas DataFrame to the destination (its index is not written).

        ``wait_for_export`` is False by default, as for datasets and files.

        Raises:
            JobFailedError: The export failed; the destination was left as it was.
            JobTimeoutError: ``timeout`` passed first.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(dataframe, preserve_index=False)
        with tempfile.TemporaryDirectory(prefix="previsio-") as tmp:
            file = Path(tmp) / "dataframe.parquet"
            pq.write_table(table, file)
            export = self._upload(file, "parquet", None, "dataframe")
        return export.wait(timeout=timeout, progress=progress) if wait_for_export else export

    def _upload(self, file: Path, fmt: str, file_name: str | None, source: str) -> Export:
        params = {"format": fmt, "source": source}
        if file_name:
            params["file_name"] = file_name
        with open(file, "rb") as fh:
            resp = self.client.request(
                "POST",
                format_path("/exporters/{}/exports/upload", self.id),
                params=params,
                data=fh,
                headers={"Content-Type": "application/octet-stream"},
                idempotency_key=new_idempotency_key(),  # sent again from the start if the connection drops
            )
        return Export.from_dict(resp.json(), self.client)

    @_display.returns_list
    def list_exports(self) -> list[Export]:
        """The exports run through this exporter, oldest first."""
        path = format_path("/exporters/{}/exports", self.id)
        return [Export.from_dict(e, self.client) for e in self.client.iter_pages(path)]
