"""Datasources: one resource behind a connector."""

from __future__ import annotations

from anyio import to_thread
from fastapi import APIRouter, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from ..core import Platform
from ..deps import (
    Caller,
    CurrentUser,
    PageDep,
    PlatformDep,
    SessionDep,
    SessionRoute,
    paginate,
    project_for,
    resource_for,
)
from ..drivers import ConnectorConfig, SourceSpec
from ..errors import NotFound
from ..jobs import build_driver, connector_config, source_spec
from ..models import Connector, DataSource, User
from ..remote import call_remote
from ..schemas import DataSourceCreate, DataSourcePublic, Page
from .common import ensure_unique_name

router = APIRouter(tags=["datasources"], route_class=SessionRoute)


def _connector_in_project(session: Session, user: User, project_id: str, connector_id: str) -> Connector:
    """The connector ``connector_id`` of a project the caller may change (editor)."""
    project = project_for(session, user, project_id)
    connector = session.get(Connector, connector_id)
    if connector is None or connector.project_id != project.id:
        raise NotFound("connector in this project", connector_id)
    return connector


def _prepare(
    platform: Platform, user: User, project_id: str, body: DataSourceCreate
) -> tuple[ConnectorConfig, SourceSpec]:
    """In a short session: check the caller, the connector and the name; the source, normalised."""
    with platform.db.session() as session:
        connector = _connector_in_project(session, user, project_id, body.connector_id)
        ensure_unique_name(session, DataSource, project_id, body.name, "datasource")
        driver = build_driver(platform, connector)
    spec = driver.normalize_source(
        SourceSpec(
            database=body.database,
            table=body.table,
            request=body.request,
            path=body.path,
            bucket=body.bucket,
            options=dict(body.options),
        )
    )
    return driver.config, spec


def _store(
    platform: Platform, user: User, project_id: str, body: DataSourceCreate, spec: SourceSpec
) -> DataSourcePublic:
    """In a new short session: check again (the remote check took time), then store the datasource."""
    with platform.db.session() as session:
        connector = _connector_in_project(session, user, project_id, body.connector_id)
        ensure_unique_name(session, DataSource, project_id, body.name, "datasource")
        row = DataSource(
            project_id=connector.project_id,
            connector_id=connector.id,
            name=body.name,
            database=spec.database,
            table=spec.table,
            request=spec.request,
            path=spec.path,
            bucket=spec.bucket,
            options=spec.options,
        )
        session.add(row)
        session.flush()
        return DataSourcePublic.model_validate(row)


@router.post("/projects/{project_id}/datasources", status_code=201, response_model=DataSourcePublic)
async def create_datasource(
    project_id: str, body: DataSourceCreate, user: Caller, platform: PlatformDep
) -> DataSourcePublic:
    """Create a datasource; with ``check`` (the default) the source is looked up remotely first.

    No metadata session is open during the remote check, which ends within ``remote_call_timeout_seconds``
    (422 ``timeout`` past it).
    """
    config, spec = await to_thread.run_sync(_prepare, platform, user, project_id, body)
    if body.check:
        await call_remote(platform, config, "check_source", spec)
    return await to_thread.run_sync(_store, platform, user, project_id, body, spec)


@router.get("/projects/{project_id}/datasources", response_model=Page[DataSourcePublic])
def list_datasources(project_id: str, session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The datasources of a project, oldest first."""
    project = project_for(session, user, project_id, min_role="viewer")
    stmt = (
        select(DataSource)
        .where(DataSource.project_id == project.id)
        .order_by(DataSource.created_at, DataSource.id)
    )
    rows, total = paginate(session, stmt, params)
    return params.envelope(rows, total)


@router.get("/datasources/{datasource_id}", response_model=DataSourcePublic)
def get_datasource(datasource_id: str, session: SessionDep, user: CurrentUser) -> DataSource:
    """One datasource."""
    return resource_for(session, user, DataSource, datasource_id, "datasource", min_role="viewer")


def _estimate_target(
    platform: Platform, user: User, datasource_id: str
) -> tuple[ConnectorConfig, SourceSpec]:
    with platform.db.session() as session:
        row = resource_for(session, user, DataSource, datasource_id, "datasource", min_role="editor")
        connector = session.get(Connector, row.connector_id)
        return connector_config(platform, connector), source_spec(row)


@router.get("/datasources/{datasource_id}/estimate")
async def estimate_datasource(
    datasource_id: str, user: Caller, platform: PlatformDep
) -> dict[str, int | None]:
    """How many rows a snapshot of the datasource will read, from the source's statistics (a progress bar's
    total); ``rows`` is null when the source cannot tell cheaply (a query, a file). It uses the connector's
    credentials, so it is for editors, like browsing a connector. No metadata session is open while the
    source is asked (within ``remote_call_timeout_seconds``)."""
    config, spec = await to_thread.run_sync(_estimate_target, platform, user, datasource_id)
    return {"rows": await call_remote(platform, config, "estimate_rows", spec)}


@router.delete("/datasources/{datasource_id}", status_code=204)
def delete_datasource(datasource_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Delete a datasource; the datasets taken from it stay."""
    row = resource_for(session, user, DataSource, datasource_id, "datasource")
    session.delete(row)
    return Response(status_code=204)
