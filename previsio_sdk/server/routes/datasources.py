"""Datasources: one resource behind a connector."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from ..deps import CurrentUser, PageDep, PlatformDep, SessionDep, paginate, project_for, resource_for
from ..drivers import SourceSpec
from ..errors import NotFound
from ..jobs import build_driver, source_spec
from ..models import Connector, DataSource
from ..schemas import DataSourceCreate, DataSourcePublic, Page
from .common import ensure_unique_name

router = APIRouter(tags=["datasources"])


@router.post("/projects/{project_id}/datasources", status_code=201, response_model=DataSourcePublic)
def create_datasource(
    project_id: str, body: DataSourceCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> DataSource:
    """Create a datasource; with ``check`` (the default) the source is looked up remotely first."""
    project = project_for(session, user, project_id)
    connector = session.get(Connector, body.connector_id)
    if connector is None or connector.project_id != project.id:
        raise NotFound("connector in this project", body.connector_id)
    ensure_unique_name(session, DataSource, project.id, body.name, "datasource")
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
    if body.check:
        driver.check_source(spec)
    row = DataSource(
        project_id=project.id,
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
    return row


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


@router.get("/datasources/{datasource_id}/estimate")
def estimate_datasource(
    datasource_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> dict[str, int | None]:
    """How many rows a snapshot of the datasource will read, from the source's statistics (a progress bar's
    total); ``rows`` is null when the source cannot tell cheaply (a query, a file). It uses the connector's
    credentials, so it is for editors, like browsing a connector."""
    row = resource_for(session, user, DataSource, datasource_id, "datasource", min_role="editor")
    connector = session.get(Connector, row.connector_id)
    return {"rows": build_driver(platform, connector).estimate_rows(source_spec(row))}


@router.delete("/datasources/{datasource_id}", status_code=204)
def delete_datasource(datasource_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Delete a datasource; the datasets taken from it stay."""
    row = resource_for(session, user, DataSource, datasource_id, "datasource")
    session.delete(row)
    return Response(status_code=204)
