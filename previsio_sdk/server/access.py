"""Who may see and change what: project membership and roles, checked in a session of the caller's choice.

Used by the route dependencies (:mod:`.deps`) and by the idempotency middleware, which re-checks access
before replaying a stored answer; it knows nothing of HTTP.
"""

from __future__ import annotations

from typing import Literal, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import NotFound, PlatformError
from .models import Base, Project, ProjectMember, User

M = TypeVar("M", bound=Base)


def visible_project_ids(user: User):  # type: ignore[no-untyped-def]
    """Subquery of the ids of the projects ``user`` is a member of."""
    return select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)


Role = Literal["viewer", "editor", "owner"]
"""A member's role in a project: a viewer reads, an editor also changes, an owner also manages the project."""

#: The roles, weakest first: each may do what the ones before it may.
ROLES: tuple[Role, ...] = ("viewer", "editor", "owner")


def _require(member: ProjectMember, min_role: Role) -> None:
    rank = ROLES.index(member.role) if member.role in ROLES else 0  # type: ignore[arg-type]
    if rank < ROLES.index(min_role):
        raise PlatformError(
            403,
            "forbidden",
            f"Your role in this project is {member.role}; this needs the {min_role} role"
            + ("." if min_role == "owner" else " or a higher one."),
            {"role": member.role, "required": min_role},
        )


def project_for(session: Session, user: User, project_id: str, min_role: Role = "editor") -> Project:
    """The project ``project_id`` if the user is a member with at least ``min_role``.

    The default asks for an editor: a route that only reads passes ``min_role="viewer"``.

    Raises:
        NotFound: No such project, or the user is not a member (no existence leak).
        PlatformError: 403 ``forbidden``: a member whose role is too weak.
    """
    project = session.get(Project, project_id)
    member = session.get(ProjectMember, (project_id, user.id)) if project is not None else None
    if project is None or member is None:
        raise NotFound("project", project_id)
    _require(member, min_role)
    return project


def resource_for(
    session: Session, user: User, model: type[M], ident: str, kind: str, min_role: Role = "editor"
) -> M:
    """A resource of a project the user is a member of with at least ``min_role`` (see :func:`project_for`).

    Raises:
        NotFound: No such resource, or the user is not a member of its project.
        PlatformError: 403 ``forbidden``: a member whose role is too weak.
    """
    row = session.get(model, ident)
    member = session.get(ProjectMember, (row.project_id, user.id)) if row is not None else None  # type: ignore[attr-defined]
    if row is None or member is None:
        raise NotFound(kind, ident)
    _require(member, min_role)
    return row
