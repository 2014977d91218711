"""Projects: the unit of scoping, and the entry point to connectors, datasources and datasets."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit
from typing import TYPE_CHECKING, Any, overload

import attrs

from ._default import get_client
from ._resource import ident, parse_datetime
from .client import Client, format_path
from .connectors import Connector, SQLConnector
from .datasets import Dataset, Job
from .datasources import DataSource
from .errors import ConfigurationError

if TYPE_CHECKING:
    from typing import Literal

    import pandas as pd

#: Drivers inferred from a well-known port when ``driver`` is not given.
WELL_KNOWN_PORTS = {5432: "postgresql", 3306: "mysql"}
SQL_DRIVERS = ("postgresql", "mysql", "sqlite")
_UPLOAD_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def _port_in_host(host: str) -> int | None:
    """The port written in ``db:5432`` or ``https://db:5432``, if any."""
    parsed = urlsplit(host if "://" in host else f"//{host}")
    try:
        return parsed.port
    except ValueError:
        return None


@attrs.define(eq=False)
class Project:
    """A project: owns connectors, datasources and datasets.

    Attributes:
        id: Platform id.
        name: Name, unique among your projects.
        description: Free text.
        created_at: Creation time (UTC).
    """

    id: str
    name: str
    description: str | None = None
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    # -- the project itself -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Project:
        """Build a project object from the platform's description."""
        return cls(
            id=data["id"], name=data["name"], description=data.get("description"),
            created_at=parse_datetime(data.get("created_at")), client=get_client(client),
        )

    @classmethod
    def new(cls, name: str, description: str | None = None, client: Client | None = None) -> Project:
        """Create a project.

        Args:
            name: Name, unique among your projects.
            description: Free text.
            client: Client to use; the default client when None.

        Raises:
            ConflictError: You already have a project of that name.
            ValidationError: The name is empty or too long.
        """
        client = get_client(client)
        return cls.from_dict(client.post("/projects", {"name": name, "description": description}), client)

    @classmethod
    def from_id(cls, project_id: str, client: Client | None = None) -> Project:
        """Fetch a project by id.

        Raises:
            NotFoundError: No such project is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/projects/{}", project_id)), client)

    @classmethod
    def list(cls, client: Client | None = None) -> list[Project]:
        """Every project visible to this token, oldest first."""
        client = get_client(client)
        return [cls.from_dict(p, client) for p in client.iter_pages("/projects")]

    @property
    def client(self) -> Client:
        """The client this project came from."""
        return get_client(self._client)

    def delete(self) -> None:
        """Delete the project with its connectors, datasources and datasets (their files included)."""
        self.client.delete(format_path("/projects/{}", self.id))

    # -- connectors -------------------------------------------------------------------------------------------
    def _create_connector(self, body: dict[str, Any]) -> Connector:
        data = self.client.post(format_path("/projects/{}/connectors", self.id), body)
        return Connector.from_dict(data, self.client)

    def create_sql_connector(
        self,
        name: str,
        host: str | None = None,
        port: int | None = None,
        username: str = "",
        password: str = "",
        driver: str | None = None,
        database: str | None = None,
    ) -> SQLConnector:
        """Create a connector to an SQL database.

        Args:
            name: Connector name, unique in the project.
            host: Host name, or a URL such as ``https://db.example.com`` (its host and port are used).
            port: Port; with no ``driver``, 5432 means PostgreSQL and 3306 MySQL.
            username: User name.
            password: Password; stored encrypted by the platform, never returned.
            driver: ``postgresql``, ``mysql`` (also for MariaDB) or ``sqlite``.
            database: Default database; for SQLite, the path of the database file on the platform's machine
                (a relative path is made absolute when the platform is the local one).

        Returns:
            The new connector; nothing is contacted yet (call :meth:`~Connector.test`).

        Raises:
            ConfigurationError: ``driver`` is missing and cannot be inferred from ``port``.
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting.
        """
        if driver is None:
            if port is None and host:
                port = _port_in_host(host)
            driver = WELL_KNOWN_PORTS.get(port or 0)
            if driver is None:
                raise ConfigurationError(
                    f"Cannot tell which database is at port {port!r}: pass driver= one of "
                    f"{', '.join(repr(d) for d in SQL_DRIVERS)}."
                )
        if driver == "sqlite" and database and self.client.is_local and not os.path.isabs(database):
            database = os.path.abspath(database)
        connector = self._create_connector({
            "name": name, "type": "sql", "driver": driver, "host": host, "port": port,
            "username": username or None, "password": password or None, "database": database,
        })
        assert isinstance(connector, SQLConnector)
        return connector

    def list_connectors(self) -> list[Connector]:
        """The project's connectors, oldest first."""
        path = format_path("/projects/{}/connectors", self.id)
        return [Connector.from_dict(c, self.client) for c in self.client.iter_pages(path)]

    # -- datasources ------------------------------------------------------------------------------------------
    def create_datasource(
        self,
        connector: Connector | str,
        name: str,
        path: str | None = None,
        database: str | None = None,
        table: str | None = None,
        bucket: str | None = None,
        request: str | None = None,
        check: bool = True,
    ) -> DataSource:
        """Create a datasource: one resource behind a connector.

        For an SQL connector give ``table`` (and optionally ``database``) or ``request`` (a read-only query).

        Args:
            connector: The connector (or its id) to read through.
            name: Datasource name, unique in the project.
            path: File path (file connectors).
            database: Database of the table (SQL); the connector's default when None.
            table: Table name (SQL); ``schema.table`` on PostgreSQL.
            bucket: Bucket (object stores).
            request: SQL query, run read-only (SQL).
            check: Look the source up on the remote system now, so a mistyped table fails here.

        Raises:
            ValidationError: The definition does not fit the connector, or (``check``) the source does not exist
                or cannot be reached; ``code`` tells which (``source_not_found``, ``connection_failed``...).
            ConflictError: The project already has a datasource of that name.
        """
        body = {
            "name": name, "connector_id": ident(connector), "path": path, "database": database, "table": table,
            "bucket": bucket, "request": request, "check": check,
        }
        data = self.client.post(format_path("/projects/{}/datasources", self.id), body)
        return DataSource.from_dict(data, self.client)

    def list_datasource(self) -> list[DataSource]:
        """The project's datasources, oldest first (the Prevision name; see :meth:`list_datasources`)."""
        path = format_path("/projects/{}/datasources", self.id)
        return [DataSource.from_dict(d, self.client) for d in self.client.iter_pages(path)]

    def list_datasources(self) -> list[DataSource]:
        """The project's datasources, oldest first (same as :meth:`list_datasource`)."""
        return self.list_datasource()

    # -- datasets ---------------------------------------------------------------------------------------------
    @overload
    def create_dataset(
        self, name: str, datasource: DataSource | str | None = ..., file_name: str | os.PathLike[str] | None = ...,
        dataframe: pd.DataFrame | None = ..., *, wait: Literal[True] = ..., timeout: float | None = ...,
        progress: bool | None = ...,
    ) -> Dataset: ...

    @overload
    def create_dataset(
        self, name: str, datasource: DataSource | str | None = ..., file_name: str | os.PathLike[str] | None = ...,
        dataframe: pd.DataFrame | None = ..., *, wait: Literal[False], timeout: float | None = ...,
        progress: bool | None = ...,
    ) -> Job: ...

    def create_dataset(
        self,
        name: str,
        datasource: DataSource | str | None = None,
        file_name: str | os.PathLike[str] | None = None,
        dataframe: pd.DataFrame | None = None,
        *,
        wait: bool = True,
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> Dataset | Job:
        """Create a dataset: a snapshot of a datasource, or an upload of a file or a DataFrame.

        Give exactly one of ``datasource``, ``file_name`` or ``dataframe``.

        Args:
            name: Dataset name, unique in the project.
            datasource: Datasource (or its id) to snapshot; the platform streams it into a Parquet file.
            file_name: Local CSV or Parquet file to upload (by extension: ``.csv``, ``.parquet``).
            dataframe: pandas DataFrame to upload (its index is not kept).
            wait: Wait for the job and return the dataset; False returns the :class:`Job` at once.
            timeout: Seconds to wait at most (with ``wait``).
            progress: Show a progress bar (rows so far); None shows one in a terminal or a notebook.

        Returns:
            The complete :class:`Dataset` (``wait=True``) or the running :class:`Job`.

        Raises:
            ConfigurationError: Not exactly one source was given, or the file's format is unknown.
            ConflictError: The project already has a dataset (or a snapshot in progress) of that name.
            JobFailedError: The snapshot failed; ``code`` and ``message`` say why, and no dataset was kept.
            JobTimeoutError: ``timeout`` passed first.
        """
        given = [x is not None for x in (datasource, file_name, dataframe)]
        if sum(given) != 1:
            raise ConfigurationError("Give exactly one of datasource=, file_name= or dataframe=.")
        if datasource is not None:
            body = {"name": name, "datasource_id": ident(datasource)}
            job = Job.from_dict(self.client.post(format_path("/projects/{}/datasets", self.id), body), self.client)
        elif file_name is not None:
            path = Path(file_name)
            fmt = _UPLOAD_FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise ConfigurationError(f"Cannot tell the format of {str(path)!r}: use a .csv or .parquet file.")
            job = self._upload(name, path, fmt, path.name)
        else:
            job = self._upload_dataframe(name, dataframe)
        if not wait:
            return job
        return job.wait(timeout=timeout, progress=progress)

    def _upload(self, name: str, path: Path, fmt: str, original_name: str) -> Job:
        with open(path, "rb") as fh:
            resp = self.client.request(
                "POST", format_path("/projects/{}/datasets/upload", self.id),
                params={"name": name, "format": fmt, "file_name": original_name}, data=fh,
                headers={"Content-Type": "application/octet-stream"},
            )
        return Job.from_dict(resp.json(), self.client)

    def _upload_dataframe(self, name: str, dataframe: pd.DataFrame) -> Job:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(dataframe, preserve_index=False)
        with tempfile.TemporaryDirectory(prefix="previsio-") as tmp:
            path = Path(tmp) / "dataframe.parquet"
            pq.write_table(table, path)
            return self._upload(name, path, "parquet", "dataframe.parquet")

    def list_datasets(self) -> list[Dataset]:
        """The project's complete datasets, oldest first (snapshots in progress are not listed)."""
        path = format_path("/projects/{}/datasets", self.id)
        return [Dataset.from_dict(d, self.client) for d in self.client.iter_pages(path)]
