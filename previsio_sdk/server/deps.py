"""Typed dependencies of the route handlers: the platform, a session, the caller, visible resources."""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

# The access checks live in .access (the idempotency middleware uses them too); routes import them from here.
from .access import ROLES as ROLES
from .access import Role as Role
from .access import project_for as project_for
from .access import resource_for as resource_for
from .access import visible_project_ids as visible_project_ids
from .auth import user_for_token
from .core import Platform
from .errors import PlatformError
from .models import User


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


PlatformDep = Annotated[Platform, Depends(get_platform)]


def _function_scoped(dependency: Any) -> Any:
    try:
        # Exit before the answer is sent: from FastAPI 0.118 the exit of a request-scoped dependency runs
        # after it, so a caller could use the id it was just given and get a 404 from a request run first.
        return Depends(dependency, scope="function")
    except TypeError:  # FastAPI < 0.121 has no scopes (and exits before sending)
        return Depends(dependency)


async def session_slot(platform: PlatformDep) -> AsyncIterator[None]:
    """Hold one of the ``api_threads`` slots of request sessions while the request's session is open.

    A request waits for its turn here, in the event loop, holding nothing: without this bound, requests
    waiting for a worker thread each kept a pool connection, and under load the others failed after 30 s.
    """
    async with platform.request_slots:
        yield


def get_session(
    platform: PlatformDep, _slot: Annotated[None, _function_scoped(session_slot)]
) -> Iterator[Session]:
    with platform.db.session() as session:
        yield session


SessionDep = Annotated[Session, _function_scoped(get_session)]


def _commit_after(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(endpoint)
    def run(*args: Any, **kwargs: Any) -> Any:
        result = endpoint(*args, **kwargs)
        kwargs["session"].commit()
        return result

    return run


class SessionRoute(APIRoute):
    """A route whose synchronous endpoint commits the request's session (``session``) in its own thread.

    FastAPI validates a synchronous endpoint's answer in another worker thread, before the session dependency
    exits. A write left uncommitted until then held SQLite's write lock while the request waited for a free
    thread, and under load every thread was waiting for that lock: "database is locked" after 30 s. Committed
    here, the lock is held only while the endpoint runs; the dependency's own commit finds nothing left to do.
    An endpoint that raises commits nothing (the dependency rolls back).
    """

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint) and "session" in inspect.signature(endpoint).parameters:
            endpoint = _commit_after(endpoint)
        super().__init__(path, endpoint, **kwargs)


_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer <token>`.")


BearerDep = Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]


def _authenticate(session: Session, credentials: HTTPAuthorizationCredentials | None) -> User:
    if credentials is None or not credentials.credentials:
        raise PlatformError(401, "unauthenticated", "This request needs a bearer token.")
    user = user_for_token(session, credentials.credentials)
    if user is None:
        raise PlatformError(401, "invalid_token", "The token is unknown, expired or revoked.")
    return user


def get_current_user(session: SessionDep, credentials: BearerDep) -> User:
    return _authenticate(session, credentials)


CurrentUser = Annotated[User, Depends(get_current_user)]


def get_caller(platform: PlatformDep, credentials: BearerDep) -> User:
    """The caller, found in a short session of its own that is closed before the route runs.

    For routes that wait on a remote system: they hold no session while they wait, and open short ones
    (:meth:`Database.session`, in a worker thread) for what they read and write. The user is detached: its
    columns (``id``, ``is_admin``) can be read, its relationships cannot.
    """
    with platform.db.session() as session:
        return _authenticate(session, credentials)


Caller = Annotated[User, Depends(get_caller)]


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
                422,
                "validation_error",
                f"page_size may not exceed {limit}.",
                {"field": "page_size", "max": limit},
            )
        self.page = page
        self.page_size = page_size

    @property
    def offset(self) -> int:
        """Index of the page's first item in the whole list."""
        return (self.page - 1) * self.page_size

    def envelope(self, items: list[Any], total: int) -> dict[str, Any]:
        """The paged list answer: ``{"items", "total", "page", "page_size"}``."""
        return {"items": items, "total": total, "page": self.page, "page_size": self.page_size}

    def window(self, entries: list[Any]) -> dict[str, Any]:
        """The paged list answer for a list already in memory (a driver's listing, a user's tokens)."""
        return self.envelope(entries[self.offset : self.offset + self.page_size], len(entries))


PageDep = Annotated[PageParams, Depends()]


def count_rows(session: Session, stmt) -> int:  # type: ignore[no-untyped-def]
    """How many rows ``stmt`` selects in all (for the ``total`` of a paged list)."""
    return session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0


def paginate(session: Session, stmt, params: PageParams) -> tuple[list, int]:  # type: ignore[no-untyped-def]
    """Run ``stmt`` for one page; return the rows and the total count."""
    rows = list(session.scalars(stmt.limit(params.page_size).offset(params.offset)))
    return rows, count_rows(session, stmt)


def get_admin(user: CurrentUser) -> User:
    """The caller, if an administrator; 403 ``forbidden`` otherwise."""
    if not user.is_admin:
        raise PlatformError(403, "forbidden", "Only an administrator may do this.")
    return user


AdminUser = Annotated[User, Depends(get_admin)]
