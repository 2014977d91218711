"""Datasets: immutable Parquet snapshots, taken from a datasource or uploaded."""

from __future__ import annotations

from typing import Annotated, Literal
from urllib.parse import quote

import pyarrow as pa
from anyio import to_thread
from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.concurrency import iterate_in_threadpool

from ..deps import (
    Caller,
    CurrentUser,
    PageDep,
    PlatformDep,
    Role,
    SessionDep,
    SessionRoute,
    paginate,
    project_for,
    resource_for,
)
from ..errors import Conflict, Invalid, NotFound, PlatformError
from ..models import Dataset, DataSource, Job
from ..schemas import DatasetFile, DatasetPublic, JobPublic, Page, SnapshotCreate
from ..services import datasets
from .common import receive_upload, refuse_declared_oversize, upload_format

router = APIRouter(tags=["datasets"], route_class=SessionRoute)

ARROW_STREAM = "application/vnd.apache.arrow.stream"


def _ensure_free_name(session: SessionDep, project_id: str, name: str) -> None:
    existing = session.scalar(select(Dataset).where(Dataset.project_id == project_id, Dataset.name == name))
    if existing is not None:
        what = "A dataset" if existing.status == "ready" else "A snapshot in progress"
        details = {"existing_id": existing.id, "name": name}
        if existing.status != "ready":  # the SDK re-attaches to it when the same snapshot is asked again
            job = session.scalar(select(Job).where(Job.dataset_id == existing.id))
            details.update(job_id=job.id if job else None, datasource_id=existing.datasource_id)
        raise Conflict(f"{what} named {name!r} already exists in this project (id {existing.id}).", details)


def _ready(session: SessionDep, user: CurrentUser, dataset_id: str, min_role: Role = "viewer") -> Dataset:
    row = resource_for(session, user, Dataset, dataset_id, "dataset", min_role=min_role)
    if row.status != "ready":
        raise NotFound("dataset", dataset_id)
    return row


@router.post("/projects/{project_id}/datasets", status_code=202, response_model=JobPublic)
def create_snapshot(
    project_id: str, body: SnapshotCreate, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Job:
    """Start a snapshot of a datasource into a new dataset; answers at once with the job to poll."""
    project = project_for(session, user, project_id)
    source = session.get(DataSource, body.datasource_id)
    if source is None or source.project_id != project.id:
        raise NotFound("datasource in this project", body.datasource_id)
    _ensure_free_name(session, project.id, body.name)
    dataset = Dataset(project_id=project.id, datasource_id=source.id, name=body.name, origin="snapshot")
    session.add(dataset)
    session.flush()
    job = Job(project_id=project.id, kind="snapshot", dataset_id=dataset.id)
    session.add(job)
    session.commit()
    platform.jobs.submit_snapshot(job.id)
    return job


@router.post(
    "/projects/{project_id}/datasets/upload",
    status_code=202,
    response_model=JobPublic,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
)
async def upload_dataset(
    request: Request,
    project_id: str,
    user: Caller,
    platform: PlatformDep,
    name: Annotated[str, Query(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f]+$")],
    format: Annotated[
        Literal["csv", "parquet"] | None, Query(description="From file_name when omitted.")
    ] = None,
    file_name: Annotated[str | None, Query(max_length=500)] = None,
    datasource_id: Annotated[
        str | None,
        Query(max_length=64, description="Datasource of the project the data was taken from (its lineage)."),
    ] = None,
) -> JobPublic:
    """Upload a CSV or Parquet file (the raw request body) as a new dataset; answers with the job to poll.

    No metadata session is open while the body streams in (a slow sender holds nothing the others need):
    the caller is checked in a short session before, and again in the one that stores the dataset after.
    """
    name = name.strip()
    if not name:
        raise Invalid("The dataset name must hold printable characters.", {"field": "name"})
    fmt = upload_format(format, file_name)
    refuse_declared_oversize(request, platform)

    def check(session: Session) -> None:
        project = project_for(session, user, project_id)
        if datasource_id is not None:
            source = session.get(DataSource, datasource_id)
            if source is None or source.project_id != project.id:
                raise NotFound("datasource in this project", datasource_id)
        _ensure_free_name(session, project.id, name)

    def check_now() -> None:
        with platform.db.session() as session:
            check(session)

    def store() -> JobPublic:
        with platform.db.session() as session:
            check(session)
            dataset = Dataset(
                project_id=project_id,
                name=name,
                origin="upload",
                file_name=file_name,
                datasource_id=datasource_id,
            )
            session.add(dataset)
            session.flush()
            job = Job(project_id=project_id, kind="upload", dataset_id=dataset.id)
            session.add(job)
            session.flush()
            answer = JobPublic.model_validate(job)
        return answer

    await to_thread.run_sync(check_now)
    upload = await receive_upload(request, platform, fmt)
    try:
        job = await to_thread.run_sync(store)
    except BaseException:
        platform.store.remove_upload(upload)
        raise
    platform.jobs.submit_upload(job.id, upload, fmt)
    return job


@router.get("/projects/{project_id}/datasets", response_model=Page[DatasetPublic])
def list_datasets(project_id: str, session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The complete datasets of a project, oldest first (snapshots in progress are not listed)."""
    project = project_for(session, user, project_id, min_role="viewer")
    stmt = (
        select(Dataset)
        .where(Dataset.project_id == project.id, Dataset.status == "ready")
        .order_by(Dataset.created_at, Dataset.id)
    )
    rows, total = paginate(session, stmt, params)
    return params.envelope(rows, total)


@router.get("/datasets/{dataset_id}", response_model=DatasetPublic)
def get_dataset(dataset_id: str, session: SessionDep, user: CurrentUser) -> Dataset:
    """One dataset."""
    return _ready(session, user, dataset_id)


@router.delete("/datasets/{dataset_id}", status_code=204)
def delete_dataset(
    dataset_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Response:
    """Delete a dataset and its file."""
    row = _ready(session, user, dataset_id, min_role="editor")
    datasets.delete_dataset(session, platform.store, row)
    return Response(status_code=204)


@router.get(
    "/datasets/{dataset_id}/download",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/vnd.apache.parquet": {}}, "description": "The Parquet file."}},
)
def download_dataset(
    dataset_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Response:
    """The dataset's Parquet file, streamed from the dataset store."""
    row = _ready(session, user, dataset_id)
    headers = {"X-Content-SHA256": row.content_hash or ""}
    local = platform.store.local_path(row.id)
    if local is not None:
        return FileResponse(
            local,
            media_type="application/vnd.apache.parquet",
            filename=f"{row.name}.parquet",
            headers=headers,
        )
    disposition = f"attachment; filename*=utf-8''{quote(row.name + '.parquet')}"
    headers.update({"Content-Disposition": disposition, "Content-Length": str(row.size_bytes or 0)})
    return StreamingResponse(
        iterate_in_threadpool(platform.store.stream(row.id)),
        media_type="application/vnd.apache.parquet",
        headers=headers,
    )


@router.get("/datasets/{dataset_id}/file", response_model=DatasetFile)
def dataset_file(
    dataset_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> DatasetFile:
    """Where the dataset's Parquet file is on the platform's disk, for an SDK on the same machine.

    Only offered when the platform shares its files (the embedded local platform); 404 otherwise.
    """
    row = _ready(session, user, dataset_id)
    local = platform.store.local_path(row.id)
    if not platform.settings.share_dataset_files or local is None:
        raise PlatformError(404, "not_shared", "This platform does not share dataset files; download them.")
    return DatasetFile(path=str(local.resolve()), size_bytes=row.size_bytes or 0)


@router.get(
    "/datasets/{dataset_id}/head",
    response_class=Response,
    responses={200: {"content": {ARROW_STREAM: {}}, "description": "The first rows as an Arrow IPC stream."}},
)
def head_dataset(
    dataset_id: str,
    session: SessionDep,
    user: CurrentUser,
    platform: PlatformDep,
    n: Annotated[int, Query(ge=0, le=100_000)] = 10,
) -> Response:
    """The first ``n`` rows as an Arrow IPC stream; only the row groups needed are read."""
    row = _ready(session, user, dataset_id)
    table = platform.store.head(row.id, n)
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return Response(sink.getvalue().to_pybytes(), media_type=ARROW_STREAM)
