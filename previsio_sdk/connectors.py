"""Connectors: the address and credentials of a remote system.

Credentials are sent once, when the connector is created or updated, and stay on the platform, encrypted;
a connector object only knows whether a password is set (``has_password``).
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import attrs

from . import _display
from ._default import get_client
from ._resource import PrevisionIds, parse_datetime
from .client import Client, format_path


class GCloud(str, enum.Enum):
    """Google Cloud services as previsionio names them (``gCloud=`` of datasources, ``g_cloud=`` of exporters)

    Only Cloud Storage is supported; BigQuery is refused with a clear error.
    """

    big_query = "BigQuery"
    """Google BigQuery (not supported here)."""
    storage = "Storage"
    """Google Cloud Storage: buckets and objects, through a GCP connector."""

    def __str__(self) -> str:
        return self.value


@attrs.define(frozen=True)
class ConnectorTestResult:
    """Outcome of :meth:`Connector.test`: truthy when the connection works.

    Attributes:
        ok: Whether the platform could connect.
        message: The driver's reason on failure (secrets removed), a short confirmation on success.
        code: Error code on failure, such as ``authentication_failed`` or ``connection_failed``.
    """

    ok: bool
    message: str = ""
    code: str | None = None

    def __bool__(self) -> bool:
        return self.ok


@attrs.define(eq=False)
class Connector(PrevisionIds, metaclass=_display.Documented):
    """A connector of a project (base class; :meth:`from_dict` returns the subclass of its type).

    Attributes:
        id: Platform id.
        project_id: Id of the project owning it.
        name: Name, unique among the project's connectors.
        type: Connector type, such as ``sql``.
        host: Host name of the remote system.
        port: Port of the remote system.
        username: User name used to connect.
        database: Default database (for SQLite: the database file on the platform's machine).
        driver: Dialect or protocol variant, such as ``postgresql``.
        options: Type-specific settings.
        has_password: Whether a password is stored (it is never returned).
        needs_credentials: Whether it was restored or migrated without its secrets, or moved to another
            address without them (see :meth:`update`): set them with :meth:`update` before using it.
        created_at: Creation time (UTC).
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    name: str
    type: str
    host: str | None = None
    port: int | None = None
    username: str | None = None
    database: str | None = None
    driver: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    has_password: bool = False
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")
    needs_credentials: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> Connector:
        """Build the connector object of the right subclass from the platform's description."""
        target = CONNECTOR_CLASSES.get(data.get("type", ""), Connector)
        return target(
            id=data["id"],
            project_id=data["project_id"],
            name=data["name"],
            type=data["type"],
            host=data.get("host"),
            port=data.get("port"),
            username=data.get("username"),
            database=data.get("database"),
            driver=data.get("driver"),
            options=data.get("options") or {},
            has_password=bool(data.get("has_password")),
            created_at=parse_datetime(data.get("created_at")),
            client=get_client(client),
            needs_credentials=bool(data.get("needs_credentials")),
        )

    @classmethod
    def from_id(cls, connector_id: str, client: Client | None = None) -> Connector:
        """Fetch a connector by id.

        Raises:
            NotFoundError: No such connector is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/connectors/{}", connector_id)), client)

    @classmethod
    def list(cls, project_id: str, all: bool = True, client: Client | None = None) -> list[Connector]:
        """The connectors of a project, oldest first (``SQLConnector.list`` gives only the SQL ones).

        Args:
            project_id: Id of the project.
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
            client: Client to use; the default client when None.
        """
        client = get_client(client)
        path = format_path("/projects/{}/connectors", project_id)
        found = [Connector.from_dict(c, client) for c in client.list_items(path, all=all)]
        return [c for c in found if isinstance(c, cls)]

    @property
    def client(self) -> Client:
        """The client this connector came from."""
        return get_client(self._client)

    def test(self) -> ConnectorTestResult:
        """Ask the platform to connect with this connector.

        Returns:
            A result that is truthy on success and carries the driver's reason (secrets removed) on failure.
        """
        body = self.client.post(format_path("/connectors/{}/test", self.id))
        return ConnectorTestResult(ok=body["ok"], message=body.get("message", ""), code=body.get("code"))

    def rename(self, new_name: str) -> Connector:
        """Rename this connector; its datasources and exporters keep using it.

        Returns:
            This connector, updated.

        Raises:
            ConflictError: The project already has a connector named ``new_name``.
        """
        return self.update(name=new_name)

    def update(self, **changes: Any) -> Connector:
        """Change settings or credentials (credential rotation); datasources using it keep working.

        Args:
            **changes: Any of ``name``, ``host``, ``port``, ``username``, ``password``, ``database``,
                ``driver``, ``options`` and ``secrets`` (other secrets by name, such as ``token``). Setting
                ``password`` or ``secrets`` clears :attr:`needs_credentials`. Changing where the secrets go
                (``host``, ``port``, the ``driver``, an S3 endpoint or HTTP base URL, SFTP's pinned
                ``host_key``, FTP's ``tls``) without giving them again in the same call deletes the stored
                secrets and sets :attr:`needs_credentials`: a connector's password is never sent to a server
                it was not given for. Give ``password`` (or ``secrets``) with the new address to keep it
                working; only the secrets given then are kept.

        Returns:
            This connector, updated in place from the platform's answer.

        Raises:
            ConfigurationError: A key is not a connector setting.
            ValidationError: The platform (the type's driver) refused a value.
            ConflictError: ``name`` is taken by another connector of the project.
        """
        from .connection_map import UPDATABLE_KEYS
        from .errors import ConfigurationError

        unknown = sorted(set(changes) - UPDATABLE_KEYS)
        if unknown:
            known = sorted(UPDATABLE_KEYS)
            raise ConfigurationError(f"Unknown connector settings {unknown}; known: {known}.")
        data = self.client.patch(format_path("/connectors/{}", self.id), changes)
        fresh = Connector.from_dict(data, self.client)
        for field in attrs.fields(type(self)):
            if field.name != "_client":
                setattr(self, field.name, getattr(fresh, field.name))
        return self

    def delete(self, force: bool = False) -> None:
        """Delete this connector.

        Args:
            force: Also delete the datasources and exporters that use it (the datasets taken from them stay).

        Raises:
            ConflictError: Datasources or exporters use it and ``force`` is False; the message names them
                and ``details`` lists them (``{"datasources": [...], "exporters": [...]}``).
        """
        self.client.delete(format_path("/connectors/{}", self.id), **({"force": "true"} if force else {}))


@attrs.define(eq=False, repr=False)
class SQLConnector(Connector):
    """A connector to an SQL database: PostgreSQL, MySQL/MariaDB or SQLite (``driver``)."""

    def list_databases(self) -> list[str]:
        """Names of the databases the connector's credentials can see."""
        return self.client.get(format_path("/connectors/{}/databases", self.id))["items"]

    def list_tables(self, database: str | None = None) -> list[str]:
        """Names of the tables and views of ``database`` (the connector's default database when None).

        PostgreSQL tables outside the ``public`` schema are named ``schema.table``.
        """
        params = {"database": database} if database else {}
        return self.client.get(format_path("/connectors/{}/tables", self.id), **params)["items"]


@attrs.define(frozen=True)
class FileInfo(metaclass=_display.Documented):
    """One entry of :meth:`FileConnector.list_files`.

    Attributes:
        name: Last component of the path (for an S3 listing without a bucket: the bucket name).
        path: Path relative to the connector's root, as :meth:`Project.create_datasource` takes it.
        size: Size in bytes; None for directories, and when the server does not tell.
        modified_at: Last modification time (UTC) when the server tells.
        is_dir: Whether it is a directory (or a key prefix, or a bucket).
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    name: str
    path: str
    size: int | None = None
    modified_at: datetime | None = None
    is_dir: bool = False

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FileInfo:
        """Build a file entry from the platform's description."""
        return cls(
            name=data["name"],
            path=data["path"],
            size=data.get("size"),
            modified_at=parse_datetime(data.get("modified_at")),
            is_dir=bool(data.get("is_dir")),
        )


@attrs.define(eq=False, repr=False)
class FileConnector(Connector):
    """A connector to files: FTP, SFTP, S3-compatible object stores, a local directory, an HTTP(S) server."""

    @_display.returns_list
    def list_files(self, path: str = "", bucket: str | None = None) -> list[FileInfo]:
        """The files and directories under ``path`` (directories first), paging through long listings.

        Args:
            path: Directory relative to the connector's root, or a glob such as ``2024/*.csv``; the root when
                empty.
            bucket: Bucket to list (S3); without it an S3 connector lists its buckets (or its default bucket).

        Raises:
            ValidationError: The path leaves the connector's root (``code="unsafe_path"``), or the remote
                system cannot be reached or refuses the credentials (``code`` tells which).
        """
        params: dict[str, Any] = {"path": path}
        if bucket:
            params["bucket"] = bucket
        url = format_path("/connectors/{}/files", self.id)
        return [FileInfo.from_dict(item) for item in self.client.iter_pages(url, **params)]


#: Connector types that reach files.
FILE_CONNECTOR_TYPES = ("ftp", "sftp", "s3", "local", "http", "gcs")

#: The SDK class of each connector type; other types are plain :class:`Connector` objects.
CONNECTOR_CLASSES: dict[str, type[Connector]] = {
    "sql": SQLConnector,
    **dict.fromkeys(FILE_CONNECTOR_TYPES, FileConnector),
}
