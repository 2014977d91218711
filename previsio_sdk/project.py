"""Projects: the unit of scoping, and the entry point to connectors, datasources and datasets."""

from __future__ import annotations

import difflib
import enum
import functools
import os
import sys
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, overload
from urllib.parse import urlsplit

import attrs

from . import _display
from ._default import get_client
from ._existing import existing_or_raise
from ._progress import CountingReader, Progress
from ._progress import wanted as progress_wanted
from ._resource import PrevisionIds, ident, parse_datetime
from .client import Client, format_path, new_idempotency_key
from .connectors import Connector, FileConnector, GCloud, SQLConnector
from .datasets import Dataset, Job
from .datasources import DataSource
from .errors import ConfigurationError, ConflictError, NotFoundError, PrevisioError
from .exporters import Exporter, ExporterWriteMode, as_write_mode
from .users import Member, Role, User

if TYPE_CHECKING:
    from typing import Literal

    import pandas as pd

    from .connection_map import ConnectorMap

#: Drivers inferred from a well-known port when ``driver`` is not given.
WELL_KNOWN_PORTS = {5432: "postgresql", 3306: "mysql"}
SQL_DRIVERS = ("postgresql", "mysql", "sqlite")
_UPLOAD_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
#: The ``origin=`` values previsionio accepts for a dataset (pipelines' outputs); checked, not stored.
DATASET_ORIGINS = ("pipeline_output", "pipeline_intermediate_file")


class ProjectColor(str, enum.Enum):
    """Colours of a project as Prevision.io names them (``Project.new(name, color=pio.ProjectColor.blue)``)"""

    greenLighter = "#16D92C"
    green = "#29CC3C"
    greenDarker = "#47B354"
    greenDarkest = "#5C9963"
    purpleLighter = "#8E00E6"
    purple = "#8D29CC"
    purpleDarker = "#8947B3"
    purpleDarkest = "#825C99"
    blueLighter = "#0099E6"
    blue = "#2996CC"
    blueDarker = "#478FB3"
    blueDarkest = "#5C8599"
    yellowLighter = "#E6E600"
    yellow = "#CCCC29"
    yellowDarker = "#B3B347"
    yellowDarkest = "#99995C"

    def __str__(self) -> str:
        return self.value


def _as_color(value: ProjectColor | str | None) -> ProjectColor | str | None:
    """A colour as its enum member when it is one of :class:`ProjectColor`, else the ``#RRGGBB`` text."""
    if value is None or isinstance(value, ProjectColor):
        return value
    try:
        return ProjectColor(value)
    except ValueError:
        return value


def _port_in_host(host: str) -> int | None:
    """The port written in ``db:5432`` or ``https://db:5432``, if any."""
    parsed = urlsplit(host if "://" in host else f"//{host}")
    try:
        return parsed.port
    except ValueError:
        return None


def _check_g_cloud(value: GCloud | str | None) -> None:
    """Accept previsionio's ``gCloud``/``g_cloud`` for Cloud Storage; refuse BigQuery before any request."""
    if value is None:
        return
    try:
        service = GCloud(getattr(value, "value", value))
    except ValueError:
        raise ConfigurationError(f"Unknown Google Cloud service {value!r}; use pio.GCloud.storage.") from None
    if service is GCloud.big_query:
        raise ConfigurationError(
            "BigQuery is not supported: use a GCP connector with Cloud Storage (bucket= and path=)."
        )


@attrs.define(eq=False)
class Project(PrevisionIds, metaclass=_display.Documented):
    """A project: owns connectors, datasources and datasets.

    Attributes:
        id: Platform id.
        name: Name, unique among your projects.
        description: Free text.
        created_at: Creation time (UTC).
        color: Colour (a :class:`ProjectColor`, or ``#RRGGBB``), when one was chosen.
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    name: str
    description: str | None = None
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")
    color: ProjectColor | str | None = None

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
            color=_as_color(data.get("color")),
        )

    @classmethod
    def new(
        cls,
        name: str,
        description: str | None = None,
        color: ProjectColor | str | None = None,
        client: Client | None = None,
        *,
        exist_ok: bool = False,
    ) -> Project:
        """Create a project.

        Args:
            name: Name, unique among your projects.
            description: Free text.
            color: Colour shown for the project: a :class:`ProjectColor`, or ``#RRGGBB``.
            client: Client to use; the default client when None.
            exist_ok: When you already have a project of that name (and, if ``description`` is given, that
                description), return it (a re-run cell) instead of raising :class:`ConflictError`.

        Raises:
            ConflictError: You already have a project of that name (with ``exist_ok``: with another
                description, which the message names).
            ValidationError: The name is empty or too long, or the colour is not ``#RRGGBB``.
        """
        client = get_client(client)
        body: dict[str, Any] = {"name": name, "description": description}
        if color is not None:
            body["color"] = str(getattr(color, "value", color))
        try:
            return cls.from_dict(client.post("/projects", body), client)
        except ConflictError as exc:
            if not exist_ok:
                raise
            build = functools.partial(cls.from_dict, client=client)
            return existing_or_raise(client, "/projects", "Project", body, ("description",), build, exc)

    @classmethod
    def from_name(cls, name: str, client: Client | None = None) -> Project:
        """Your project named ``name``.

        Raises:
            NotFoundError: You have no project of that name (the message suggests close names).
        """
        client = get_client(client)
        names = []
        for data in client.iter_pages("/projects"):
            if data["name"] == name:
                return cls.from_dict(data, client)
            names.append(data["name"])
        close = difflib.get_close_matches(name, names, n=3)
        hint = f" Did you mean {', '.join(repr(n) for n in close)}?" if close else ""
        raise NotFoundError(f"You have no project named {name!r}.{hint}", status=404, code="not_found")

    @classmethod
    def from_id(cls, project_id: str, client: Client | None = None) -> Project:
        """Fetch a project by id.

        Raises:
            NotFoundError: No such project is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/projects/{}", project_id)), client)

    @classmethod
    @_display.returns_list
    def list(cls, all: bool = True, client: Client | None = None) -> list[Project]:
        """Every project visible to this token, oldest first.

        Args:
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
            client: Client to use; the default client when None.
        """
        if isinstance(all, Client):  # list(client), the positional form before ``all=`` existed
            all, client = True, all
        client = get_client(client)
        return [cls.from_dict(p, client) for p in client.list_items("/projects", all=all)]

    def info(self) -> dict[str, Any]:
        """The project described as previsionio's ``project.info()``: a dict of its fields and members.

        Returns:
            ``_id``, ``name``, ``description``, ``color``, ``created_by`` (the id of the first owner),
            ``admins``, ``contributors`` and ``viewers`` (user names by role: owner, editor, viewer),
            ``pipelines_count`` and ``experiments_count`` (0: there are none here), ``dataset_count`` and
            ``users`` (as :meth:`users` gives them).
        """
        users = self.users()
        by_role: dict[str, list[str]] = {"owner": [], "editor": [], "viewer": []}
        for user in users:
            by_role.setdefault(user["role"], []).append(user["name"])
        owners = [u["_id"] for u in users if u["role"] == "owner"]
        datasets = self.client.get(format_path("/projects/{}/datasets", self.id), page=1, page_size=1)
        return {
            "_id": self.id,
            "name": self.name,
            "description": self.description,
            "color": self.color,
            "created_by": owners[0] if owners else None,
            "admins": by_role["owner"],
            "contributors": by_role["editor"],
            "viewers": by_role["viewer"],
            "pipelines_count": 0,
            "experiments_count": 0,
            "dataset_count": datasets["total"],
            "users": users,
        }

    def users(self) -> list[dict[str, Any]]:
        """The project's members as previsionio lists them: dicts of ``_id``, ``name`` and ``role``."""
        return [{"_id": m.user_id, "name": m.user_name, "role": m.role} for m in self.list_members()]

    @property
    def client(self) -> Client:
        """The client this project came from."""
        return get_client(self._client)

    def delete(self) -> None:
        """Delete the project with its connectors, datasources and datasets (their files included)."""
        self.client.delete(format_path("/projects/{}", self.id))

    # -- backup, restore, migration --------------------------------------------------------------------------
    def backup(
        self, path: str | os.PathLike[str], include_secrets: bool = False, passphrase: str | None = None
    ) -> Path:
        """Write the whole project to one archive: connectors, datasources, exporters and datasets' data.

        The archive format is documented and versioned (:doc:`/guides/moving_projects`); dataset files are
        streamed into it, so memory does not grow with their size.

        Args:
            path: Archive file to write (replaced atomically if it exists).
            include_secrets: Also store the connectors' secrets, encrypted with ``passphrase`` (project
                owners only).
            passphrase: Passphrase (8 characters or more) the secrets are encrypted with.

        Returns:
            The path of the archive.

        Raises:
            ConfigurationError: ``include_secrets`` without a passphrase.
        """
        from .backup import backup_project

        return backup_project(self, path, include_secrets=include_secrets, passphrase=passphrase)

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        name: str | None = None,
        client: Client | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
        passphrase: str | None = None,
    ) -> Project:
        """Recreate a project from a backup archive, on any platform.

        The archive is checked whole (format, version, every file's size and checksum) before anything is
        created. What exists already in the target project, by name, is kept: a restore retried after a
        failure completes it without duplicates.

        Args:
            path: The archive written by :meth:`backup`.
            name: Name of the project to restore into (created when missing); the archived name when None.
            client: Client of the target platform; the default client when None.
            secrets: Secrets by connector name, such as ``{"warehouse": {"password": "..."}}``.
            passphrase: Decrypts the secrets stored with ``include_secrets=True``.

        Returns:
            The restored project. Connectors whose secrets were neither stored nor given have
            ``needs_credentials`` set: give them with :meth:`Connector.update`.

        Raises:
            ArchiveError: The archive is not one, of a newer version, truncated or corrupt.
            ConfigurationError: The passphrase does not decrypt the stored secrets.
        """
        from .backup import restore_project

        return restore_project(path, name=name, client=client, secrets=secrets, passphrase=passphrase)

    def migrate(
        self,
        to: Client | Project,
        datasets: Iterable[Dataset | str] | None = None,
        name: str | None = None,
        secrets: Mapping[str, Mapping[str, str]] | None = None,
    ) -> Project:
        """Copy this project, or some of its datasets with their lineage, to another platform.

        Connectors go without their secrets (marked as needing credentials unless ``secrets`` gives them);
        dataset files stream from platform to platform through a temporary file, never as a DataFrame.
        Resources are looked up by name on the other side first: a retried migration duplicates nothing.

        Args:
            to: Client of the other platform (the project is found or created there by name), or a project.
            datasets: Datasets (objects or names) to copy with their datasources and connectors; all of the
                project (with its exporters) when None.
            name: Name of the project on the other platform; this project's name when None.
            secrets: Secrets by connector name, such as ``{"warehouse": {"password": "..."}}``.

        Returns:
            The project on the other platform.

        Raises:
            ConfigurationError: A dataset named is not in this project.
        """
        from .migration import migrate_project

        return migrate_project(self, to, datasets=datasets, name=name, secrets=secrets)

    # -- members ---------------------------------------------------------------------------------------------
    def add_member(self, user: User | str, role: Role = "viewer") -> Member:
        """Give a user a role in this project, or change a member's role (owners only).

        Args:
            user: The user, its name or its id.
            role: ``viewer`` (lists and reads), ``editor`` (also creates, changes and deletes connectors,
                datasources and datasets, and uses the connectors' credentials) or ``owner`` (also manages the
                members, renames and deletes the project).

        Raises:
            PermissionDeniedError: You are not an owner of the project.
            NotFoundError: No such user.
            ConflictError: The change would leave the project without an owner.
        """
        body = {"user": user if isinstance(user, str) else user.id, "role": role}
        return Member.from_dict(self.client.post(format_path("/projects/{}/members", self.id), body))

    @_display.returns_list
    def list_members(self) -> list[Member]:
        """The project's members and their roles."""
        path = format_path("/projects/{}/members", self.id)
        return [Member.from_dict(m) for m in self.client.iter_pages(path)]

    def remove_member(self, user: User | str) -> None:
        """Remove a member (owners remove anyone; a member may remove itself).

        Raises:
            ConflictError: The member is the project's last owner.
        """
        ref = user if isinstance(user, str) else user.id
        self.client.delete(format_path("/projects/{}/members/{}", self.id, ref))

    # -- connectors ------------------------------------------------------------------------------------------
    def _create_connector(self, body: dict[str, Any], exist_ok: bool = False) -> Connector:
        path = format_path("/projects/{}/connectors", self.id)
        try:
            data = self.client.post(path, body)
        except ConflictError as exc:
            if not exist_ok:
                raise
            keys = ("type", "driver", "host", "port", "username", "password", "database", "options")
            build = functools.partial(Connector.from_dict, client=self.client)
            return existing_or_raise(self.client, path, "Connector", body, keys, build, exc)
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
        *,
        exist_ok: bool = False,
    ) -> SQLConnector:
        """Create a connector to an SQL database.

        Args:
            name: Connector name, unique in the project.
            host: Host name, or a URL such as ``https://db.example.com`` (its host and port are used).
            port: Port; with no ``driver``, 5432 means PostgreSQL and 3306 MySQL, and on any other port the
                platform asks the server (by the first bytes of each protocol's handshake) which it is.
            username: User name.
            password: Password; stored encrypted by the platform, never returned.
            driver: ``postgresql``, ``mysql`` (also for MariaDB) or ``sqlite``; overrides the detection.
            database: Default database; for SQLite, the path of the database file on the platform's machine
                (a relative path is made absolute when the platform is the local one).
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

        Returns:
            The new connector; nothing is contacted yet (call :meth:`~Connector.test`), unless the driver had
            to be detected.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting, or (no ``driver``, an unusual port) no
                PostgreSQL or MySQL/MariaDB server answered there (the message asks for ``driver=``).
        """
        if driver is None:
            if port is None and host:
                port = _port_in_host(host)
            # Another port: the platform finds out which server answers there.
            driver = WELL_KNOWN_PORTS.get(port or 0)
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
            },
            exist_ok,
        )
        assert isinstance(connector, SQLConnector)
        return connector

    def _create_file_connector(self, body: dict[str, Any], exist_ok: bool = False) -> FileConnector:
        connector = self._create_connector(body, exist_ok)
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
        *,
        exist_ok: bool = False,
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
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

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
            },
            exist_ok,
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
        *,
        exist_ok: bool = False,
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
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

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
            },
            exist_ok,
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
        *,
        exist_ok: bool = False,
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
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

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
            },
            exist_ok,
        )

    def create_gcp_connector(
        self,
        name: str,
        googleCredentials: Mapping[str, Any] | str | None = None,  # noqa: N803 - previsionio's keyword
        host: str | None = None,
        project: str | None = None,
        bucket: str | None = None,
    ) -> FileConnector:
        """Create a connector to Google Cloud Storage (previsionio's GCP connector, Cloud Storage only).

        Args:
            name: Connector name, unique in the project.
            googleCredentials: The service account key: the dict of its JSON file, or that JSON as text;
                stored encrypted by the platform, never returned. None sends anonymous requests.
            host: Endpoint URL of a GCS-compatible server (an emulator); Google's when None.
            project: Google Cloud project id; the key's ``project_id`` when None.
            bucket: Default bucket of datasources and listings that name none.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform refused a setting (a key that is not a service account key).
        """
        import json

        if isinstance(googleCredentials, Mapping):
            credentials: str | None = json.dumps(dict(googleCredentials))
        else:
            credentials = googleCredentials or None
        options = {k: v for k, v in (("project", project), ("bucket", bucket)) if v}
        return self._create_file_connector(
            {
                "name": name,
                "type": "gcs",
                "host": host,
                "secrets": {"credentials": credentials} if credentials else {},
                "options": options,
            }
        )

    def create_local_connector(
        self, name: str, root: str | os.PathLike[str], *, exist_ok: bool = False
    ) -> FileConnector:
        """Create a connector to a directory of the platform's own machine.

        The platform's operator decides which directories may be used (``PREVISIO_LOCAL_ROOTS``); paths never
        leave ``root``, not even through symbolic links.

        Args:
            name: Connector name, unique in the project.
            root: Absolute path of the directory on the platform's machine (a relative path is made absolute
                when the platform is the local one).
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform does not allow this directory (``code="root_not_allowed"``).
        """
        root = os.fspath(root)
        if self.client.is_local and not os.path.isabs(root):
            root = os.path.abspath(root)
        body = {"name": name, "type": "local", "options": {"root": root}}
        return self._create_file_connector(body, exist_ok)

    def create_http_connector(
        self,
        name: str,
        host: str,
        username: str | None = None,
        password: str | None = None,
        token: str | None = None,
        *,
        exist_ok: bool = False,
    ) -> FileConnector:
        """Create a connector to files served over HTTP(S).

        Args:
            name: Connector name, unique in the project.
            host: Base URL, such as ``https://files.example.com/exports``; datasource paths are appended.
            username: User name for basic authentication.
            password: Password for basic authentication; stored encrypted.
            token: Bearer token sent as ``Authorization: Bearer ...``; stored encrypted.
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

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
            },
            exist_ok,
        )

    def create_connector(
        self,
        name: str,
        type: str,
        host: str | None = None,
        port: int | None = None,
        username: str | None = None,
        password: str | None = None,
        database: str | None = None,
        driver: str | None = None,
        options: dict[str, Any] | None = None,
        secrets: dict[str, str] | None = None,
        *,
        exist_ok: bool = False,
    ) -> Connector:
        """Create a connector of any type the platform knows, including types added by driver packages.

        The ``create_*_connector`` methods are shortcuts for the built-in types; this one sends the settings
        as they are, for the type's driver to check.

        Args:
            name: Connector name, unique in the project.
            type: Connector type, as registered on the platform (``sql``, ``ftp``... or a plug-in's type).
            host: Host name or address.
            port: Port.
            username: User name.
            password: Password; stored encrypted by the platform, never returned.
            database: Database (or whatever the type's driver calls so).
            driver: Variant of the type (``postgresql`` for ``sql``).
            options: Type-specific settings.
            secrets: Other secrets (tokens, keys), stored encrypted like the password.
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

        Raises:
            ConflictError: The project already has a connector of that name.
            ValidationError: The platform does not know the type, or its driver refused a setting.
        """
        body: dict[str, Any] = {
            "name": name,
            "type": type,
            "host": host,
            "port": port,
            "username": username,
            "password": password,
            "database": database,
            "driver": driver,
            "options": options or {},
            "secrets": secrets or {},
        }
        return self._create_connector(body, exist_ok)

    @_display.returns_list
    def list_connectors(self, all: bool = True) -> list[Connector]:
        """The project's connectors, oldest first (``all=False``: the first page only)."""
        return Connector.list(self.id, all=all, client=self.client)

    @property
    def connectors(self) -> ConnectorMap:
        """The project's connectors by name, fetched now: ``project.connectors["warehouse"]``.

        An unknown name raises :class:`~previsio_sdk.errors.ConnectorNotFoundError` (a ``KeyError``) that
        suggests close names; the ``repr`` lists names, types and addresses, never a secret.
        """
        from .connection_map import ConnectorMap

        return ConnectorMap(self.name, self.list_connectors())

    def add_connectors(
        self, config: Mapping[str, Any] | str | os.PathLike[str], override_existing: bool = False
    ) -> list[Connector]:
        """Create connectors from a configuration: a dict, or the path of a YAML or JSON file.

        The configuration maps names to settings (see :doc:`/guides/moving_projects`); ``${VAR}`` in a
        value is replaced by the environment variable ``VAR`` of this process, so files hold no secret.
        Everything is checked before anything is created, and a call creates all its connectors or none.

        Args:
            config: Connector names mapped to their settings, or the path of a ``.yaml``/``.yml``/``.json``
                file (relative SQLite files and local roots are then resolved against its directory).
            override_existing: Replace the settings of connectors that exist under the same name (their
                datasources keep working); a secret not given keeps its value.

        Returns:
            The connectors created or updated, in the configuration's order.

        Raises:
            ConfigurationError: The configuration has problems: one error lists them all, each as
                ``name.key: problem`` (``details`` holds the list).
            ConflictError: A name exists already and ``override_existing`` is False (nothing was created).
            ValidationError: The platform refused a setting (what this call created was deleted again).
        """
        from .connection_map import add_connectors

        return add_connectors(self, config, override_existing=override_existing)

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
        gCloud: GCloud | str | None = None,  # noqa: N803 - previsionio's keyword
        check: bool = True,
        format: str | None = None,
        options: dict[str, Any] | None = None,
        delimiter: str | None = None,
        encoding: str | None = None,
        header: bool | None = None,
        decimal: str | None = None,
        *,
        exist_ok: bool = False,
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
            gCloud: previsionio's Google Cloud service: :attr:`GCloud.storage` (or None) with a GCP connector;
                BigQuery is not supported.
            check: Look the source up on the remote system now, so a mistyped table fails here.
            format: File format: ``csv``, ``tsv``, ``parquet``, ``jsonl``, ``csv.gz``, ``zip``...
            options: Other reading options of files: ``quotechar``, ``null_values``, ``column_names``,
                ``column_types`` (``{"zip": "string"}``), ``skip_rows``, ``block_size``, ``member`` (of a
                zip), ``compression``.
            delimiter: CSV field delimiter (``","``, ``";"``, ``"\t"``...).
            encoding: Text encoding of a CSV file (``utf-8``, ``latin-1``, ``cp1252``...).
            header: Whether the first CSV line holds the column names.
            decimal: Decimal mark of CSV numbers: ``"."`` or ``","``.
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

        Raises:
            ValidationError: The definition does not fit the connector, or (``check``) the source does not
                exist or cannot be reached; ``code`` tells which (``source_not_found``,
                ``connection_failed``...).
            ConflictError: The project already has a datasource of that name.
            ConfigurationError: ``gCloud`` is BigQuery.
        """
        _check_g_cloud(gCloud)
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
        list_path = format_path("/projects/{}/datasources", self.id)
        try:
            data = self.client.post(list_path, body)
        except ConflictError as exc:
            if not exist_ok:
                raise
            keys = ("connector_id", "database", "table", "request", "path", "bucket", "options")
            build = functools.partial(DataSource.from_dict, client=self.client)
            return existing_or_raise(self.client, list_path, "Datasource", body, keys, build, exc)
        return DataSource.from_dict(data, self.client)

    @_display.returns_list
    def list_datasource(self, all: bool = True) -> list[DataSource]:
        """The project's datasources, oldest first (Prevision's name; ``all=False``: the first page only)."""
        return DataSource.list(self.id, all=all, client=self.client)

    @_display.returns_list
    def list_datasources(self, all: bool = True) -> list[DataSource]:
        """The project's datasources, oldest first (same as :meth:`list_datasource`)."""
        return self.list_datasource(all=all)

    # -- datasets --------------------------------------------------------------------------------------------
    @overload
    def create_dataset(
        self,
        name: str,
        datasource: DataSource | str | None = ...,
        file_name: str | os.PathLike[str] | None = ...,
        dataframe: pd.DataFrame | None = ...,
        *,
        origin: str | None = ...,
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
        origin: str | None = ...,
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
        origin: str | None = None,
        wait: bool = True,
        timeout: float | None = None,
        progress: bool | None = None,
    ) -> Dataset | Job:
        """Create a dataset: a snapshot of a datasource, or an upload of a file or a DataFrame.

        Give exactly one of ``datasource``, ``file_name`` or ``dataframe``.

        Args:
            name: Dataset name, unique in the project.
            datasource: Datasource (or its id) to snapshot; the platform streams it into a Parquet file.
            file_name: Local file to upload: CSV or Parquet (by extension: ``.csv``, ``.parquet``), or a zip
                archive holding one CSV or Parquet file (as previsionio uploads).
            dataframe: pandas DataFrame to upload (its index is not kept).
            origin: previsionio's pipeline origin (``pipeline_output`` or ``pipeline_intermediate_file``);
                checked as previsionio does, not stored (there are no pipelines here).
            wait: Wait for the job and return the dataset; False returns the :class:`Job` at once.
            timeout: Seconds to wait at most (with ``wait``).
            progress: Show a progress bar (rows so far); None shows one in a terminal or a notebook.

        Returns:
            The complete :class:`Dataset` (``wait=True``) or the running :class:`Job`.

        Raises:
            ConfigurationError: Not exactly one source was given, the file's format is unknown, a zip
                archive does not hold exactly one data file, or ``origin`` is not one of previsionio's.
            ConflictError: The project already has a dataset (or a snapshot of another datasource in progress)
                of that name. A snapshot of the same datasource in progress is waited for instead (a re-run
                cell re-attaches to it).
            JobFailedError: The snapshot failed; ``code`` and ``message`` say why, and no dataset was kept.
            JobTimeoutError: ``timeout`` passed first.
        """
        given = [x is not None for x in (datasource, file_name, dataframe)]
        if sum(given) != 1:
            raise ConfigurationError("Give exactly one of datasource=, file_name= or dataframe=.")
        if origin is not None and origin not in DATASET_ORIGINS:
            raise ConfigurationError(f"Invalid origin {origin!r}; use one of {', '.join(DATASET_ORIGINS)}.")
        if datasource is not None:
            body = {"name": name, "datasource_id": ident(datasource)}
            try:
                data = self.client.post(format_path("/projects/{}/datasets", self.id), body)
                job = Job.from_dict(data, self.client)
            except ConflictError as exc:
                job = self._running_snapshot(exc, ident(datasource))
                if job is None:
                    raise
                print(
                    f"A snapshot of this datasource into {name!r} is already running: waiting for it "
                    f"(pio.Job.from_id({job.id!r})).",
                    file=sys.stderr,
                )
            if wait and progress_wanted(progress):
                job.progress_total = self._estimate_rows(ident(datasource))
        elif file_name is not None:
            path = Path(file_name)
            fmt = _UPLOAD_FORMATS.get(path.suffix.lower())
            if fmt is None and zipfile.is_zipfile(path):
                from ._csvfiles import unzipped_upload

                with unzipped_upload(path) as (member, member_fmt, member_name):
                    job = self._upload(name, member, member_fmt, member_name)
                return job.wait(timeout=timeout, progress=progress) if wait else job
            if fmt is None:
                raise ConfigurationError(
                    f"Cannot tell the format of {str(path)!r}: use a .csv, .parquet or .zip file."
                )
            job = self._upload(name, path, fmt, path.name, progress=progress)
        else:
            job = self._upload_dataframe(name, dataframe, progress=progress)
        if not wait:
            return job
        return job.wait(timeout=timeout, progress=progress)

    def _running_snapshot(self, conflict: ConflictError, datasource_id: str) -> Job | None:
        """The running snapshot of ``datasource_id`` that took the name, if that is what ``conflict`` is."""
        details = conflict.details if isinstance(conflict.details, dict) else {}
        if details.get("job_id") and details.get("datasource_id") == datasource_id:
            return Job.from_id(details["job_id"], self.client)
        return None

    def _estimate_rows(self, datasource_id: str) -> int | None:
        """The rows a snapshot of the datasource will read, from the source's statistics, if it can tell."""
        try:
            return self.client.get(format_path("/datasources/{}/estimate", datasource_id)).get("rows")
        except PrevisioError:  # a platform without estimates, or a source that cannot be asked now
            return None

    def _upload(
        self,
        name: str,
        path: Path,
        fmt: str,
        original_name: str,
        datasource_id: str | None = None,
        progress: bool | None = None,
    ) -> Job:
        params = {"name": name, "format": fmt, "file_name": original_name}
        if datasource_id is not None:  # a restored or migrated dataset keeps its lineage
            params["datasource_id"] = datasource_id
        size = path.stat().st_size
        with (
            open(path, "rb") as fh,
            Progress(f"upload {name!r}", size, unit="bytes", enabled=progress_wanted(progress)) as bar,
        ):
            resp = self.client.request(
                "POST",
                format_path("/projects/{}/datasets/upload", self.id),
                params=params,
                data=CountingReader(fh, bar),
                headers={"Content-Type": "application/octet-stream"},
                idempotency_key=new_idempotency_key(),  # sent again from the start if the connection drops
            )
        return Job.from_dict(resp.json(), self.client)

    def _upload_dataframe(self, name: str, dataframe: pd.DataFrame, progress: bool | None = None) -> Job:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(dataframe, preserve_index=False)
        with tempfile.TemporaryDirectory(prefix="previsio-") as tmp:
            path = Path(tmp) / "dataframe.parquet"
            pq.write_table(table, path)
            return self._upload(name, path, "parquet", "dataframe.parquet", progress=progress)

    @_display.returns_list
    def list_datasets(self, all: bool = True) -> list[Dataset]:
        """The project's complete datasets, oldest first (snapshots in progress are not listed).

        Args:
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
        """
        return Dataset.list(self.id, all=all, client=self.client)

    # -- exporters -------------------------------------------------------------------------------------------
    def create_exporter(
        self,
        connector: Connector | str,
        name: str,
        description: str | None = None,
        path: str | None = None,
        bucket: str | None = None,
        database: str | None = None,
        table: str | None = None,
        g_cloud: GCloud | str | None = None,
        write_mode: ExporterWriteMode | str = ExporterWriteMode.safe,
        key: str | list[str] | None = None,
        format: str | None = None,
        *,
        exist_ok: bool = False,
    ) -> Exporter:
        """Create an exporter: where (a table, or a file path) and how datasets are written back.

        For an SQL connector give ``table`` (``schema.table`` on PostgreSQL; ``database`` to write to
        another database than the connector's) and a table write mode: ``replace``, ``append``, or
        ``upsert`` with ``key``. For a file connector give ``path`` (and ``bucket`` for S3) and a file write
        mode: ``safe`` (the default), ``replace`` or ``timestamp``; files are written as CSV, TSV or Parquet,
        from the path's extension or ``format``.

        Args:
            connector: The connector (or its id) to write through.
            name: Exporter name, unique in the project.
            description: Free text.
            path: File path, relative to the connector's root (file connectors).
            bucket: Bucket (object stores).
            database: Database of the table (SQL).
            table: Table name (SQL); created from the dataset's schema when it does not exist.
            g_cloud: previsionio's Google Cloud service: :attr:`GCloud.storage` (or None) with a GCP
                connector; BigQuery is not supported.
            write_mode: What an export does with what the destination holds (:class:`ExporterWriteMode`).
            key: The columns identifying a row, for ``upsert`` (a name or a list of names).
            format: ``csv``, ``tsv`` or ``parquet``, when the path's extension does not tell.
            exist_ok: When the name is taken by one with the same settings, return that one (a re-run
                cell) instead of raising :class:`ConflictError`; other settings still raise, naming them.

        Raises:
            ConfigurationError: ``write_mode`` names no write mode, or ``g_cloud`` is BigQuery.
            ValidationError: The destination or the mode does not fit the connector (a file mode for a table,
                a path leaving the connector's root, ``upsert`` without ``key``...).
            ConflictError: The project already has an exporter of that name.
        """
        _check_g_cloud(g_cloud)
        mode = as_write_mode(write_mode)
        body: dict[str, Any] = {
            "name": name,
            "connector_id": ident(connector),
            "description": description,
            "path": path,
            "bucket": bucket,
            "database": database,
            "table": table,
            "write_mode": mode.value,
            "key": [key] if isinstance(key, str) else key,
        }
        if format is not None:
            body["options"] = {"format": format}
        list_path = format_path("/projects/{}/exporters", self.id)
        try:
            data = self.client.post(list_path, body)
        except ConflictError as exc:
            if not exist_ok:
                raise
            keys = ("connector_id", "description", "database", "table", "path", "bucket", "write_mode", "key")
            build = functools.partial(Exporter.from_dict, client=self.client)
            return existing_or_raise(
                self.client, list_path, "Exporter", body, keys + ("options",), build, exc
            )
        return Exporter.from_dict(data, self.client)

    @_display.returns_list
    def list_exporter(self, all: bool = True) -> list[Exporter]:
        """The project's exporters, oldest first (the Prevision name; ``all=False``: the first page only)."""
        return Exporter.list(self.id, all=all, client=self.client)

    @_display.returns_list
    def list_exporters(self, all: bool = True) -> list[Exporter]:
        """The project's exporters, oldest first (same as :meth:`list_exporter`)."""
        return self.list_exporter(all=all)


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
