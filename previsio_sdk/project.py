"""Projects: the unit of scoping, and the entry point to connectors, datasources and datasets."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlsplit

import attrs

from ._default import get_client
from ._resource import ident, parse_datetime
from .client import Client, format_path
from .connectors import Connector, FileConnector, SQLConnector
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

    # -- the project itself ----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Project:
        """Build a project object from the platform's description."""
        return cls(
            id=data["id"],
            name=data["name"],
            description=data.get("description"),
            created_at=parse_datetime(data.get("created_at")),
            client=get_client(client),
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

    # -- connectors ------------------------------------------------------------------------------------------
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
        connector = self._create_connector(
            {
                "name": name,
                "type": "sql",
                "driver": driver,
                "host": host,
                "port": port,
                "username": username or None,
                "password": password or None,
                "database": database,
            }
        )
        assert isinstance(connector, SQLConnector)
        return connector

    def _create_file_connector(self, body: dict[str, Any]) -> FileConnector:
        connector = self._create_connector(body)
        assert isinstance(connector, FileConnector)
        return connector

    def create_ftp_connector(
        self,
        name: str,
        host: str,
        port: int | None = None,
        username: str = "",
        password: str = "",
        root: str | None = None,
        tls: bool = False,
    ) -> FileConnector:
        """Create a connector to an FTP server.

        Args:
            name: Connector name, unique in the project.
            host: Host name, ``host:port`` or ``ftp://host`` (``ftps://host`` turns TLS on).
            port: Port; 21 when None.
            username: User name; anonymous login when empty.
            password: Password; stored encrypted by the platform, never returned.
            root: Directory datasource paths are relative to; the login directory when None.
            tls: Use explicit FTPS (``AUTH TLS``).

        Returns:
            The new connector (nothing is contacted yet: call :meth:`~Connector.test`).

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting.
        """
        options: dict[str, Any] = {"root": root} if root else {}
        if tls:
            options["tls"] = True
        return self._create_file_connector(
            {
                "name": name,
                "type": "ftp",
                "host": host,
                "port": port,
                "username": username or None,
                "password": password or None,
                "options": options,
            }
        )

    def create_sftp_connector(
        self,
        name: str,
        host: str,
        port: int | None = None,
        username: str = "",
        password: str | None = None,
        private_key: str | os.PathLike[str] | None = None,
        passphrase: str | None = None,
        root: str | None = None,
        host_key: str | None = None,
    ) -> FileConnector:
        """Create a connector to an SFTP server, with a password or a private key.

        Args:
            name: Connector name, unique in the project.
            host: Host name, ``host:port`` or ``sftp://host``.
            port: Port; 22 when None.
            username: User name.
            password: Password; stored encrypted by the platform, never returned.
            private_key: Private key (OpenSSH or PEM text, or the path of a local key file), used instead
                of or with the password; stored encrypted.
            passphrase: Passphrase of an encrypted private key.
            root: Directory datasource paths are relative to; the login directory when None.
            host_key: The server's public host key (``ssh-ed25519 AAAA...``); when given, a server presenting
                another key is refused before any credential is sent.

        Raises:
            ConfigurationError: Neither a password nor a private key was given, or the key file is unreadable.
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting (an unparsable key, for instance).
        """
        key_text = _read_private_key(private_key)
        if not password and not key_text:
            raise ConfigurationError("An SFTP connector needs password= or private_key=.")
        secrets = {k: v for k, v in (("private_key", key_text), ("passphrase", passphrase)) if v}
        options = {k: v for k, v in (("root", root), ("host_key", host_key)) if v}
        return self._create_file_connector(
            {
                "name": name,
                "type": "sftp",
                "host": host,
                "port": port,
                "username": username or None,
                "password": password or None,
                "secrets": secrets,
                "options": options,
            }
        )

    def create_s3_connector(
        self,
        name: str,
        username: str | None = None,
        password: str | None = None,
        host: str | None = None,
        region: str | None = None,
        port: int | None = None,
        bucket: str | None = None,
    ) -> FileConnector:
        """Create a connector to Amazon S3 or an S3-compatible object store.

        Args:
            name: Connector name, unique in the project.
            username: Access key id; anonymous requests when None.
            password: Secret access key; stored encrypted by the platform, never returned.
            host: Endpoint URL of an S3-compatible store (``http://minio.local:9000``); AWS when None.
            region: Region name, such as ``eu-west-3``.
            port: Port of the endpoint, when not in ``host``.
            bucket: Default bucket of datasources and listings that name none.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting.
        """
        options = {k: v for k, v in (("region", region), ("bucket", bucket)) if v}
        return self._create_file_connector(
            {
                "name": name,
                "type": "s3",
                "host": host,
                "port": port,
                "username": username or None,
                "password": password or None,
                "options": options,
            }
        )

    def create_local_connector(self, name: str, root: str | os.PathLike[str]) -> FileConnector:
        """Create a connector to a directory of the platform's own machine.

        The platform's operator decides which directories may be used (``PREVISIO_LOCAL_ROOTS``); paths never
        leave ``root``, not even through symbolic links.

        Args:
            name: Connector name, unique in the project.
            root: Absolute path of the directory on the platform's machine (a relative path is made absolute
                when the platform is the local one).

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform does not allow this directory (``code="root_not_allowed"``).
        """
        root = os.fspath(root)
        if self.client.is_local and not os.path.isabs(root):
            root = os.path.abspath(root)
        return self._create_file_connector({"name": name, "type": "local", "options": {"root": root}})

    def create_http_connector(
        self,
        name: str,
        host: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
    ) -> FileConnector:
        """Create a connector to files served over HTTP(S).

        Args:
            name: Connector name, unique in the project.
            host: Base URL, such as ``https://files.example.com/exports``; datasource paths are appended.
            username: User name for basic authentication.
            password: Password for basic authentication; stored encrypted.
            token: Bearer token sent as ``Authorization: Bearer ...``; stored encrypted.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting.
        """
        return self._create_file_connector(
            {
                "name": name,
                "type": "http",
                "host": host,
                "username": username or None,
                "password": password or None,
                "secrets": {"token": token} if token else {},
            }
        )

    def list_connectors(self) -> list[Connector]:
        """The project's connectors, oldest first."""
        path = format_path("/projects/{}/connectors", self.id)
        return [Connector.from_dict(c, self.client) for c in self.client.iter_pages(path)]

    # -- datasources -----------------------------------------------------------------------------------------
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
        format: str | None = None,
        options: dict[str, Any] | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        header: bool | None = None,
        decimal: str | None = None,
    ) -> DataSource:
        """Create a datasource: one resource behind a connector.

        For an SQL connector give ``table`` (and optionally ``database``) or ``request`` (a read-only query).
        For a file connector give ``path`` (and ``bucket`` for S3): a file, or a glob such as ``2024/*.csv``
        whose files are read, sorted by name, as one dataset. The format comes from the extension (``.csv``,
        ``.tsv``, ``.parquet``, ``.jsonl``, ``.csv.gz``, ``.zip``...) or from ``format``; what the CSV options
        leave unsaid is detected from the start of the file.

        Args:
            connector: The connector (or its id) to read through.
            name: Datasource name, unique in the project.
            path: File path (file connectors).
            database: Database of the table (SQL); the connector's default when None.
            table: Table name (SQL); ``schema.table`` on PostgreSQL.
            bucket: Bucket (object stores).
            request: SQL query, run read-only (SQL).
            check: Look the source up on the remote system now, so a mistyped table fails here.
            format: File format: ``csv``, ``tsv``, ``parquet``, ``jsonl``, ``csv.gz``, ``zip``...
            options: Other reading options of files: ``quotechar``, ``null_values``, ``column_names``,
                ``column_types`` (``{"zip": "string"}``), ``skip_rows``, ``block_size``, ``member`` (of a
                zip), ``compression``.
            delimiter: CSV field delimiter (``","``, ``";"``, ``"\t"``...).
            encoding: Text encoding of a CSV file (``utf-8``, ``latin-1``, ``cp1252``...).
            header: Whether the first CSV line holds the column names.
            decimal: Decimal mark of CSV numbers: ``"."`` or ``","``.

        Raises:
            ValidationError: The definition does not fit the connector, or (``check``) the source does not
                exist or cannot be reached; ``code`` tells which (``source_not_found``,
                ``connection_failed``...).
            ConflictError: The project already has a datasource of that name.
        """
        reading = dict(options or {})
        for key, value in (
            ("format", format),
            ("delimiter", delimiter),
            ("encoding", encoding),
            ("header", header),
            ("decimal", decimal),
        ):
            if value is not None:
                reading[key] = value
        body = {
            "name": name,
            "connector_id": ident(connector),
            "path": path,
            "database": database,
            "table": table,
            "bucket": bucket,
            "request": request,
            "check": check,
        }
        if reading:
            body["options"] = reading
        data = self.client.post(format_path("/projects/{}/datasources", self.id), body)
        return DataSource.from_dict(data, self.client)

    def list_datasource(self) -> list[DataSource]:
        """The project's datasources, oldest first (the Prevision name; see :meth:`list_datasources`)."""
        path = format_path("/projects/{}/datasources", self.id)
        return [DataSource.from_dict(d, self.client) for d in self.client.iter_pages(path)]

    def list_datasources(self) -> list[DataSource]:
        """The project's datasources, oldest first (same as :meth:`list_datasource`)."""
        return self.list_datasource()

    # -- datasets --------------------------------------------------------------------------------------------
    @overload
    def create_dataset(
        self,
        name: str,
        datasource: DataSource | str | None = ...,
        file_name: str | os.PathLike[str] | None = ...,
        dataframe: pd.DataFrame | None = ...,
        *,
        wait: Literal[True] = ...,
        timeout: float | None = ...,
        progress: bool | None = ...,
    ) -> Dataset: ...

    @overload
    def create_dataset(
        self,
        name: str,
        datasource: DataSource | str | None = ...,
        file_name: str | os.PathLike[str] | None = ...,
        dataframe: pd.DataFrame | None = ...,
        *,
        wait: Literal[False],
        timeout: float | None = ...,
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
            job = Job.from_dict(
                self.client.post(format_path("/projects/{}/datasets", self.id), body), self.client
            )
        elif file_name is not None:
            path = Path(file_name)
            fmt = _UPLOAD_FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise ConfigurationError(
                    f"Cannot tell the format of {str(path)!r}: use a .csv or .parquet file."
                )
            job = self._upload(name, path, fmt, path.name)
        else:
            job = self._upload_dataframe(name, dataframe)
        if not wait:
            return job
        return job.wait(timeout=timeout, progress=progress)

    def _upload(self, name: str, path: Path, fmt: str, original_name: str) -> Job:
        with open(path, "rb") as fh:
            resp = self.client.request(
                "POST",
                format_path("/projects/{}/datasets/upload", self.id),
                params={"name": name, "format": fmt, "file_name": original_name},
                data=fh,
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


def _read_private_key(private_key: str | os.PathLike[str] | None) -> str | None:
    """The text of a private key given as text or as the path of a key file."""
    if private_key is None or private_key == "":
        return None
    if isinstance(private_key, str) and ("PRIVATE KEY" in private_key or "\n" in private_key):
        return private_key
    try:
        return Path(private_key).expanduser().read_text()
    except OSError as exc:
        where = os.fspath(private_key)
        raise ConfigurationError(f"Cannot read the private key file {where!r}: {exc}") from None
