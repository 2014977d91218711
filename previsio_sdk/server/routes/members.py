"""Project members: who may read (viewer), change (editor) or manage (owner) a project."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from sqlalchemy import func, select

from ..accounts import find_user
from ..deps import CurrentUser, PageDep, SessionDep, SessionRoute, count_rows, paginate, project_for
from ..errors import Conflict, NotFound
from ..models import ProjectMember, User
from ..schemas import MemberCreate, MemberPublic, Page

router = APIRouter(tags=["members"], route_class=SessionRoute)


def _public(member: ProjectMember, user: User) -> dict[str, Any]:
    return {"user_id": user.id, "user_name": user.name, "role": member.role}


def _keep_an_owner(session: SessionDep, member: ProjectMember) -> None:
    """Refuse to demote or remove the project's last owner."""
    if member.role != "owner":
        return
    owners = session.scalar(
        select(func.count())
        .select_from(ProjectMember)
        .where(ProjectMember.project_id == member.project_id, ProjectMember.role == "owner")
    )
    if (owners or 0) <= 1:
        raise Conflict("A project keeps at least one owner; make another member owner first.")


@router.get("/projects/{project_id}/members", response_model=Page[MemberPublic])
def list_members(project_id: str, session: SessionDep, user: CurrentUser, params: PageDep) -> dict:
    """The members of a project and their roles, in the order they joined."""
    project = project_for(session, user, project_id, min_role="viewer")
    stmt = (
        select(ProjectMember, User)
        .join(User, User.id == ProjectMember.user_id)
        .where(ProjectMember.project_id == project.id)
        .order_by(User.created_at, User.id)
    )
    rows = session.execute(stmt.limit(params.page_size).offset(params.offset)).all()
    items = [_public(member, member_user) for member, member_user in rows]
    total = count_rows(session, stmt)
    return params.envelope(items, total)


@router.post(
    "/projects/{project_id}/members",
    status_code=201,
    response_model=MemberPublic,
    responses={200: {"model": MemberPublic, "description": "The user was a member: its role was changed."}},
)
def add_member(
    project_id: str, body: MemberCreate, session: SessionDep, user: CurrentUser, response: Response
) -> dict:
    """Add a user (by name or id) to a project with a role, or change a member's role (owners only)."""
    project = project_for(session, user, project_id, min_role="owner")
    target = find_user(session, body.user)
    member = session.get(ProjectMember, (project.id, target.id))
    if member is None:
        member = ProjectMember(project_id=project.id, user_id=target.id, role=body.role)
        session.add(member)
    else:
        if body.role != "owner":
            _keep_an_owner(session, member)
        member.role = body.role
        response.status_code = 200
    session.flush()
    return _public(member, target)


@router.delete("/projects/{project_id}/members/{user_id}", status_code=204)
def remove_member(project_id: str, user_id: str, session: SessionDep, user: CurrentUser) -> Response:
    """Remove a member (by user id or name) from a project: owners remove anyone, members themselves."""
    project = project_for(session, user, project_id, min_role="viewer")  # a stranger learns nothing more
    target = user if user_id in (user.id, user.name) else find_user(session, user_id)
    if target.id != user.id:
        project_for(session, user, project_id, min_role="owner")
    member = session.get(ProjectMember, (project.id, target.id))
    if member is None:
        raise NotFound("member of this project", user_id)
    _keep_an_owner(session, member)
    session.delete(member)
    return Response(status_code=204)


__all__ = ["paginate", "router"]
