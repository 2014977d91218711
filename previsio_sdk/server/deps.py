"""Typed dependencies of the route handlers: the platform, a session, the caller, visible resources."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, TypeVar

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .auth import user_for_token
from .core import Platform
from .errors import NotFound, PlatformError
from .models import Base, Project, ProjectMember, User

M = TypeVar("M", bound=Base)


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def get_session(platform: PlatformDep) -> Iterator[Session]:
    with platform.db.session() as session:
        yield session


try:
    # Commit before the answer is sent: from FastAPI 0.118 the exit of a request-scoped dependency runs after
    # it, so a caller could use the id it was just given and get a 404 from a request that ran first.
    _session = Depends(get_session, scope="function")
except TypeError:  # FastAPI < 0.121 has no scopes (and exits before sending)
    _session = Depends(get_session)
SessionDep = Annotated[Session, _session]

_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`.")


def get_current_user(
    session: SessionDep, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> User:
    if credentials is None or not credentials.credentials:
        raise PlatformError(401, "unauthenticated", "This request needs a bearer token.")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise PlatformError(401, "invalid_token", "The token is unknown, expired or revoked.")
    return user


CurrentUser = Annotated[User, Depends(get_current_user)]


class PageParams:
    """``?page=&page_size=`` of a list request."""

    def __init__(
        self,
        request: Request,
        page: Annotated[int, Query(ge=1, le=10_000_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=100_000)] = 100,
    ) -> None:
        limit = request.app.state.platform.settings.max_page_size
        if page_size > limit:
            raise PlatformError(
                422, "validation_error", f"page_size may not exceed {limit}.", {"field": "page_size"}
            )
        self.page = page
        self.page_size = page_size


PageDep = Annotated[PageParams, Depends()]


def paginate(session: Session, stmt, params: PageParams) -> tuple[list, int]:  # type: ignore[no-untyped-def]
    """Run ``stmt`` for one page; return the rows and the total count."""
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = list(session.scalars(stmt.limit(params.page_size).offset((params.page - 1) * params.page_size)))
    return rows, total


def visible_project_ids(user: User):  # type: ignore[no-untyped-def]
    """Subquery of the ids of the projects ``user`` is a member of."""
    return select(ProjectMember.project_id).where(ProjectMember.user_id == user.id)


def project_for(session: Session, user: User, project_id: str) -> Project:
    """The project ``project_id`` if the user may see it; 404 otherwise (no existence leak)."""
    project = session.get(Project, project_id)
    if project is None or session.get(ProjectMember, (project_id, user.id)) is None:
        raise NotFound("project", project_id)
    return project


def resource_for(session: Session, user: User, model: type[M], ident: str, kind: str) -> M:
    """A resource owned by a project the user may see; 404 otherwise."""
    row = session.get(model, ident)
    if row is None or session.get(ProjectMember, (row.project_id, user.id)) is None:  # type: ignore[attr-defined]
        raise NotFound(kind, ident)
    return row
