"""Projects: the unit of scoping."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from ..deps import (
    CurrentUser,
    PageDep,
    PlatformDep,
    SessionDep,
    SessionRoute,
    paginate,
    project_for,
    visible_project_ids,
)
from ..errors import Conflict
from ..models import Project, ProjectMember
from ..schemas import Page, ProjectCreate, ProjectPublic, ProjectUpdate
from ..services import datasets

router = APIRouter(tags=["projects"], route_class=SessionRoute)


def _ensure_unique(session: SessionDep, owner_id: str, name: str, exclude_id: str | None = None) -> None:
    existing = session.scalar(select(Project).where(Project.owner_id == owner_id, Project.name == name))
    if existing is not None and existing.id != exclude_id:
        raise Conflict(
            f"You already have a project named {name!r} (id {existing.id}).",
            {"existing_id": existing.id, "name": name},
        )


@router.post("/projects", status_code=201, response_model=ProjectPublic)
def create_project(body: ProjectCreate, session: SessionDep, user: CurrentUser) -> Project:
    """Create a project owned by the caller."""
    _ensure_unique(session, user.id, body.name)
    project = Project(name=body.name, description=body.description, color=body.color, owner_id=user.id)
    session.add(project)
    session.flush()
    session.add(ProjectMember(project_id=project.id, user_id=user.id, role="owner"))
    return project


@router.get("/projects", response_model=Page[ProjectPublic])
def list_projects(session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The projects the caller is a member of, oldest first."""
    stmt = (
        select(Project)
        .where(Project.id.in_(visible_project_ids(user)))
        .order_by(Project.created_at, Project.id)
    )
    rows, total = paginate(session, stmt, params)
    return params.envelope(rows, total)


@router.get("/projects/{project_id}", response_model=ProjectPublic)
def get_project(project_id: str, session: SessionDep, user: CurrentUser) -> Project:
    """One project."""
    return project_for(session, user, project_id, min_role="viewer")


@router.patch("/projects/{project_id}", response_model=ProjectPublic)
def update_project(project_id: str, body: ProjectUpdate, session: SessionDep, user: CurrentUser) -> Project:
    """Rename a project or change its description or colour (owners only)."""
    project = project_for(session, user, project_id, min_role="owner")
    if body.name is not None:
        _ensure_unique(session, project.owner_id, body.name, exclude_id=project.id)
        project.name = body.name
    if "description" in body.model_fields_set:
        project.description = body.description
    if "color" in body.model_fields_set:
        project.color = body.color
    return project


@router.delete("/projects/{project_id}", status_code=204)
def delete_project(
    project_id: str, session: SessionDep, user: CurrentUser, platform: PlatformDep
) -> Response:
    """Delete a project with everything it holds, dataset files included (owners only)."""
    project = project_for(session, user, project_id, min_role="owner")
    datasets.delete_project(session, platform.store, project)
    return Response(status_code=204)
