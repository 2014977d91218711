"""Connectors: address and credentials of a remote system."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from sqlalchemy import select

from ..deps import CurrentUser, PageDep, PlatformDep, SessionDep, paginate, project_for, resource_for
from ..drivers import ConnectorConfig, driver_class
from ..errors import Conflict
from ..jobs import build_driver
from ..models import Connector, DataSource
from ..schemas import (
    NO_NUL,
    ConnectorCreate,
    ConnectorPublic,
    ConnectorTest,
    ConnectorUpdate,
    FileEntry,
    NameList,
    Page,
)
from .common import ensure_unique_name

router = APIRouter(tags=["connectors"])


def connector_public(platform: Any, row: Connector) -> ConnectorPublic:
    """The public view of a connector: which secrets are set, never their values."""
    secret_names = sorted(platform.vault.decrypt(row.secret_enc)) if row.secret_enc else []
    return ConnectorPublic(
        id=row.id,
        project_id=row.project_id,
        name=row.name,
        type=row.type,
        driver=row.driver,
        host=row.host,
        port=row.port,
        username=row.username,
        database=row.database,
        options=row.options or {},
        has_password="password" in secret_names,
        secret_fields=secret_names,
        created_at=row.created_at,
    )


def _secrets(password: Any, secrets: dict[str, Any] | None) -> dict[str, Any]:
    out = {k: v.get_secret_value() for k, v in (secrets or {}).items()}
    if password is not None:
        out["password"] = password.get_secret_value()
    return out


@router.post("/projects/{project_id}/connectors", status_code=201, response_model=ConnectorPublic)
def create_connector(
    project_id: str, body: ConnectorCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """Create a connector; its settings are checked by its driver, nothing is contacted."""
    project = project_for(session, user, project_id)
    cls = driver_class(body.type)
    config = cls.normalize_config(
        ConnectorConfig(
            type=body.type,
            driver=body.driver,
            host=body.host,
            port=body.port,
            username=body.username,
            database=body.database,
            options=dict(body.options),
            secrets=_secrets(body.password, body.secrets),
        )
    )
    cls(config, settings=platform.settings).check_config()
    ensure_unique_name(session, Connector, project.id, body.name, "connector")
    row = Connector(
        project_id=project.id,
        name=body.name,
        type=config.type,
        driver=config.driver,
        host=config.host,
        port=config.port,
        username=config.username,
        database=config.database,
        options=config.options,
        secret_enc=platform.vault.encrypt(config.secrets),
    )
    session.add(row)
    session.flush()
    return connector_public(platform, row)


@router.get("/projects/{project_id}/connectors", response_model=Page[ConnectorPublic])
def list_connectors(
    project_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep, params: PageDep
) -> dict:
    """The connectors of a project, oldest first."""
    project = project_for(session, user, project_id)
    stmt = (
        select(Connector)
        .where(Connector.project_id == project.id)
        .order_by(Connector.created_at, Connector.id)
    )
    rows, total = paginate(session, stmt, params)
    items = [connector_public(platform, r) for r in rows]
    return {"items": items, "total": total, "page": params.page, "page_size": params.page_size}


@router.get("/connectors/{connector_id}", response_model=ConnectorPublic)
def get_connector(
    connector_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """One connector."""
    return connector_public(platform, resource_for(session, user, Connector, connector_id, "connector"))


@router.patch("/connectors/{connector_id}", response_model=ConnectorPublic)
def update_connector(
    connector_id: str, body: ConnectorUpdate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorPublic:
    """Change a connector's settings or credentials; datasources using it keep working."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    fields = body.model_fields_set
    secrets = platform.vault.decrypt(row.secret_enc)
    secrets.update(_secrets(body.password, body.secrets))
    current = {k: getattr(row, k) for k in ("driver", "host", "port", "username", "database", "options")}
    changes = {k: getattr(body, k) for k in current if k in fields}
    merged = {**current, **changes}
    if "host" in changes and "port" not in changes and merged["driver"] != "sqlite":
        merged["port"] = None if "://" in (changes["host"] or "") else merged["port"]
    config = driver_class(row.type).normalize_config(
        ConnectorConfig(
            type=row.type, secrets=secrets, **{**merged, "options": dict(merged["options"] or {})}
        )
    )
    driver_class(row.type)(config, settings=platform.settings).check_config()
    if body.name is not None:
        ensure_unique_name(session, Connector, row.project_id, body.name, "connector", exclude_id=row.id)
        row.name = body.name
    for key in ("driver", "host", "port", "username", "database", "options"):
        setattr(row, key, getattr(config, key))
    row.secret_enc = platform.vault.encrypt(config.secrets)
    return connector_public(platform, row)


@router.delete("/connectors/{connector_id}", status_code=204)
def delete_connector(
    connector_id: str,
    session: SessionDep,
    user: CurrentUser,
    force: Annotated[bool, Query(description="Also delete the datasources that use it.")] = False,
) -> Response:
    """Delete a connector; refused while datasources use it, unless ``force``."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    users = list(session.scalars(select(DataSource).where(DataSource.connector_id == row.id)))
    if users and not force:
        names = ", ".join(repr(d.name) for d in users)
        raise Conflict(
            f"Connector {row.name!r} is used by datasources {names}; delete them first or pass force=true.",
            {"datasources": [{"id": d.id, "name": d.name} for d in users]},
        )
    for ds in users:
        session.delete(ds)
    session.flush()  # the datasources go first: the database would otherwise cascade them away under the ORM
    session.delete(row)
    return Response(status_code=204)


@router.post("/connectors/{connector_id}/test", response_model=ConnectorTest)
def test_connector(
    connector_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> ConnectorTest:
    """Try to connect; a failure is reported in the body (``ok: false``), not as an error status."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    outcome = build_driver(platform, row).test()
    return ConnectorTest(ok=outcome.ok, code=outcome.code, message=outcome.message)


@router.get("/connectors/{connector_id}/databases", response_model=NameList)
def list_databases(
    connector_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> NameList:
    """The databases the connector's credentials can see."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    return NameList(items=build_driver(platform, row).list_databases())


@router.get("/connectors/{connector_id}/tables", response_model=NameList)
def list_tables(
    connector_id: str,
    session: SessionDep,
    user: CurrentUser,
    platform: PlatformDep,
    database: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
) -> NameList:
    """The tables (and views) of a database; the connector's default database when none is given."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    return NameList(items=build_driver(platform, row).list_tables(database))


@router.get("/connectors/{connector_id}/files", response_model=Page[FileEntry])
def list_files(
    connector_id: str,
    session: SessionDep,
    user: CurrentUser,
    platform: PlatformDep,
    params: PageDep,
    path: Annotated[str, Query(max_length=4000, pattern=NO_NUL)] = "",
    bucket: Annotated[str | None, Query(max_length=1000, pattern=NO_NUL)] = None,
) -> dict:
    """The files under ``path`` (file and object-store connectors)."""
    row = resource_for(session, user, Connector, connector_id, "connector")
    entries = build_driver(platform, row).list_files(path, bucket)
    start = (params.page - 1) * params.page_size
    return {
        "items": entries[start : start + params.page_size],
        "total": len(entries),
        "page": params.page,
        "page_size": params.page_size,
    }
