"""Users and their tokens: the administrators' API."""

from __future__ import annotations

from fastapi import APIRouter, Response
from sqlalchemy import select

from ..accounts import create_token, create_user, find_user, list_tokens, revoke_token
from ..deps import AdminUser, PageDep, SessionDep, SessionRoute, paginate
from ..models import Token, User
from ..schemas import Page, TokenCreate, TokenCreated, TokenPublic, UserCreate, UserPublic

router = APIRouter(tags=["users"], route_class=SessionRoute)


@router.post("/users", status_code=201, response_model=UserPublic)
def add_user(body: UserCreate, session: SessionDep, _admin: AdminUser) -> User:
    """Create a user (administrators only); give it a token with ``POST /users/{user_id}/tokens``."""
    return create_user(session, body.name, is_admin=body.is_admin)


@router.get("/users", response_model=Page[UserPublic])
def get_users(session: SessionDep, _admin: AdminUser, params: PageDep) -> dict:
    """Every user, oldest first (administrators only)."""
    rows, total = paginate(session, select(User).order_by(User.created_at, User.id), params)
    return params.envelope(rows, total)


@router.get("/users/{user_id}/tokens", response_model=Page[TokenPublic])
def get_tokens(user_id: str, session: SessionDep, _admin: AdminUser, params: PageDep) -> dict:
    """The tokens of a user, without their values (administrators only)."""
    user = find_user(session, user_id)
    return params.window(list_tokens(session, user))


@router.post("/users/{user_id}/tokens", status_code=201, response_model=TokenCreated)
def add_token(
    user_id: str, session: SessionDep, _admin: AdminUser, response: Response, body: TokenCreate | None = None
) -> TokenCreated:
    """Issue a token for a user (administrators only); its value is in this answer and nowhere else."""
    user = find_user(session, user_id)
    token, value = create_token(session, user, expires_in_days=(body or TokenCreate()).expires_in_days)
    # Never cached, nor kept for an idempotent replay: the value must exist in this answer only.
    response.headers["Cache-Control"] = "no-store"
    return TokenCreated(
        id=token.id,
        user_id=token.user_id,
        created_at=token.created_at,
        expires_at=token.expires_at,
        revoked=token.revoked,
        token=value,
    )


@router.delete("/tokens/{token_id}", status_code=204)
def delete_token(token_id: str, session: SessionDep, _admin: AdminUser) -> Response:
    """Revoke a token (administrators only): it stops working at once."""
    revoke_token(session, token_id)
    return Response(status_code=204)


__all__ = ["Token", "router"]
