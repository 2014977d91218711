"""SQLAlchemy 2.x models of the metadata store."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator


def new_id() -> str:
    """Return a new random resource id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (SQLite keeps no time zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    """Declarative base of every metadata table."""

    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class User(Base):
    """A person or a service that calls the API."""

    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    is_admin: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """An API token; only its SHA-256 digest is stored."""

    __tablename__ = "tokens"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked: Mapped[bool] = mapped_column(default=False)

    user: Mapped[User] = relationship()


class Project(Base):
    """The unit of scoping: owns connectors, datasources and datasets."""

    __tablename__ = "projects"
    __table_args__ = (UniqueConstraint("owner_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    owner_id: Mapped[str] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    #: ``#RRGGBB`` colour shown for the project (Prevision.io's ``ProjectColor``); None when not chosen.
    color: Mapped[str | None] = mapped_column(String(7), default=None)


class ProjectMember(Base):
    """A user's role in a project."""

    __tablename__ = "project_members"

    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(20), default="owner")


class Connector(Base):
    """Address and credentials of a remote system; secrets are kept encrypted in ``secret_enc``."""

    __tablename__ = "connectors"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(50))
    driver: Mapped[str | None] = mapped_column(String(50), default=None)
    host: Mapped[str | None] = mapped_column(String(500), default=None)
    port: Mapped[int | None] = mapped_column(Integer, default=None)
    username: Mapped[str | None] = mapped_column(String(500), default=None)
    database: Mapped[str | None] = mapped_column(String(1000), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    #: Created without secrets its source had (a restored or migrated connector); cleared by an update that
    #: sets the password or secrets.
    needs_credentials: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DataSource(Base):
    """One resource behind a connector: a table, a query, a file path or a bucket key."""

    __tablename__ = "datasources"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    database: Mapped[str | None] = mapped_column(String(1000), default=None)
    table: Mapped[str | None] = mapped_column(String(1000), default=None)
    request: Mapped[str | None] = mapped_column(Text, default=None)
    path: Mapped[str | None] = mapped_column(String(4000), default=None)
    bucket: Mapped[str | None] = mapped_column(String(1000), default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Dataset(Base):
    """An immutable Parquet snapshot. Only ``status == "ready"`` datasets are visible through the API."""

    __tablename__ = "datasets"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    datasource_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasources.id", ondelete="SET NULL"), default=None
    )
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    origin: Mapped[str] = mapped_column(String(20), default="snapshot")
    num_rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    content_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    schema_json: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    file_name: Mapped[str | None] = mapped_column(String(500), default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Exporter(Base):
    """Where and how a project writes datasets back: a destination behind a connector and a write mode."""

    __tablename__ = "exporters"
    __table_args__ = (UniqueConstraint("project_id", "name"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    connector_id: Mapped[str] = mapped_column(ForeignKey("connectors.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    database: Mapped[str | None] = mapped_column(String(1000), default=None)
    table: Mapped[str | None] = mapped_column(String(1000), default=None)
    path: Mapped[str | None] = mapped_column(String(4000), default=None)
    bucket: Mapped[str | None] = mapped_column(String(1000), default=None)
    write_mode: Mapped[str] = mapped_column(String(20))
    key: Mapped[list[str] | None] = mapped_column(JSON, default=None)
    options: Mapped[dict[str, Any]] = mapped_column(default=dict)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class LeasedWork:
    """What a job row (a snapshot, an upload, an export) carries for the process that runs it.

    A process claims the row with a compare-and-set (``pending`` -> ``running``) and holds a lease on it that
    its heartbeat renews; a row whose lease expired was lost with its process, and a reaper gives it to
    another one (or fails it). ``params`` holds what the work needs beyond the row (an upload's reference in
    the dataset store), so that any process can run it.
    """

    lease_owner: Mapped[str | None] = mapped_column(String(100), default=None)
    lease_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)


class Export(LeasedWork, Base):
    """One run of an exporter: a dataset (or an uploaded file) written to its destination."""

    __tablename__ = "exports"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    exporter_id: Mapped[str] = mapped_column(ForeignKey("exporters.id", ondelete="CASCADE"), index=True)
    dataset_id: Mapped[str | None] = mapped_column(
        ForeignKey("datasets.id", ondelete="SET NULL"), default=None
    )
    source: Mapped[str] = mapped_column(String(20))
    file_name: Mapped[str | None] = mapped_column(String(500), default=None)
    status: Mapped[str] = mapped_column(String(20), default="pending")
    rows: Mapped[int | None] = mapped_column(BigInteger, default=None)
    progress_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    destination: Mapped[str | None] = mapped_column(String(4000), default=None)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class Job(LeasedWork, Base):
    """A long task run by the platform (snapshot, upload), polled by the SDK."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_id)
    project_id: Mapped[str] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20), default="pending")
    dataset_id: Mapped[str | None] = mapped_column(String(32), default=None)
    progress_rows: Mapped[int] = mapped_column(BigInteger, default=0)
    error_code: Mapped[str | None] = mapped_column(String(100), default=None)
    error_message: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class IdempotencyRecord(Base):
    """The answer to a creation request sent with an ``Idempotency-Key``, replayed when it is sent again.

    A row whose ``status_code`` is None belongs to a request still being handled.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    fingerprint: Mapped[str | None] = mapped_column(String(64), default=None)
    status_code: Mapped[int | None] = mapped_column(Integer, default=None)
    content_type: Mapped[str | None] = mapped_column(String(200), default=None)
    body: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
