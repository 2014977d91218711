"""Datasources: one resource behind a connector (a table, an SQL query, a file path, a bucket key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import attrs

from . import _display
from ._default import get_client
from ._resource import PrevisionIds, parse_datetime
from .client import Client, format_path
from .connectors import Connector


@attrs.define(eq=False)
class DataSource(PrevisionIds, metaclass=_display.Documented):
    """A datasource of a project.

    Attributes:
        id: Platform id.
        project_id: Id of the project owning it.
        connector_id: Id of the connector it reads through.
        name: Name, unique among the project's datasources.
        database: Database holding the table (SQL).
        table: Table name (SQL; ``schema.table`` on PostgreSQL).
        request: SQL query, run read-only (SQL).
        path: File path or glob (file connectors).
        bucket: Bucket name (object stores).
        options: Type-specific settings.
        created_at: Creation time (UTC).
    """

    __repr__ = _display.resource_repr
    _repr_html_ = _display.resource_html

    id: str
    project_id: str
    connector_id: str
    name: str
    database: str | None = None
    table: str | None = None
    request: str | None = None
    path: str | None = None
    bucket: str | None = None
    options: dict[str, Any] = attrs.field(factory=dict)
    created_at: datetime | None = None
    _client: Client | None = attrs.field(default=None, repr=False, alias="client")

    @classmethod
    def from_dict(cls, data: dict[str, Any], client: Client | None = None) -> DataSource:
        """Build a datasource object from the platform's description."""
        return cls(
            id=data["id"],
            project_id=data["project_id"],
            connector_id=data["connector_id"],
            name=data["name"],
            database=data.get("database"),
            table=data.get("table"),
            request=data.get("request"),
            path=data.get("path"),
            bucket=data.get("bucket"),
            options=data.get("options") or {},
            created_at=parse_datetime(data.get("created_at")),
            client=get_client(client),
        )

    @classmethod
    def from_id(cls, datasource_id: str, client: Client | None = None) -> DataSource:
        """Fetch a datasource by id.

        Raises:
            NotFoundError: No such datasource is visible to this token.
        """
        client = get_client(client)
        return cls.from_dict(client.get(format_path("/datasources/{}", datasource_id)), client)

    @classmethod
    def list(cls, project_id: str, all: bool = True, client: Client | None = None) -> list[DataSource]:
        """The datasources of a project, oldest first.

        Args:
            project_id: Id of the project.
            all: Every page (default); False gives only the first page, as previsionio's ``all=False``.
            client: Client to use; the default client when None.
        """
        client = get_client(client)
        path = format_path("/projects/{}/datasources", project_id)
        return [cls.from_dict(d, client) for d in client.list_items(path, all=all)]

    @property
    def client(self) -> Client:
        """The client this datasource came from."""
        return get_client(self._client)

    @property
    def connector(self) -> Connector:
        """The connector this datasource reads through (fetched from the platform)."""
        return Connector.from_id(self.connector_id, self.client)

    def delete(self) -> None:
        """Delete this datasource; the datasets taken from it stay."""
        self.client.delete(format_path("/datasources/{}", self.id))
