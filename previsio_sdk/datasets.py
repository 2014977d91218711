"""Datasets: immutable Parquet snapshots stored by the platform, and the jobs that make them."""

from __future__ import annotations

import io
import os
from datetime import datetime
from typing import TYPE_CHECKING, Any

import attrs

from . import _display
from ._default import get_client
from ._display import human_bytes
from ._progress import Progress
from ._progress import wanted as progress_wanted
from ._reading import Filters, RangeReader, fit_filters
from ._resource import PrevisionIds, parse_datetime
from .client import Client, format_path
from .datasources import DataSource
from .errors import ConfigurationError, NotFoundError

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from .project import Project


#: What :meth:`Dataset.download` writes: a zip holding one CSV (previsionio's default), a CSV, or Parquet.
DOWNLOAD_EXTENSIONS = ("zip", "csv", "parquet")


@attrs.define(frozen=True)
class Column:
    """One column of a dataset's schema.

    Attributes:
        name: Column name.
        type: Arrow type name, such as ``int64``, ``timestamp[us, tz=UTC]`` or ``decimal128(12, 2)``.
        nullable: Whether the column may hold nulls.
    """

    name: str
    type: str
    nullable: bool = True


@attrs.define(eq=False)
class Dataset(PrevisionIds, metaclass=_display.Documented):
    """A dataset of a project: a snapshot of a datasource, or an upload.

    Attributes:
        id: Platform id.
        project_id: Id of the project owning it.
        name: Name, unique among the project's datasets.
        num_rows: Number of rows.
        schema: Columns, with their Arrow types.
        created_at: When the snapshot or upload was started (UTC).
        datasource_id: Id of the datasource it was taken from (None for uploads or a deleted datasource).
        origin: ``snapshot`` or ``upload``.
        size_bytes: Size of the stored Parquet file.
        content_hash: SHA-256 of the stored Parquet file.
        file_name: Name of the uploaded file, for uploads.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    name: str
    num_rows: int
    schema: list[Column] = attrs.field(factory=list)
    created_at: datetime | None = None
    datasource_id: str | None = None
    origin: str = "snapshot"
    size_bytes: int = 0
    content_hash: str = ""
    file_name: str | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Dataset:
        """Build a dataset object from the platform's description."""
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            name=data["name"],
            num_rows=data["num_rows"],
            schema=[Column(c["name"], c["type"], c.get("nullable", True)) for c in data.get("schema") or []],
            created_at=parse_datetime(data.get("created_at")),
            datasource_id=data.get("datasource_id"),
            origin=data.get("origin", "snapshot"),
            size_bytes=data.get("size_bytes") or 0,
            content_hash=data.get("content_hash") or "",
            file_name=data.get("file_name"),
            client=get_client(client),
        )

    @classmethod
    def from_id(cls, dataset_id: str, client: Client | None = None) -> Dataset:
        """Fetch a dataset by id.

        Raises:
            NotFoundError: No such dataset is visible to this token (or its snapshot is not complete).
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/datasets/{}", dataset_id)), client)

    @classmethod
    def list(cls, project_id: str, all: bool = True, client: Client | None = None) -> list[Dataset]:
        """The complete datasets of a project, oldest first.

        Args:
            project_id: Id of the project.
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
            client: Client to use; the default client when None.
        """
        client = get_client(client)
        path = format_path("/projects/{}/datasets", project_id)
        return [cls.from_dict(d, client) for d in client.list_items(path, all=all)]

    @property
    def client(self) -> Client:
        """The client this dataset came from."""
        return get_client(self._client)

    @property
    def columns(self) -> list[str]:
        """Column names."""
        return [c.name for c in self.schema]

    @property
    def datasource(self) -> DataSource | None:
        """The datasource this dataset was taken from, if it still exists."""
        if self.datasource_id is None:
            return None
        return DataSource.from_id(self.datasource_id, self.client)

    def download(
        self,
        path: str | os.PathLike[str] | None = None,
        directoy_path: str | os.PathLike[str] | None = None,
        extension: str | None = None,
        *,
        directory_path: str | os.PathLike[str] | None = None,
        download_path: str | os.PathLike[str] | None = None,
        progress: bool | None = None,
    ) -> str:
        """Save the dataset to a local file: a zip holding one CSV, a CSV, or the stored Parquet file.

        The signature is previsionio's (with its ``directoy_path`` spelling; ``directory_path`` is accepted
        too). The format is ``extension`` when given, else the extension of ``path`` (``.zip``, ``.csv``,
        ``.parquet``), else ``zip`` as in previsionio; an existing directory given as ``path`` gets
        ``<name>.parquet``, as it did before. CSV is written as the stored Parquet file is read, batch by
        batch, so memory does not grow with the dataset.

        Args:
            path: The file to write; an existing directory gets ``<name>.parquet``.
            directoy_path: Directory to write ``<name>.<extension>`` into (previsionio's spelling).
            extension: ``zip`` (a zip holding ``<name>.csv``), ``csv`` or ``parquet``.
            directory_path: Same as ``directoy_path``.
            download_path: Same as ``path`` (the keyword of previsionio's getting-started page).
            progress: Show the bytes received; None: in a notebook or a terminal (not with
                ``PREVISIO_PROGRESS=0``).

        Returns:
            The path written.

        Raises:
            ConfigurationError: Both a path and a directory, or an unknown extension, were given.
        """
        from ._csvfiles import write_dataset_file

        path = path if path is not None else download_path
        directory = directoy_path if directoy_path is not None else directory_path
        if path is not None and directory is not None:
            raise ConfigurationError("Give path= or directory_path=, not both.")
        if extension is not None and extension not in DOWNLOAD_EXTENSIONS:
            raise ConfigurationError(
                f"Unknown extension {extension!r}; use one of {', '.join(DOWNLOAD_EXTENSIONS)}."
            )
        # A name may hold "/" or "\": keep the file inside the directory given, whatever the name.
        safe_name = self.name.replace("/", "_").replace("\\", "_")
        if path is not None and os.path.isdir(path):
            directory, extension = path, extension or "parquet"
            path = None
        if path is not None:
            target = os.fspath(path)
            suffix = os.path.splitext(target)[1].lower().lstrip(".")
            fmt = extension or {"pq": "parquet"}.get(suffix, suffix)
            fmt = fmt if fmt in DOWNLOAD_EXTENSIONS else "zip"
        else:
            fmt = extension or "zip"
            where = os.fspath(directory) if directory is not None else os.getcwd()
            target = os.path.join(where, f"{safe_name}.{fmt}")
        if fmt == "parquet":
            self.client.download(
                format_path("/datasets/{}/download", self.id),
                target,
                progress=progress,
                description=f"download {self.name!r}",
            )
        else:
            write_dataset_file(self, target, fmt)
        return target

    def to_arrow(
        self, columns: list[str] | None = None, filters: Filters = None, *, progress: bool | None = None
    ) -> pa.Table:
        """Load the dataset (or only some columns and rows) as a ``pyarrow.Table``.

        ``columns`` and ``filters`` work as in ``pandas.read_parquet``, and are pushed down: only the columns
        asked for are read, and only the row groups whose statistics can match the filters. From a remote
        platform they are fetched with HTTP range requests (the whole file is never transferred then).

        Args:
            columns: Names of the columns to read; None reads them all.
            filters: Rows to keep: DNF tuples (``[("country", "=", "FR"), ("amount", ">", 100)]``, or a list
                of such lists for OR) or a ``pyarrow.compute`` expression (``pc.field("amount") > 100``).
            progress: Show the bytes transferred from a remote platform, and leave a summary line; None:
                in a notebook or a terminal (``PREVISIO_PROGRESS=0``: not).

        Raises:
            ValueError: A column or a filter names a column the dataset does not have (from pyarrow).
        """
        import pyarrow.parquet as pq

        filters = fit_filters(filters, self.schema)
        local = self._local_file()
        if local is not None:  # the platform is on this machine: read its file in place
            return pq.read_table(local, columns=columns, filters=filters)
        with Progress(f"load {self.name!r}", unit="bytes", enabled=progress_wanted(progress)) as bar:
            path = format_path("/datasets/{}/download", self.id)
            if columns is None and filters is None:
                bar.total = self.size_bytes or None
                buf = io.BytesIO()
                self.client.download(path, buf, bar=bar)
                buf.seek(0)
                table = pq.read_table(buf)
            else:
                table = pq.read_table(
                    RangeReader.open(self.client, path, self.size_bytes, bar),
                    columns=columns,
                    filters=filters,
                )
            bar.close(f"{table.num_rows:,} rows, {human_bytes(bar.done)} transferred")
        return table

    def to_pandas(
        self, columns: list[str] | None = None, filters: Filters = None, *, progress: bool | None = None
    ) -> pd.DataFrame:
        """Load the dataset (or only some columns and rows) as a ``pandas.DataFrame``.

        ``columns`` and ``filters`` are pushed down as in :meth:`to_arrow`. Integer and boolean columns
        holding NULLs use pandas' nullable dtypes (``Int64``, ``boolean``...), so they stay integer (plain
        pandas would make them ``float64``); NULLs are ``pd.NA``.
        """
        return arrow_to_pandas(self.to_arrow(columns, filters, progress=progress))

    def to_polars(
        self, columns: list[str] | None = None, filters: Filters = None, *, progress: bool | None = None
    ) -> pl.DataFrame:
        """Load the dataset (or only some columns and rows) as a ``polars.DataFrame`` (zero-copy from Arrow).

        Raises:
            ConfigurationError: polars is not installed (``pip install 'previsio_sdk[polars]'``).
        """
        try:
            import polars as pl
        except ImportError:
            raise ConfigurationError("to_polars needs polars: pip install 'previsio_sdk[polars]'.") from None
        return pl.from_arrow(self.to_arrow(columns, filters, progress=progress))  # type: ignore[return-value]

    def local_path(self) -> str | None:
        """The dataset's Parquet file on this machine, when the platform shares it (the local platform).

        Any Parquet reader can use it in place (DuckDB's ``read_parquet``, ``polars.scan_parquet``...); it
        must not be changed. None when the platform is remote or does not share its files: use
        :meth:`to_arrow_stream` or :meth:`duckdb` instead.
        """
        return self._local_file()

    def to_arrow_stream(
        self, columns: list[str] | None = None, filters: Filters = None
    ) -> pa.RecordBatchReader:
        """The dataset as a stream of Arrow record batches (what DuckDB, polars or DataFusion read directly).

        From the local platform the file is scanned batch by batch (with ``columns`` and ``filters`` pushed
        down); from a remote one the columns and row groups needed are fetched first.
        """
        import pyarrow.dataset as pads
        import pyarrow.parquet as pq

        local = self._local_file()
        if local is None:
            return self.to_arrow(columns, filters, progress=False).to_reader()
        filters = fit_filters(filters, self.schema)
        expression = (
            filters if filters is None or not isinstance(filters, list) else pq.filters_to_expression(filters)
        )
        return pads.dataset(local, format="parquet").scanner(columns=columns, filter=expression).to_reader()

    def duckdb(self, connection: Any = None) -> Any:
        """The dataset as a DuckDB relation, to query with SQL or DuckDB's relational API.

        ``ds.duckdb().filter("amount > 100").aggregate("country, sum(amount)")``, or register it under a
        name: ``con.register("orders", ds.duckdb(con))`` then ``con.sql("SELECT ... FROM orders")``. From the
        local platform DuckDB reads the Parquet file in place (with its own pushdown); from a remote one it
        reads the Arrow table.

        Args:
            connection: A ``duckdb.DuckDBPyConnection``; None uses DuckDB's default connection.

        Raises:
            ConfigurationError: duckdb is not installed (``pip install 'previsio_sdk[duckdb]'``).
        """
        try:
            import duckdb
        except ImportError:
            raise ConfigurationError("duckdb() needs duckdb: pip install 'previsio_sdk[duckdb]'.") from None
        con = connection if connection is not None else duckdb.default_connection()
        local = self._local_file()
        if local is not None:
            return con.read_parquet(local)
        return con.from_arrow(self.to_arrow(progress=False))

    def _local_file(self) -> str | None:
        """The dataset's file, when the platform shares it and it is on this machine; else None.

        The embedded local platform runs on this machine: reading its file in place saves a copy through
        HTTP (3x faster for large datasets). The file is used only if it exists here with the size the
        platform states; anything else falls back to a download.
        """
        if not self.client.may_share_files:
            return None
        try:
            info = self.client.get(format_path("/datasets/{}/file", self.id))
        except NotFoundError:
            self.client.may_share_files = False  # a platform that does not share: do not ask again
            return None
        path = info.get("path") or ""
        try:
            if os.path.isabs(path) and os.path.getsize(path) == info.get("size_bytes") == self.size_bytes:
                return path
        except OSError:
            pass
        return None

    def head(self, n: int = 10) -> pd.DataFrame:
        """The first ``n`` rows as a DataFrame; only those rows are transferred."""
        import pyarrow as pa

        resp = self.client.request(
            "GET",
            format_path("/datasets/{}/head", self.id),
            params={"n": n},
            headers={"Accept": "application/vnd.apache.arrow.stream"},
        )
        return arrow_to_pandas(pa.ipc.open_stream(resp.content).read_all())

    def delete(self) -> None:
        """Delete this dataset and its stored file."""
        self.client.delete(format_path("/datasets/{}", self.id))

    def copy_to(self, other_project: Project) -> Dataset:
        """Copy this dataset to another project, on this platform or another, with its lineage.

        Its datasource and that datasource's connector are copied too (the connector without secrets:
        marked as needing credentials); the file streams across, never as a DataFrame. A dataset of the same
        name already in ``other_project`` is kept, not duplicated.

        Returns:
            The dataset in ``other_project``.
        """
        from .migration import copy_dataset

        return copy_dataset(self, other_project)


def arrow_to_pandas(table: pa.Table) -> pd.DataFrame:
    """Convert to pandas keeping integers integer and booleans boolean when they hold NULLs.

    A column without NULLs converts as usual (``int64``, ``bool``: integers already); one with NULLs, which
    plain pandas would turn into ``float64`` or ``object``, gets the nullable dtype (``Int64``, ``boolean``),
    with ``pd.NA`` for NULL. Only those columns pay for the nullable conversion.
    """
    import pandas as pd
    import pyarrow as pa

    mapping = {
        pa.int8(): pd.Int8Dtype(),
        pa.int16(): pd.Int16Dtype(),
        pa.int32(): pd.Int32Dtype(),
        pa.int64(): pd.Int64Dtype(),
        pa.uint8(): pd.UInt8Dtype(),
        pa.uint16(): pd.UInt16Dtype(),
        pa.uint32(): pd.UInt32Dtype(),
        pa.uint64(): pd.UInt64Dtype(),
        pa.bool_(): pd.BooleanDtype(),
    }
    names = table.column_names
    with_nulls = [i for i, f in enumerate(table.schema) if f.type in mapping and table.column(i).null_count]
    if not with_nulls:
        return table.to_pandas()
    if len(set(names)) != len(names):  # duplicate names: convert in one pass, by type
        return table.to_pandas(types_mapper=mapping.get)
    frame = table.drop_columns([names[i] for i in with_nulls]).to_pandas()
    for i in with_nulls:
        frame.insert(i, names[i], table.column(i).to_pandas(types_mapper=mapping.get))
    return frame


@attrs.define(eq=False)
class Job(PrevisionIds, metaclass=_display.Documented):
    """A platform job (snapshot or upload): poll it with :meth:`refresh`, get its dataset with :meth:`wait`.

    Attributes:
        id: Platform id.
        project_id: Id of the project.
        kind: ``snapshot`` or ``upload``.
        status: ``pending``, ``running``, ``cancelling`` (asked to stop, stopping), then ``succeeded``,
            ``failed`` or ``cancelled``.
        progress_rows: Rows written so far.
        dataset_id: Id of the dataset, once the job succeeded.
        error_code: Why it failed, as a code.
        error_message: Why it failed, in words.
        created_at: When the job was created (UTC).
        finished_at: When it ended (UTC), or None while it runs.
        progress_total: Rows the source is estimated to hold (catalog statistics), when it can tell.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    kind: str
    status: str
    progress_rows: int = 0
    dataset_id: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    created_at: datetime | None = None
    finished_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")
    progress_total: int | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Job:
        """Build a job object from the platform's description."""
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            kind=data["kind"],
            status=data["status"],
            progress_rows=data.get("progress_rows") or 0,
            dataset_id=data.get("dataset_id"),
            error_code=data.get("error_code"),
            error_message=data.get("error_message"),
            created_at=parse_datetime(data.get("created_at")),
            finished_at=parse_datetime(data.get("finished_at")),
            client=get_client(client),
            progress_total=data.get("progress_total"),
        )

    @property
    def client(self) -> Client:
        """The client this job came from."""
        return get_client(self._client)

    @property
    def done(self) -> bool:
        """Whether the job has ended: succeeded, failed or cancelled."""
        return self.status in ("succeeded", "failed", "cancelled")

    @classmethod
    def from_id(cls, job_id: str, client: Client | None = None) -> Job:
        """Fetch a job by id (to get back to a snapshot or upload after an interrupted wait).

        Raises:
            NotFoundError: No such job is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/jobs/{}", job_id)), client)

    def refresh(self) -> Job:
        """Fetch the job's current state (returns a new object)."""
        return Job.from_dict(self.client.get(format_path("/jobs/{}", self.id)), self.client)

    def cancel(self) -> Job:
        """Ask the platform to stop the job; returns its state at once (``cancelled``, or ``cancelling``
        while the platform stops it, within about a second). :meth:`wait` then raises
        :class:`~previsio_sdk.errors.JobCancelledError`; no dataset is kept.

        Raises:
            ConflictError: The job has already ended (code ``job_finished``).
            PermissionDeniedError: The token's role in the project is below editor.
        """
        return Job.from_dict(self.client.post(format_path("/jobs/{}/cancel", self.id)), self.client)

    def wait(self, timeout: float | None = None, progress: bool | None = None) -> Dataset:
        """Wait for the job to end and return its dataset.

        Shows the rows written so far, and leaves a summary line (``snapshot 'orders': 2,000 rows, 61.2 kB
        in 0.3 s``). Interrupted (Ctrl-C, a notebook's stop button), it prints how to get back to the job.

        Args:
            timeout: Seconds to wait at most; None waits as long as it takes.
            progress: Show progress; None shows it in a notebook or a terminal (``PREVISIO_PROGRESS=0``: not).

        Raises:
            JobFailedError: The job failed; the error carries the platform's code and reason.
            JobCancelledError: The job was cancelled.
            JobTimeoutError: ``timeout`` passed first (the job goes on).
        """
        __tracebackhide__ = True
        with Progress(self.kind, total=self.progress_total, enabled=progress_wanted(progress)) as bar:
            job = self.client.wait_job(self.id, timeout=timeout, bar=bar)
            dataset = Dataset.from_id(job["dataset_id"], self.client)
            bar.description = f"{self.kind} {dataset.name!r}"
            bar.close(f"{dataset.num_rows:,} rows, {human_bytes(dataset.size_bytes)}")
        return dataset
