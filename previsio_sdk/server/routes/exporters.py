"""Exporters and exports: writing datasets back to a connector's system."""

from __future__ import annotations

from typing import Annotated, Literal

from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response
from sqlalchemy import select

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
from ..drivers import DestinationSpec, WriteMode
from ..errors import NotFound
from ..jobs import build_driver, cancel
from ..models import Connector, Dataset, Export, Exporter
from ..schemas import ExportCreate, ExporterCreate, ExporterPublic, ExportPublic, Page
from ..services import connectors
from .common import ensure_unique_name, receive_upload, refuse_declared_oversize, upload_format

router = APIRouter(tags=["exporters"], route_class=SessionRoute)


@router.post("/projects/{project_id}/exporters", status_code=201, response_model=ExporterPublic)
def create_exporter(
    project_id: str, body: ExporterCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Exporter:
    """Create an exporter; its destination and write mode are checked by the connector's driver."""
    project = project_for(session, user, project_id)
    connector = session.get(Connector, body.connector_id)
    if connector is None or connector.project_id != project.id:
        raise NotFound("connector in this project", body.connector_id)
    ensure_unique_name(session, Exporter, project.id, body.name, "exporter")
    mode = WriteMode(body.write_mode)
    driver = build_driver(platform, connector)
    dest = driver.normalize_destination(
        DestinationSpec(
            database=body.database,
            table=body.table,
            path=body.path,
            bucket=body.bucket,
            options=dict(body.options),
        ),
        mode,
        body.key,
    )
    row = Exporter(
        project_id=project.id,
        connector_id=connector.id,
        name=body.name,
        description=body.description,
        database=dest.database,
        table=dest.table,
        path=dest.path,
        bucket=dest.bucket,
        write_mode=mode.value,
        key=list(body.key) if body.key else None,
        options=dest.options,
    )
    session.add(row)
    session.flush()
    return row


@router.get("/projects/{project_id}/exporters", response_model=Page[ExporterPublic])
def list_exporters(project_id: str, session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The exporters of a project, oldest first."""
    project = project_for(session, user, project_id, min_role="viewer")
    stmt = (
        select(Exporter).where(Exporter.project_id == project.id).order_by(Exporter.created_at, Exporter.id)
    )
    rows, total = paginate(session, stmt, params)
    return params.envelope(rows, total)


@router.get("/exporters/{exporter_id}", response_model=ExporterPublic)
def get_exporter(exporter_id: str, session: SessionDep, user: CurrentUser) -> Exporter:
    """One exporter."""
    return resource_for(session, user, Exporter, exporter_id, "exporter", min_role="viewer")


@router.delete("/exporters/{exporter_id}", status_code=204)
def delete_exporter(exporter_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Delete an exporter and the record of its exports (what they wrote stays where it is)."""
    row = resource_for(session, user, Exporter, exporter_id, "exporter")
    connectors.delete_exporter(session, row)
    return Response(status_code=204)


@router.post("/exporters/{exporter_id}/exports", status_code=202, response_model=ExportPublic)
def export_dataset(
    exporter_id: str, body: ExportCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Export:
    """Start the export of a dataset of the exporter's project; answers at once with the export to poll."""
    exporter = resource_for(session, user, Exporter, exporter_id, "exporter")
    dataset = session.get(Dataset, body.dataset_id)
    if dataset is None or dataset.project_id != exporter.project_id or dataset.status != "ready":
        raise NotFound("dataset in this project", body.dataset_id)
    export = Export(
        project_id=exporter.project_id, exporter_id=exporter.id, dataset_id=dataset.id, source="dataset"
    )
    session.add(export)
    session.commit()
    platform.jobs.submit_export(export.id)
    return export


@router.post(
    "/exporters/{exporter_id}/exports/upload",
    status_code=202,
    response_model=ExportPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def export_upload(
    request: Request,
    exporter_id: str,
    user: Caller,
    platform: PlatformDep,
    format: Annotated[
        Literal["csv", "parquet"] | None, Query(description="From file_name when omitted.")
    ] = None,
    file_name: Annotated[str | None, Query(max_length=500)] = None,
    source: Annotated[Literal["file", "dataframe"], Query(description="What the SDK uploaded.")] = "file",
) -> ExportPublic:
    """Export a CSV or Parquet file sent as the raw request body; answers with the export to poll.

    No metadata session is open while the body streams in: the caller is checked in a short session before,
    and again in the one that stores the export after.
    """
    fmt = upload_format(format, file_name)
    refuse_declared_oversize(request, platform)

    def check_now() -> None:
        with platform.db.session() as session:
            resource_for(session, user, Exporter, exporter_id, "exporter")

    def store() -> ExportPublic:
        with platform.db.session() as session:
            exporter = resource_for(session, user, Exporter, exporter_id, "exporter")
            export = Export(
                project_id=exporter.project_id, exporter_id=exporter.id, source=source, file_name=file_name
            )
            session.add(export)
            session.flush()
            answer = ExportPublic.model_validate(export)
        return answer

    await to_thread.run_sync(check_now)
    upload = await receive_upload(request, platform, fmt)
    try:
        export = await to_thread.run_sync(store)
    except BaseException:
        platform.store.remove_upload(upload)
        raise
    platform.jobs.submit_export(export.id, upload, fmt)
    return export


@router.get("/exporters/{exporter_id}/exports", response_model=Page[ExportPublic])
def list_exports(exporter_id: str, session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The exports of an exporter, oldest first."""
    exporter = resource_for(session, user, Exporter, exporter_id, "exporter", min_role="viewer")
    stmt = select(Export).where(Export.exporter_id == exporter.id).order_by(Export.created_at, Export.id)
    rows, total = paginate(session, stmt, params)
    return params.envelope(rows, total)


@router.get("/exports/{export_id}", response_model=ExportPublic)
def get_export(export_id: str, session: SessionDep, user: CurrentUser) -> Export:
    """One export: its status, rows written so far, destination, timing, and the reason of a failure."""
    return resource_for(session, user, Export, export_id, "export", min_role="viewer")


@router.post("/exports/{export_id}/cancel", status_code=202, response_model=ExportPublic)
def cancel_export(export_id: str, session: SessionDep, user: CurrentUser) -> Export:
    """Cancel an export: a pending one at once, a running one within a second (``cancelling``, then
    ``cancelled``, its staging at the destination discarded); 409 ``job_finished`` when it has ended."""
    row = resource_for(session, user, Export, export_id, "export", min_role="editor")
    return cancel(session, row)
