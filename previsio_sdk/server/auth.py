"""Users and API tokens. Tokens are random; only their SHA-256 digest is stored."""

from __future__ import annotations

import hashlib
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .models import Token, User

if TYPE_CHECKING:
    from .core import Platform

ADMIN_TOKEN_FILE = "admin.token"


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (tokens are random and long, so no salt is needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    """A new random token."""
    return "pvo_" + secrets.token_urlsafe(32)


def issue_token(session: Session, user: User, token: str | None = None) -> str:
    """Store a token for ``user`` and return it in clear (the only time it is seen)."""
    token = token or new_token()
    session.add(Token(user_id=user.id, token_hash=hash_token(token)))
    return token


def user_for_token(session: Session, token: str) -> User | None:
    """The user a valid, unrevoked, unexpired token belongs to."""
    row = session.scalar(select(Token).where(Token.token_hash == hash_token(token)))
    if row is None or row.revoked:
        return None
    if row.expires_at is not None:
        expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=timezone.utc)
        if expires <= datetime.now(timezone.utc):
            return None
    return row.user


def write_secret_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` with mode 0600, replacing any previous file."""
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text + "\n")
    os.replace(tmp, path)


def bootstrap_admin(platform: Platform) -> str | None:
    """On first start, create the ``admin`` user and its token.

    The token is ``PREVISIO_BOOTSTRAP_TOKEN`` when set, a random one otherwise; it is written to
    ``<home>/admin.token`` (mode 0600) and returned so the caller can print it once. Returns None when users
    already exist, except that a bootstrap token given in the environment is (re)registered so scripted
    deployments can count on it.
    """
    settings = platform.settings
    wanted = settings.bootstrap_token.get_secret_value() if settings.bootstrap_token else None
    with platform.db.session() as s:
        if s.scalar(select(func.count()).select_from(User)):
            if wanted and user_for_token(s, wanted) is None:
                admin = s.scalar(select(User).where(User.is_admin.is_(True)))
                if admin is not None:
                    issue_token(s, admin, wanted)
            return None
        admin = User(name="admin", is_admin=True)
        s.add(admin)
        s.flush()
        token = issue_token(s, admin, wanted)
    write_secret_file(settings.home / ADMIN_TOKEN_FILE, token)
    return token
