"""Request and response bodies of the HTTP API (one family of schemas per resource)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, StringConstraints

Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
"""A resource name: 1 to 200 printable characters, surrounding blanks removed."""

#: Pattern of the text handed to drivers (host, user, database, table, path): a NUL byte would cut it short in
#: C libraries (libpq reads ``dbname=x\x00`` as no database and falls back to its defaults: the local server).
NO_NUL = r"^[^\x00]*$"

#: Deepest nesting accepted in ``options``; deeper JSON could not even be serialised back in answers.
MAX_OPTIONS_DEPTH = 32


def _check_depth(value: dict[str, Any]) -> dict[str, Any]:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_OPTIONS_DEPTH:
            raise ValueError(f"options may not be nested more than {MAX_OPTIONS_DEPTH} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


Options = Annotated[dict[str, Any], AfterValidator(_check_depth)]
"""Type-specific settings: a JSON object of limited depth."""

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int
    page: int
    page_size: int


class ErrorBody(BaseModel):
    """The body of every error answer."""

    class Detail(BaseModel):
        code: str
        message: str
        details: Any = None
        request_id: str | None = None

    error: Detail


class Health(BaseModel):
    status: Literal["ok"]
    version: str


# -- projects ------------------------------------------------------------------------------------------------
#: A colour as ``#RRGGBB`` (Prevision.io's ``ProjectColor`` values).
Color = Annotated[str, StringConstraints(pattern=r"^#[0-9A-Fa-f]{6}$")]


class ProjectCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    description: str | None = Field(default=None, max_length=10000)
    color: Color | None = None


class ProjectUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    description: str | None = Field(default=None, max_length=10000)
    color: Color | None = None


class ProjectPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    description: str | None
    color: str | None = None
    created_at: datetime


# -- connectors ----------------------------------------------------------------------------------------------
class ConnectorCreate(BaseModel):
    """A new connector. ``password`` and ``secrets`` are stored encrypted and never returned."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    type: str = Field(default="sql", min_length=1, max_length=50)
    driver: str | None = Field(default=None, max_length=50, pattern=NO_NUL)
    host: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    password: SecretStr | None = None
    database: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    options: Options = Field(default_factory=dict)
    secrets: dict[str, SecretStr] = Field(default_factory=dict)
    missing_secrets: list[Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL)]] = Field(
        default_factory=list,
        max_length=50,
        description="Secrets the connector needs but that are not given (a restored or migrated connector): "
        "it is created marked as needing credentials, to be set later with PATCH.",
    )


class ConnectorUpdate(BaseModel):
    """Changes to a connector; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")
    name: Name | None = None
    driver: str | None = Field(default=None, max_length=50, pattern=NO_NUL)
    host: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    port: int | None = Field(default=None, ge=1, le=65535)
    username: str | None = Field(default=None, max_length=500, pattern=NO_NUL)
    password: SecretStr | None = None
    database: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    options: Options | None = None
    secrets: dict[str, SecretStr] | None = None


class ConnectorPublic(BaseModel):
    id: str
    project_id: str
    name: str
    type: str
    driver: str | None
    host: str | None
    port: int | None
    username: str | None
    database: str | None
    options: dict[str, Any]
    has_password: bool
    secret_fields: list[str]
    needs_credentials: bool = False
    created_at: datetime


class SecretsExportRequest(BaseModel):
    """A passphrase to encrypt a connector's secrets with, for a backup archive."""

    model_config = ConfigDict(extra="forbid")
    passphrase: SecretStr = Field(min_length=8, max_length=1000)


class SecretsExport(BaseModel):
    """A connector's secrets encrypted with a key derived from a passphrase (see the backup format)."""

    ciphertext: str
    kdf: dict[str, Any]
    cipher: str


class ConnectorTest(BaseModel):
    ok: bool
    code: str | None = None
    message: str


class NameList(BaseModel):
    items: list[str]


class FileEntry(BaseModel):
    name: str
    path: str
    size: int | None = None
    modified_at: datetime | None = None
    is_dir: bool = False


# -- datasources ---------------------------------------------------------------------------------------------
class DataSourceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    connector_id: str = Field(min_length=1, max_length=64)
    database: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    table: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    request: str | None = Field(default=None, max_length=1_000_000)
    path: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)
    bucket: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    options: Options = Field(default_factory=dict)
    check: bool = True


class DataSourcePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    project_id: str
    connector_id: str
    name: str
    database: str | None
    table: str | None
    request: str | None
    path: str | None
    bucket: str | None
    options: dict[str, Any]
    created_at: datetime


# -- datasets and jobs ---------------------------------------------------------------------------------------
class SnapshotCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Name
    datasource_id: str = Field(min_length=1, max_length=64)


class ColumnPublic(BaseModel):
    name: str
    type: str
    nullable: bool = True


class DatasetPublic(BaseModel):
    id: str
    project_id: str
    name: str
    origin: str
    datasource_id: str | None
    num_rows: int
    size_bytes: int
    content_hash: str
    columns: list[ColumnPublic] = Field(validation_alias="schema_json", serialization_alias="schema")
    file_name: str | None
    created_at: datetime
    model_config = ConfigDict(from_attributes=True)


class DatasetFile(BaseModel):
    """Where a dataset's file lies on the platform's disk (embedded local platform only)."""

    path: str
    size_bytes: int


class JobPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    project_id: str
    kind: str
    status: Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
    dataset_id: str | None
    progress_rows: int
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


# -- users, tokens and project members -----------------------------------------------------------------------
UserName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^[^\x00-\x20\x7f]+$"),
]
"""A user name: 1 to 200 printable characters without blanks."""


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: UserName
    is_admin: bool = False


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    is_admin: bool
    created_at: datetime


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_in_days: float | None = Field(default=None, gt=0, le=36500)


class TokenPublic(BaseModel):
    """A token as listed: never its value."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    user_id: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


class TokenCreated(TokenPublic):
    """A new token: ``token`` is its value, shown this once (only its digest is stored)."""

    token: str


class MemberCreate(BaseModel):
    """Who to add to a project (a user name or id), and with which role; an existing member changes role."""

    model_config = ConfigDict(extra="forbid")
    user: str = Field(min_length=1, max_length=200)
    role: Literal["viewer", "editor", "owner"] = "viewer"


class MemberPublic(BaseModel):
    user_id: str
    user_name: str
    role: Literal["viewer", "editor", "owner"]


# -- exporters and exports -----------------------------------------------------------------------------------
WriteModeName = Literal["safe", "replace", "timestamp", "append", "upsert"]
"""How an export treats what its destination already holds."""

KeyColumn = Annotated[str, StringConstraints(min_length=1, max_length=1000, pattern=NO_NUL)]


class ExporterCreate(BaseModel):
    """A new exporter: a destination behind a connector (a table, or a file path) and a write mode."""

    model_config = ConfigDict(extra="forbid")
    name: Name
    connector_id: str = Field(min_length=1, max_length=64)
    description: str | None = Field(default=None, max_length=10000)
    database: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    table: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    path: str | None = Field(default=None, max_length=4000, pattern=NO_NUL)
    bucket: str | None = Field(default=None, max_length=1000, pattern=NO_NUL)
    write_mode: WriteModeName = "safe"
    key: list[KeyColumn] | None = Field(default=None, max_length=32)
    options: Options = Field(default_factory=dict)


class ExporterPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    project_id: str
    connector_id: str
    name: str
    description: str | None
    database: str | None
    table: str | None
    path: str | None
    bucket: str | None
    write_mode: WriteModeName
    key: list[str] | None
    options: dict[str, Any]
    created_at: datetime


class ExportCreate(BaseModel):
    """Export a dataset of the exporter's project."""

    model_config = ConfigDict(extra="forbid")
    dataset_id: str = Field(min_length=1, max_length=64)


class ExportPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    project_id: str
    exporter_id: str
    dataset_id: str | None
    source: Literal["dataset", "file", "dataframe"]
    file_name: str | None
    status: Literal["pending", "running", "cancelling", "succeeded", "failed", "cancelled"]
    rows: int | None
    progress_rows: int
    destination: str | None
    error_code: str | None
    error_message: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
