"""Users and tokens, managed from the admin API and from the ``previsio user|token`` commands alike."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from .auth import hash_token, new_token
from .errors import Conflict, NotFound
from .models import Token, User


def create_user(session: Session, name: str, *, is_admin: bool = False) -> User:
    """Create a user.

    Raises:
        Conflict: A user of that name exists.
    """
    existing = session.scalar(select(User).where(User.name == name))
    if existing is not None:
        raise Conflict(
            f"A user named {name!r} already exists (id {existing.id}).", {"existing_id": existing.id}
        )
    user = User(name=name, is_admin=is_admin)
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, user: str) -> User:
    """The user whose id, else whose name, is ``user``.

    Raises:
        NotFound: No such user.
    """
    row = session.get(User, user) or session.scalar(select(User).where(User.name == user))
    if row is None:
        raise NotFound("user", user)
    return row


def list_users(session: Session) -> list[User]:
    """Every user, oldest first."""
    return list(session.scalars(select(User).order_by(User.created_at, User.id)))


def create_token(session: Session, user: User, *, expires_in_days: float | None = None) -> tuple[Token, str]:
    """Issue a new random token for ``user``.

    Returns:
        The stored token (its digest only) and the token's value, to show once.
    """
    value = new_token()
    expires = None
    if expires_in_days is not None:
        expires = datetime.now(timezone.utc) + timedelta(days=expires_in_days)
    token = Token(user_id=user.id, token_hash=hash_token(value), expires_at=expires)
    session.add(token)
    session.flush()
    return token, value


def revoke_token(session: Session, token_id: str) -> Token:
    """Revoke a token: it stops working at once.

    Raises:
        NotFound: No token has that id.
    """
    token = session.get(Token, token_id)
    if token is None:
        raise NotFound("token", token_id)
    token.revoked = True
    return token


def list_tokens(session: Session, user: User) -> list[Token]:
    """The tokens of ``user`` (digests only), oldest first."""
    return list(
        session.scalars(select(Token).where(Token.user_id == user.id).order_by(Token.created_at, Token.id))
    )
